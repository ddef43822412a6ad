"""The experiment files shipped in experiments/: every one is valid, and the MRPC recipes run.

The recipes name hub ids (nyu-mll/glue, bert-base-uncased); offline they run with `--set`
pointing at the local MRPC copy and a tiny BERT, on a few rows for a few steps.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.tables import table_rows
from tracker.cli import main
from tracker.spec.parse import tomllib  # tomli before Python 3.11

REPO_ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted((REPO_ROOT / "experiments").glob("*.toml"))
# The course's recipe, once per runner; mrpc_sweep.toml is a study of it, for `xp sweep`.
MRPC_RECIPES = sorted(
    path
    for path in (REPO_ROOT / "experiments").glob("mrpc_*.toml")
    if "sweep" not in tomllib.loads(path.read_text(encoding="utf-8"))
)


# Experiments on the full data sets that live beside the checkout on the project's machines, never
# in a clone: checked on the slice the tests ship, which has the same layout.
ON_SHARED_DATA = {
    "conll2003_ner.toml": ["--set", f"dataset.path={REPO_ROOT / 'tests' / 'data' / 'conll2003'}"],
    "squad_qa.toml": ["--set", f"dataset.path={REPO_ROOT / 'tests' / 'data' / 'squad'}"],
    "scitldr_summarization.toml": ["--set", f"dataset.path={REPO_ROOT / 'tests' / 'data' / 'scitldr'}"],
    "scitldr_instruction.toml": ["--set", f"dataset.path={REPO_ROOT / 'tests' / 'data' / 'scitldr'}"],
}


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda path: path.name)
def test_shipped_experiment_is_valid(path):
    result = CliRunner().invoke(main, ["validate", str(path), *ON_SHARED_DATA.get(path.name, [])])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"ok: {path}"


def test_the_course_recipes_are_shipped_for_every_runner():
    assert [path.name for path in MRPC_RECIPES] == ["mrpc_accelerate.toml", "mrpc_loop.toml", "mrpc_trainer.toml"]


def test_mrpc_recipes_run_end_to_end_offline(tmp_path, mrpc_path, tiny_checkpoint):
    overrides = [
        f'dataset.path="{mrpc_path}"',
        'dataset.name="default"',
        "dataset.max_rows={train=64, eval=32, test=32}",  # a TOML inline table
        f'model.checkpoint="{tiny_checkpoint}"',
        "runner.max_steps=4",
        "runner.progress_bar=false",
        "tracking.enabled=false",
    ]
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "HF_DATASETS_CACHE": str(tmp_path / "datasets-cache"),
        "PYTHONPATH": str(REPO_ROOT),
    }
    command = [sys.executable, "-m", "tracker", "run", *map(str, MRPC_RECIPES)]
    for override in overrides:
        command += ["--set", override]
    done = subprocess.run(command, check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)

    assert done.returncode == 0, done.stderr[-4000:]
    rows = table_rows(done.stdout)
    assert [(Path(row[0]).name, row[1], row[2]) for row in rows] == [
        ("mrpc_accelerate.toml", "accelerate", "finished"),
        ("mrpc_loop.toml", "loop", "finished"),
        ("mrpc_trainer.toml", "trainer", "finished"),
    ]
    # GLUE hides MRPC's test labels: each run writes predictions for its 32 test rows.
    predictions = sorted((tmp_path / "outputs").glob("*/predictions.csv"))
    assert len(predictions) == 3
    assert all(len(path.read_text().splitlines()) == 1 + 32 for path in predictions)

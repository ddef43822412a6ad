"""Every folder a command writes to is checked by really writing there, before the work.

- `[experiment] output_dir` is checked at `xp run` (and `xp validate --data`) by really making
  it, before any data or model loads; one that cannot be made, even by root (under /proc), is a
  problem of the file: exit code 2 and no MLflow run, where the run used to start and then fail.
- Every option naming a file to write behaves the same in every command (`xp schema -o`,
  `xp init -o`, `xp predict --output`, `xp compare --png`): a missing folder is made, as xp makes
  every folder it writes to; a folder that cannot be made is one line and exit code 2, before
  the command's work.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.experiment_files import write_experiment
from tests.mlflow_helpers import DATA, run_quickstart
from tracker.cli import main

UNMAKEABLE = Path("/proc/xp-nowhere")  # nothing can make a folder here, root included

pytestmark = pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")


def test_xp_run_with_an_output_dir_that_cannot_be_made_exits_2_and_starts_no_run(tmp_path, tiny_checkpoint):
    store = tmp_path / "mlruns" / "mlflow.db"
    output_dir = f'experiment.output_dir="{UNMAKEABLE / "outputs"}"'

    result = run_quickstart(tmp_path, tiny_checkpoint, f"sqlite:///{store}", output_dir)

    assert result.returncode == 2, result.stderr[-3000:]
    assert (
        f"[experiment] output_dir: cannot create the folder {UNMAKEABLE / 'outputs'} (no such file or directory)"
    ) in result.stderr
    assert "Traceback" not in result.stderr
    if store.exists():  # the tracking process may have made the store: it holds no run
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as database:
            assert database.execute("SELECT count(*) FROM runs").fetchone() == (0,)


def test_xp_validate_data_says_why_the_output_dir_cannot_be_made(tmp_path):
    file = write_experiment(
        tmp_path / "experiment.toml",
        Path("bert-base-uncased"),  # never loaded: the output folder is checked before the data
        {"train": str(DATA / "train.csv"), "validation": str(DATA / "validation.csv")},
        experiment={"output_dir": str(UNMAKEABLE / "outputs")},
    )

    result = CliRunner().invoke(main, ["validate", "--data", str(file)])

    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"{file}: [experiment] output_dir: cannot create the folder {UNMAKEABLE / 'outputs'} "
        "(no such file or directory)",
        "1 of 1 experiment file(s) invalid; nothing was run.",
    ]


@dataclass
class Writer:
    """A command with the option that names the file it writes, and a line it prints only once
    its work has begun."""

    option: str
    args: Callable[[Path, dict], list[str]]
    working: str | None = None


WRITERS = {
    "schema": Writer("-o", lambda out, given: ["schema", "-o", str(out)]),
    "init": Writer("-o", lambda out, given: ["init", str(given["data"]), "-o", str(out)], working="reading "),
    "predict": Writer(
        "--output",
        lambda out, given: [
            "predict",
            str(given["model"]),
            "-i",
            str(given["data"] / "validation.csv"),
            "--text-columns",
            "sentence1,sentence2",
            "--device",
            "cpu",
            "--output",
            str(out),
        ],
        working="model: ",
    ),
    "compare": Writer(
        "--png", lambda out, given: ["compare", given["run_id"], "--uri", given["store"], "--png", str(out)]
    ),
}
SUFFIXES = {"schema": ".json", "init": ".toml", "predict": ".csv", "compare": ".png"}


@pytest.fixture(scope="module")
def given(tmp_path_factory, tiny_checkpoint) -> dict:
    """What the commands read: data, a model folder, and a store holding one run with curves."""
    from mlflow import MlflowClient

    folder = tmp_path_factory.mktemp("given")
    shutil.copytree(DATA, folder / "data")
    store = f"sqlite:///{folder / 'mlflow.db'}"
    client = MlflowClient(store)
    run = client.create_run(client.create_experiment("curves"), run_name="a-run")
    for step, loss in enumerate((0.9, 0.7, 0.5), start=1):
        client.log_metric(run.info.run_id, "train/loss", loss, step=step)
        client.log_metric(run.info.run_id, "eval/loss", loss + 0.1, step=step)
    client.set_terminated(run.info.run_id)
    return {"data": folder / "data", "model": tiny_checkpoint, "store": store, "run_id": run.info.run_id}


@pytest.mark.parametrize("command", WRITERS)
def test_a_missing_folder_is_made_for_the_file(tmp_path, monkeypatch, given, command):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "not" / "yet" / f"{command}{SUFFIXES[command]}"

    result = CliRunner().invoke(main, WRITERS[command].args(out, given))

    assert result.exit_code == 0, result.output + result.stderr
    assert out.is_file() and out.stat().st_size > 0


@pytest.mark.parametrize("command", WRITERS)
def test_a_folder_that_cannot_be_made_is_one_line_and_exit_2_before_the_work(tmp_path, monkeypatch, given, command):
    monkeypatch.chdir(tmp_path)
    out = UNMAKEABLE / f"{command}{SUFFIXES[command]}"
    writer = WRITERS[command]

    result = CliRunner().invoke(main, writer.args(out, given))

    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        f"error: {writer.option} {out}: cannot create the folder {UNMAKEABLE} (no such file or directory)"
    )
    assert [line for line in result.stderr.splitlines() if line.startswith("error: ")] == [
        result.stderr.splitlines()[-1]
    ]
    if writer.working:
        assert writer.working not in result.stderr
    assert not result.stdout  # compare's table: the figure's folder is checked before the runs are read

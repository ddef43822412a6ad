"""An experiment file is data: no key makes xp import or run Python that is not an installed
plugin, unless the user passes --allow-code on the command line.

Each script here would write a marker file the moment it ran; the marker stays absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.experiment_files import write_experiment
from tracker.cli import main


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.csv").write_text("text,label\n" + "".join(f"row {i},{i % 2}\n" for i in range(8)))
    return tmp_path


def _marker_script(folder: Path, name: str, marker: Path) -> Path:
    script = folder / name
    script.write_text(f"from pathlib import Path\nPath({str(marker)!r}).write_text('code ran')\n")
    return script


def _write(folder: Path, checkpoint: Path, **metrics) -> Path:
    return write_experiment(
        folder / "experiment.toml",
        checkpoint,
        {"train": "train.csv", "validation": "train.csv"},
        dataset={"text_columns": ["text"]},
        runner={"max_steps": 1, "eval_strategy": "no"},
        **({"metrics": metrics} if metrics else {}),
    )


def test_an_evaluate_script_never_runs_without_allow_code(workspace, tiny_checkpoint):
    marker = workspace / "marker"
    _marker_script(workspace, "metric.py", marker)
    path = _write(workspace, tiny_checkpoint, use="evaluate", evaluate={"path": "./metric.py"})

    for command in (["validate"], ["validate", "--data"], ["run"]):
        result = CliRunner().invoke(main, [*command, str(path)])
        assert result.exit_code == 2, result.output
        assert "[metrics.evaluate] path: evaluate.load runs the metric's Python script" in result.output
        assert "--allow-code" in result.output
    assert not marker.exists()

    # The refusal is the only thing that kept it out: allowed on the command line, it runs.
    CliRunner().invoke(main, ["run", "--allow-code", str(path)])
    assert marker.read_text() == "code ran"


def _checkpoint_with_code(folder: Path, tiny_checkpoint: Path, marker: Path) -> Path:
    """A copy of the tiny checkpoint whose config names custom modeling code (`auto_map`)."""
    import shutil

    checkpoint = folder / "checkpoint-with-code"
    shutil.copytree(tiny_checkpoint, checkpoint)
    _marker_script(checkpoint, "configuration_evil.py", marker)
    config = json.loads((checkpoint / "config.json").read_text())
    config["auto_map"] = {
        "AutoConfig": "configuration_evil.EvilConfig",
        "AutoModelForSequenceClassification": "configuration_evil.EvilModel",
    }
    (checkpoint / "config.json").write_text(json.dumps(config))
    return checkpoint


@pytest.mark.parametrize("section", ["model", "tokenizer"])
def test_trust_remote_code_is_refused_without_allow_code(workspace, tiny_checkpoint, section):
    marker = workspace / "marker"
    checkpoint = _checkpoint_with_code(workspace, tiny_checkpoint, marker)
    path = _write(workspace, checkpoint)

    for command in ("validate", "run"):
        result = CliRunner().invoke(main, [command, str(path), "--set", f"{section}.trust_remote_code=true"])
        assert result.exit_code == 2, result.output
        assert f"[{section}] trust_remote_code: runs Python code shipped with the checkpoint" in result.output
    assert not marker.exists()


def test_a_checkpoint_with_code_is_not_run_when_the_file_does_not_ask(workspace, tiny_checkpoint):
    marker = workspace / "marker"
    path = _write(workspace, _checkpoint_with_code(workspace, tiny_checkpoint, marker))

    result = CliRunner().invoke(main, ["run", str(path)])

    assert "Traceback" not in result.output
    assert not marker.exists()

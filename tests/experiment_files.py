"""Tiny experiment files for tests: the tiny BERT on a few rows, changed section by section; and
the two ways the task tests run one: in this process, untracked, or as `xp` in a fresh one."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

from tests.mlflow_helpers import xp_command
from tracker import tomlwrite


def write_experiment(path: Path, checkpoint: Path, data_files: dict[str, str] | None, /, **changes: dict) -> Path:
    """A tiny experiment file: the tiny BERT, two epochs of three steps, logging every step.

    `changes` update sections: write_experiment(..., runner={"use": "trainer"}).
    """
    document = {
        "experiment": {"seed": 0, "output_dir": str(path.parent / "outputs")},
        "dataset": {
            "use": "hf",
            "path": "csv",
            "data_files": data_files,
            "text_columns": ["sentence1", "sentence2"],
            "test_split": "test" if data_files and "test" in data_files else None,
        },
        "tokenizer": {"use": "auto", "max_length": 64},
        "collator": {"use": "dynamic_padding"},
        "model": {"use": "auto", "checkpoint": str(checkpoint)},
        "optimizer": {"use": "adamw", "lr": 1e-3},
        "scheduler": {"use": "linear"},
        "metrics": {"use": ["accuracy", "f1"]},
        "runner": {"use": "loop", "num_epochs": 2, "batch_size": 8, "logging_steps": 1, "progress_bar": False},
        "hardware": {"device": "cpu"},
        "tracking": {"enabled": False},
    }
    for section, keys in changes.items():
        document[section] = {**document.get(section, {}), **keys}
    path.write_text(tomlwrite.dumps(document), encoding="utf-8")
    return path


def write_changed(path: Path, document: dict, changes: dict) -> Path:
    """`document` with `changes` merged into its sections (a key given as None is left out),
    written to `path` as TOML."""
    for section, keys in changes.items():
        merged = {**document.get(section, {}), **keys}
        document[section] = {key: value for key, value in merged.items() if value is not None}
    path.write_text(tomlwrite.dumps(document), encoding="utf-8")
    return path


def run_in_process(path: Path):
    """The experiment file run here, tracked nowhere: its RunResult."""
    from tracker.api import load
    from tracker.recipe import run_experiment
    from tracker.registry import load_registry
    from tracker.reporting import NullLogger

    @contextlib.contextmanager
    def start_run(experiment, parts, runner):
        yield NullLogger()

    registry = load_registry()
    return run_experiment(load(path, (), registry), registry, start_run)


def xp_offline(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """`xp ARGS` in `folder`, offline, one thread per process; whatever it says, never a traceback."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run(xp_command(*args), cwd=folder, capture_output=True, text=True, timeout=600, env=env)
    assert "Traceback" not in done.stderr, done.stderr[-4000:]
    return done

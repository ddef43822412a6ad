"""Tiny experiment files for tests: the tiny BERT on a few rows, changed section by section."""

from __future__ import annotations

from pathlib import Path

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

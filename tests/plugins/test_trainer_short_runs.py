"""Runs shorter than `logging_steps`, and what the `trainer` runner leaves on disk.

Every runner logs its training metrics at the last step, whatever `logging_steps` says, so a
short run still has a final training loss; the Trainer's checkpoint folder is there only when
it holds checkpoints. Real runs of the tiny BERT on 24 rows in batches of 8 (3 steps an epoch).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from tests.experiment_files import write_experiment
from tracker.api import load
from tracker.recipe import run_experiment
from tracker.registry import load_registry
from tracker.reporting import NullLogger

RUNNERS = ("trainer", "loop", "accelerate")
TRAIN_LOG = {"train_loss", "learning_rate", "grad_norm", "epoch", "train_samples_per_second", "train_tokens_per_second"}


class RecordingLogger(NullLogger):
    """A run logger that keeps the metrics logged at each step (and nothing else)."""

    def __init__(self) -> None:
        self.metrics: list[tuple[int, dict[str, float]]] = []

    def log_metrics(self, metrics, step: int) -> None:
        self.metrics.append((step, dict(metrics)))

    def training_logs(self) -> list[tuple[int, set[str]]]:
        return [(step, set(metrics)) for step, metrics in self.metrics if "train_loss" in metrics]


def run(path: Path):
    """Run an experiment file the way `xp run` does, tracking replaced by a recording logger."""
    logger = RecordingLogger()

    @contextlib.contextmanager
    def start_run(experiment, parts, runner):
        yield logger

    registry = load_registry()
    return run_experiment(load(path, [], registry), registry, start_run), logger


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize(
    ("max_steps", "logging_steps", "logged_at"),
    [
        (3, 10, [3]),  # shorter than logging_steps: the last step logs anyway
        (5, 2, [2, 4, 5]),  # not a multiple of logging_steps: every second step, and the last
    ],
)
def test_the_last_step_always_logs_the_training_metrics(
    tmp_path, tiny_checkpoint, short_run_data, runner, max_steps, logging_steps, logged_at
):
    path = write_experiment(
        tmp_path / "short.toml",
        tiny_checkpoint,
        short_run_data,
        runner={"use": runner, "max_steps": max_steps, "logging_steps": logging_steps},
    )
    result, logger = run(path)
    assert result.steps == max_steps
    assert logger.training_logs() == [(step, TRAIN_LOG) for step in logged_at]


def test_trainer_without_checkpoints_leaves_no_checkpoint_folder(tmp_path, tiny_checkpoint, short_run_data):
    path = write_experiment(
        tmp_path / "no-save.toml",
        tiny_checkpoint,
        short_run_data,
        runner={"use": "trainer", "max_steps": 3, "save_model": True},
    )
    result, _ = run(path)
    assert not (result.output_dir / "checkpoints").exists()
    assert (result.output_dir / "model" / "config.json").exists()  # the run's other outputs stay

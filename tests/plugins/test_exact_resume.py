"""Resuming the loop and Accelerate runners from any of their checkpoints gives exactly the run
that never stopped: every logged value after the checkpoint, the early-stopping decision, the
best weights restored at the end and the final metrics. In-process runs of the tiny BERT with
dropout on (so every random state matters), gradient accumulation, and epochs of 3 steps."""

from __future__ import annotations

import contextlib

import pytest

from tests.experiment_files import write_experiment
from tests.plugins.test_trainer_short_runs import RecordingLogger, run
from tracker.api import load
from tracker.recipe import run_experiment
from tracker.registry import load_registry
from tracker.resume import Resume, saved_checkpoints

# Values that measure time, not training.
TIMINGS = ("train_samples_per_second", "train_tokens_per_second")


def logged(logger, after: int = 0) -> list[tuple[int, dict[str, float]]]:
    return [
        (step, {k: v for k, v in metrics.items() if k not in TIMINGS})
        for step, metrics in logger.metrics
        if step > after
    ]


def resumed_from(path, checkpoint):
    """The experiment at `path` resumed from `checkpoint`, untracked, as `xp resume` runs it."""
    logger = RecordingLogger()

    @contextlib.contextmanager
    def start_run(experiment, parts, runner):
        yield logger

    registry = load_registry()
    resume = Resume(run_id="", store="", checkpoint=checkpoint)
    return run_experiment(load(path, [], registry), registry, start_run, resume=resume), logger


@pytest.mark.parametrize("runner", ["loop", "accelerate"])
@pytest.mark.parametrize("evaluation", [{"eval_strategy": "epoch"}, {"eval_strategy": "steps", "eval_steps": 2}])
def test_resuming_from_any_checkpoint_repeats_the_uninterrupted_run(
    tmp_path, tiny_checkpoint, short_run_data, runner, evaluation
):
    path = write_experiment(
        tmp_path / "exact.toml",
        tiny_checkpoint,
        short_run_data,
        runner={
            "use": runner,
            "num_epochs": 6,
            "batch_size": 4,
            "gradient_accumulation_steps": 2,
            **evaluation,
            "early_stopping_patience": 2,
            "metric_for_best": "f1",
        },
        optimizer={"lr": 3e-3},
        checkpoint={"every_steps": 2, "at_evaluation": True, "keep": 100},
    )
    uninterrupted, logger = run(path)
    checkpoints = saved_checkpoints(next((uninterrupted.output_dir / "checkpoints").iterdir()))
    assert uninterrupted.steps < 18, "early stopping should stop these runs before their last epoch"
    assert len(checkpoints) >= 3

    for checkpoint in checkpoints[1:-1]:
        result, resumed = resumed_from(path, checkpoint)
        assert logged(resumed) == logged(logger, after=checkpoint.step), f"from step {checkpoint.step}"
        assert (result.steps, result.best_step, result.eval_metrics) == (
            uninterrupted.steps,
            uninterrupted.best_step,
            uninterrupted.eval_metrics,
        )
        assert result.diagnosis == uninterrupted.diagnosis

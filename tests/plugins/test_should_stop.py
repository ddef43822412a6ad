"""Parts.should_stop, what a sweep's pruner uses: asked after every evaluation with the step and
the metrics, True ends training right there, in every runner, with no test predictions and no
saved model (a trial given up)."""

from __future__ import annotations

import contextlib

import pytest

from tests.experiment_files import write_experiment
from tests.plugins.test_runners import RUNNERS, RecordingLogger
from tracker.api import load
from tracker.recipe import run_experiment
from tracker.registry import load_registry


@pytest.mark.parametrize("runner", RUNNERS)
def test_should_stop_ends_training_after_the_evaluation_it_answers_true_without_predictions_or_model(
    tmp_path, tiny_checkpoint, data, runner
):
    # What a sweep's pruner does through Parts.should_stop: asked after every evaluation with the
    # step and the metrics, here it gives up after the second one.
    path = write_experiment(
        tmp_path / "pruned.toml",
        tiny_checkpoint,
        data,
        runner={"use": runner, "num_epochs": 4, "eval_strategy": "steps", "eval_steps": 2, "save_model": True},
    )
    asked: list[tuple[int, float]] = []

    def should_stop(step, metrics):
        asked.append((step, metrics["eval_f1"]))
        return len(asked) == 2

    logger = RecordingLogger()

    @contextlib.contextmanager
    def start_run(experiment, parts, runner_):
        yield logger

    registry = load_registry()
    result = run_experiment(load(path, (), registry), registry, start_run, should_stop=should_stop)

    assert [step for step, _ in asked] == [2, 4]
    assert asked == list(zip(logger.steps("eval_f1"), logger.values("eval_f1"), strict=True))
    assert result.cut_short and result.steps == 4 < 4 * 3
    assert result.model_dir is None and result.predictions_path is None and not result.test_metrics
    assert max(logger.steps("train_loss")) == 4

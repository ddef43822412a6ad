"""The line `xp run` sums a run up with: the score the run ranks by, else the validation split's
first score, whatever the metric plugin is called and whichever runner computed it."""

from __future__ import annotations

import pytest

from tests.mlflow_helpers import QUICKSTART
from tracker.api import load
from tracker.components import RunResult
from tracker.session import Outcome


@pytest.fixture(scope="module")
def experiment(registry):
    return load(QUICKSTART, registry=registry)


@pytest.mark.parametrize(
    ("eval_metrics", "main"),
    [
        # the loop and Accelerate runners: the loss, then each configured metric's scores in order
        ({"eval_loss": 0.6, "eval_accuracy": 0.7, "eval_f1": 0.8}, ("eval_accuracy", 0.7)),
        # the Trainer: timings beside the scores, the loss anywhere
        (
            {"eval_runtime": 1.5, "eval_samples_per_second": 40.0, "eval_f1": 0.8, "eval_loss": 0.6, "epoch": 2.0},
            ("eval_f1", 0.8),
        ),
        ({"eval_loss": 0.6, "eval_runtime": 1.5}, ("eval_loss", 0.6)),  # no metric configured
        ({}, None),
    ],
    ids=["loop", "trainer", "loss only", "nothing"],
)
def test_the_main_metric_is_the_first_validation_score_else_the_loss(experiment, eval_metrics, main):
    outcome = Outcome(experiment, "finished", 1.0, RunResult(eval_metrics=eval_metrics))

    assert outcome.main_metric == main


@pytest.mark.parametrize("ranked_by", ["f1", "eval_f1"])
def test_the_main_metric_is_the_one_the_run_ranks_by(registry, ranked_by):
    experiment = load(QUICKSTART, registry=registry, overrides=[f'runner.metric_for_best="{ranked_by}"'])
    outcome = Outcome(experiment, "finished", 1.0, RunResult(eval_metrics={"eval_accuracy": 0.7, "eval_f1": 0.8}))

    assert outcome.main_metric == ("eval_f1", 0.8)


def test_a_run_without_a_result_has_no_main_metric(experiment):
    assert Outcome(experiment, "failed", 1.0, error="boom").main_metric is None

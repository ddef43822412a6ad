"""Metric names in MLflow use its `prefix/name` grouping, whatever spelling a runner logs."""

import pytest

from tracker.metric_names import stored_name


@pytest.mark.parametrize(
    ("logged", "stored"),
    [
        ("train_loss", "train/loss"),
        ("train_samples_per_second", "train/samples_per_second"),
        ("learning_rate", "train/learning_rate"),
        ("grad_norm", "train/grad_norm"),
        ("epoch", "train/epoch"),
        ("eval_loss", "eval/loss"),
        ("eval_f1_macro", "eval/f1_macro"),
        ("test_accuracy", "test/accuracy"),
    ],
)
def test_runner_names_get_their_prefix_as_a_group(logged, stored):
    assert stored_name(logged) == stored


@pytest.mark.parametrize("name", ["system/cpu_utilization_percentage", "eval/accuracy", "custom", "evaluation"])
def test_names_already_grouped_or_without_a_known_prefix_are_kept(name):
    assert stored_name(name) == name

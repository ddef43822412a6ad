"""Early stopping on one validation metric (tracker/early_stopping.py), as every runner uses it."""

import pytest

from tracker.early_stopping import EarlyStopping


def feed(stopper: EarlyStopping, *values: float) -> list[bool]:
    """Evaluations at steps 10, 20, ...; whether each was the best so far."""
    return [stopper.update({"eval_loss": 1.0, stopper.metric: value}, 10 * (i + 1)) for i, value in enumerate(values)]


@pytest.mark.parametrize(
    ("metric", "greater_is_better"),
    [
        ("eval_loss", False),
        ("eval_f1", True),
        ("eval_accuracy", True),
        ("eval_matthews_correlation", True),
    ],
)
def test_direction_is_inferred_from_the_name(metric, greater_is_better):
    assert EarlyStopping(metric, patience=1).greater_is_better is greater_is_better


def test_an_explicit_direction_wins_over_the_name():
    stopper = EarlyStopping("eval_mse", patience=1, greater_is_better=False)
    assert feed(stopper, 0.5, 0.4, 0.45) == [True, True, False]


def test_lower_loss_is_better():
    stopper = EarlyStopping("eval_loss", patience=2)
    assert feed(stopper, 0.7, 0.6, 0.65, 0.5) == [True, True, False, True]
    assert (stopper.best, stopper.best_step) == (0.5, 40)
    assert not stopper.should_stop


def test_higher_score_is_better():
    stopper = EarlyStopping("eval_f1", patience=2)
    assert feed(stopper, 0.6, 0.7, 0.65) == [True, True, False]
    assert (stopper.best, stopper.best_step) == (0.7, 20)


def test_stops_after_patience_evaluations_without_improvement():
    stopper = EarlyStopping("eval_loss", patience=2)
    feed(stopper, 0.5, 0.6)
    assert stopper.evaluations_without_improvement == 1 and not stopper.should_stop
    feed(stopper, 0.55)
    assert stopper.should_stop
    assert stopper.best_step == 10


def test_an_improvement_resets_the_count():
    stopper = EarlyStopping("eval_loss", patience=2)
    feed(stopper, 0.5, 0.6, 0.4, 0.45)
    assert stopper.evaluations_without_improvement == 1 and not stopper.should_stop


def test_an_equal_value_is_not_an_improvement():
    stopper = EarlyStopping("eval_f1", patience=1)
    assert feed(stopper, 0.0, 0.0) == [True, False]
    assert stopper.should_stop and stopper.best_step == 10


def test_improvements_no_larger_than_min_delta_do_not_count():
    stopper = EarlyStopping("eval_f1", patience=3, min_delta=0.01)
    assert feed(stopper, 0.80, 0.805, 0.809, 0.8201) == [True, False, False, True]
    assert (stopper.best, stopper.best_step) == (0.8201, 40)  # measured from the best, not the last


def test_an_improvement_of_exactly_min_delta_does_not_count():
    stopper = EarlyStopping("eval_f1", patience=3, min_delta=0.25)
    assert feed(stopper, 0.25, 0.5, 0.75) == [True, False, True]


def test_min_delta_applies_to_losses_downwards():
    stopper = EarlyStopping("eval_loss", patience=3, min_delta=0.05)
    assert feed(stopper, 1.0, 0.97, 0.9) == [True, False, True]


def test_a_metric_that_is_not_computed_is_named_with_the_ones_that_are():
    stopper = EarlyStopping("eval_precision", patience=1)
    with pytest.raises(KeyError, match=r'"eval_precision" .* eval_accuracy, eval_loss'):
        stopper.update({"eval_loss": 0.5, "eval_accuracy": 0.8}, 10)

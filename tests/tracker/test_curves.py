"""Reading learning curves (tracker/curves.py) on synthetic curves, one verdict at a time."""
import pytest

from tracker.curves import diagnose


def curve(*values: float, every: int = 10) -> list[tuple[int, float]]:
    """(step, value) points logged every `every` optimizer steps."""
    return [(every * (i + 1), value) for i, value in enumerate(values)]


FALLING = curve(1.0, 0.8, 0.6, 0.5, 0.4)


def test_good_fit_training_and_validation_loss_fall_together():
    diagnosis = diagnose(FALLING, curve(0.7, 0.6, 0.55, every=20))
    assert diagnosis.verdict == "good_fit"
    assert "60%" in diagnosis.explanation and "0.550" in diagnosis.explanation


def test_overfitting_validation_loss_climbs_back_while_training_loss_falls():
    diagnosis = diagnose(FALLING, curve(0.5, 0.4, 0.6, every=20))
    assert diagnosis.verdict == "overfitting"
    assert "0.400" in diagnosis.explanation and "0.600" in diagnosis.explanation


def test_a_small_rise_of_validation_loss_is_not_overfitting():
    # Within 10% of its best: noise, not over-fitting.
    assert diagnose(FALLING, curve(0.5, 0.40, 0.43, every=20)).verdict == "good_fit"


def test_validation_loss_rising_while_training_loss_is_flat_is_not_overfitting():
    flat = curve(0.70, 0.70, 0.69, 0.70, 0.69)
    assert diagnose(flat, curve(0.5, 0.4, 0.6, every=20)).verdict == "underfitting"


def test_underfitting_training_loss_barely_moves():
    diagnosis = diagnose(curve(0.70, 0.70, 0.69, 0.70, 0.69), curve(0.69, 0.69, every=20))
    assert diagnosis.verdict == "underfitting"
    assert "0.700 -> 0.690" in diagnosis.explanation


def test_erratic_training_loss_jumps_more_than_it_improves():
    jumpy = curve(1.0, 0.3, 1.2, 0.2, 1.1, 0.4, 0.9)
    diagnosis = diagnose(jumpy, curve(0.7, 0.7, every=30))
    assert diagnosis.verdict == "erratic"
    assert "learning rate" in diagnosis.explanation


def test_noise_smaller_than_the_improvement_is_not_erratic():
    noisy_but_falling = curve(1.0, 0.9, 0.95, 0.7, 0.75, 0.5, 0.55, 0.3, 0.35, 0.2)
    assert diagnose(noisy_but_falling, curve(0.6, 0.5, every=50)).verdict == "good_fit"


@pytest.mark.parametrize("train, evals", [
    (curve(1.0, 0.5), curve(0.6)),  # two training points
    ([], []),
    (FALLING, []),  # never evaluated
])
def test_not_enough_data(train, evals):
    assert diagnose(train, evals).verdict == "not_enough_data"

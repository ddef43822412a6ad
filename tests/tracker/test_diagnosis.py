"""The learning-curve diagnosis (tracker/diagnosis/) on synthetic evidence, one verdict at a time:
the reason's numbers and the suggestion of each, which check wins when several hold, thresholds
overridden in code and in an experiment file, the trivial baseline of a tiny task, and the
statistics of predictions.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.experiment_files import write_experiment
from tracker.api import load
from tracker.cli import main
from tracker.components import TaskData
from tracker.diagnosis import VERDICTS, Curves, Evidence, PredictionStats, Thresholds, diagnose
from tracker.diagnosis.baseline import trivial_scores
from tracker.diagnosis.report import tags_of, write_text
from tracker.task import Baseline
from xp_plugins.tasks.sequence_classification import SequenceClassification

REPO_ROOT = Path(__file__).resolve().parents[2]
PARAPHRASE = REPO_ROOT / "experiments" / "data" / "paraphrase"
NAMES = ("different", "paraphrase")


def curve(*values: float, every: int = 10) -> tuple[tuple[int, float], ...]:
    """(step, value) points logged every `every` optimizer steps, from step `every` on."""
    return tuple((every * (i + 1), value) for i, value in enumerate(values))


def evaluations(*metrics: dict[str, float], every: int = 20) -> tuple[tuple[int, dict[str, float]], ...]:
    """One evaluation every `every` steps, each with its metrics."""
    return tuple((every * (i + 1), m) for i, m in enumerate(metrics))


def evidence(train=(), evals=(), predictions=None, baseline=None, **keys) -> Evidence:
    return Evidence(Curves(tuple(train), tuple(evals)), predictions, baseline or {}, NAMES, **keys)


# Ten training-loss logs (steps 10..100): starts at 1.0, ends at 0.2 (means of the first and last fifth).
FALLING = curve(1.0, 1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.3, 0.2, 0.2)
FLAT = curve(0.70, 0.70, 0.69, 0.70, 0.69)
BALANCED = PredictionStats(class_shares=(0.5, 0.5), label_shares=(0.5, 0.5))
BASELINE = {"eval_accuracy": 0.5, "eval_f1": 0.6667}


def good_evals() -> tuple:
    return evaluations(
        {"eval_loss": 0.7, "eval_accuracy": 0.6},
        {"eval_loss": 0.6, "eval_accuracy": 0.7},
        {"eval_loss": 0.55, "eval_accuracy": 0.8},
        every=30,
    )


# -- one verdict at a time -----------------------------------------------------------------------


def test_good_fit_both_losses_fall_and_the_metrics_beat_the_baseline():
    diagnosis = diagnose(evidence(FALLING, good_evals(), BALANCED, BASELINE))
    assert diagnosis.verdict == "good_fit"
    assert diagnosis.reason == (
        "the training loss fell 80% (1.000 to 0.200) and the validation loss ended at 0.550 "
        "(best 0.550 at step 90); eval/accuracy 0.8000 (trivial 0.5000)"
    )
    assert "more epochs" in diagnosis.suggestion and diagnosis.since_step is None
    assert diagnosis.explanation == f"{diagnosis.reason}; {diagnosis.suggestion}"


def test_overfitting_validation_loss_rises_from_its_best_while_training_loss_falls():
    evals = evaluations({"eval_loss": 0.7}, {"eval_loss": 0.5}, {"eval_loss": 0.65}, {"eval_loss": 0.8}, every=25)
    diagnosis = diagnose(evidence(FALLING, evals, BALANCED))
    assert diagnosis.verdict == "overfitting"
    assert diagnosis.since_step == 50  # the step of the best evaluation, where it began
    assert "best 0.500 (step 50) to 0.800 (step 100)" in diagnosis.reason
    assert "stop around step 50" in diagnosis.suggestion and "early_stopping_patience" in diagnosis.suggestion
    assert diagnosis.numbers == {"best_eval_loss": 0.5, "last_eval_loss": 0.8}


def test_overfitting_a_metric_falls_from_its_best_while_the_loss_hardly_moves():
    evals = evaluations(
        {"eval_loss": 0.60, "eval_accuracy": 0.70},
        {"eval_loss": 0.55, "eval_accuracy": 0.85},
        {"eval_loss": 0.56, "eval_accuracy": 0.75},
        every=30,
    )
    diagnosis = diagnose(evidence(FALLING, evals, BALANCED, BASELINE))
    assert diagnosis.verdict == "overfitting"
    assert diagnosis.since_step == 60
    assert "eval/accuracy fell from its best 0.8500 (step 60) to 0.7500 (step 90)" in diagnosis.reason
    assert "stop around step 60" in diagnosis.suggestion


def test_a_lower_is_better_metric_rising_from_its_best_is_overfitting():
    evals = evaluations(
        {"eval_loss": 0.6, "eval_mse": 0.50},
        {"eval_loss": 0.58, "eval_mse": 0.30},
        {"eval_loss": 0.59, "eval_mse": 0.45},
        every=30,
    )
    diagnosis = diagnose(evidence(FALLING, evals))
    assert diagnosis.verdict == "overfitting"
    assert "eval/mse fell from its best 0.3000 (step 60) to 0.4500 (step 90)" in diagnosis.reason


def test_a_rise_within_the_thresholds_is_not_overfitting():
    # Validation loss 8% above its best (under 10%), accuracy 0.01 below its best (under 0.02): noise.
    evals = evaluations(
        {"eval_loss": 0.60, "eval_accuracy": 0.70},
        {"eval_loss": 0.50, "eval_accuracy": 0.81},
        {"eval_loss": 0.54, "eval_accuracy": 0.80},
        every=30,
    )
    assert diagnose(evidence(FALLING, evals, BALANCED, BASELINE)).verdict == "good_fit"


def test_underfitting_the_training_loss_barely_falls():
    evals = evaluations({"eval_loss": 0.69}, {"eval_loss": 0.69}, {"eval_loss": 0.69}, every=15)
    diagnosis = diagnose(evidence(FLAT, evals, BALANCED))
    assert diagnosis.verdict == "underfitting"
    assert diagnosis.reason == "the training loss barely fell (0.700 to 0.690, 1.4%)"
    assert "raise the learning rate" in diagnosis.suggestion


def test_underfitting_every_metric_is_near_always_predicting_the_majority_class():
    evals = evaluations(
        {"eval_loss": 0.69, "eval_accuracy": 0.50, "eval_f1": 0.66},
        {"eval_loss": 0.68, "eval_accuracy": 0.52, "eval_f1": 0.65},
        {"eval_loss": 0.68, "eval_accuracy": 0.51, "eval_f1": 0.67},
        every=30,
    )
    diagnosis = diagnose(evidence(FALLING, evals, BALANCED, BASELINE, trivial='"paraphrase"'))
    assert diagnosis.verdict == "underfitting"
    assert diagnosis.reason == (
        'the validation metrics are no better than always predicting "paraphrase": '
        "eval/accuracy 0.5100 against 0.5000, eval/f1 0.6700 against 0.6667"
    )
    assert "check that the labels match the text" in diagnosis.suggestion


def test_one_metric_clearly_above_the_baseline_is_not_underfitting():
    evals = evaluations(
        {"eval_loss": 0.69, "eval_accuracy": 0.60, "eval_f1": 0.66},
        {"eval_loss": 0.68, "eval_accuracy": 0.62, "eval_f1": 0.65},
        {"eval_loss": 0.68, "eval_accuracy": 0.65, "eval_f1": 0.67},
        every=30,
    )
    assert diagnose(evidence(FALLING, evals, BALANCED, BASELINE)).verdict == "good_fit"


@pytest.mark.parametrize(
    ("train", "evals", "said"),
    [
        (curve(1.0, 0.8, float("nan"), 0.5, 0.4), good_evals(), "the training loss became nan at step 30"),
        (
            FALLING,
            evaluations({"eval_loss": 0.7}, {"eval_loss": float("inf")}, {"eval_loss": 0.5}),
            "the validation loss became inf at step 40",
        ),
    ],
)
def test_not_learning_a_loss_that_is_not_a_number(train, evals, said):
    diagnosis = diagnose(evidence(train, evals, BALANCED))
    assert diagnosis.verdict == "not_learning"
    assert diagnosis.reason == said
    assert diagnosis.since_step == int(said.rsplit(" ", 1)[1])
    assert "lower the learning rate" in diagnosis.suggestion


def test_not_learning_one_class_for_every_validation_row():
    stats = PredictionStats(class_shares=(1.0, 0.0), label_shares=(0.5, 0.5))
    diagnosis = diagnose(evidence(FALLING, good_evals(), stats, BASELINE))
    assert diagnosis.verdict == "not_learning"
    assert (
        diagnosis.reason == 'the model predicts "different" for 100.0% of the validation rows, which have 50.0% of it'
    )
    assert diagnosis.numbers == {"top_class_share": 1.0, "label_share": 0.5}
    assert "learning rate" in diagnosis.suggestion


def test_not_learning_the_same_answer_to_every_question():
    """Question answering names what it counts itself: the answer given most often, or none."""
    stats = PredictionStats(class_shares=(1.0,), label_shares=(0.5,), names=("no answer",), unit="questions")
    diagnosis = diagnose(Evidence(Curves(FALLING, good_evals()), stats, {}, None))
    assert diagnosis.verdict == "not_learning"
    assert diagnosis.reason == (
        'the model predicts "no answer" for 100.0% of the validation questions, which have 50.0% of it'
    )


def test_not_learning_regression_outputs_that_hardly_vary():
    stats = PredictionStats(output_std=0.001, label_std=1.2)
    diagnosis = diagnose(Evidence(Curves(FALLING, good_evals()), stats, {}, None))
    assert diagnosis.verdict == "not_learning"
    assert diagnosis.reason == (
        "the outputs hardly vary (spread 0.001 against the labels' 1.2): the model predicts about one value"
    )
    assert "label scale" in diagnosis.suggestion


def test_regression_outputs_that_vary_are_learning():
    stats = PredictionStats(output_std=0.5, label_std=1.2)
    assert diagnose(Evidence(Curves(FALLING, good_evals()), stats, {}, None)).verdict == "good_fit"


def test_unstable_the_training_loss_spikes():
    spiky = curve(1.0, 0.9, 0.8, 0.7, 3.0, 0.6, 0.5, 0.4, 0.35, 0.3)
    diagnosis = diagnose(evidence(spiky, good_evals(), BALANCED))
    assert diagnosis.verdict == "unstable"
    assert diagnosis.since_step == 50
    # 3.0 against the median 0.85 of the four logs before it.
    assert (
        diagnosis.reason
        == "the training loss jumped to 3.000 at step 50, 3.5 times the median 0.850 of the logs before"
    )
    assert "max_grad_norm" in diagnosis.suggestion


def test_unstable_the_training_loss_diverges():
    rising = curve(0.50, 0.52, 0.55, 0.58, 0.60, 0.63, 0.66, 0.70, 0.72, 0.75)
    diagnosis = diagnose(evidence(rising, good_evals(), BALANCED))
    assert diagnosis.verdict == "unstable"
    assert diagnosis.reason == "the training loss rose from 0.510 to 0.735: training diverged"
    assert "lower the learning rate" in diagnosis.suggestion


@pytest.mark.parametrize(
    ("train", "evals", "counts"),
    [
        (FALLING, good_evals()[:2], "2 evaluation(s) and 10 training-loss log(s)"),
        (curve(1.0, 0.8, 0.6, 0.4), good_evals(), "3 evaluation(s) and 4 training-loss log(s)"),
        ((), (), "0 evaluation(s) and 0 training-loss log(s)"),
    ],
)
def test_not_enough_evidence_too_few_evaluations_or_training_logs(train, evals, counts):
    diagnosis = diagnose(evidence(train, evals, BALANCED))
    assert diagnosis.verdict == "not_enough_evidence"
    assert diagnosis.reason == f"{counts}: a verdict needs at least 3 and 5"
    assert "eval_steps" in diagnosis.suggestion and "logging_steps" in diagnosis.suggestion


def test_every_verdict_is_named_in_verdicts():
    assert set(VERDICTS) == {
        "good_fit",
        "overfitting",
        "underfitting",
        "not_learning",
        "unstable",
        "not_enough_evidence",
    }


# -- which check wins --------------------------------------------------------------------------


def test_a_nan_loss_beats_not_enough_evidence():
    assert diagnose(evidence(curve(1.0, float("nan")), ())).verdict == "not_learning"


def test_one_class_predicted_beats_not_enough_evidence():
    stats = PredictionStats(class_shares=(0.0, 1.0), label_shares=(0.5, 0.5))
    assert diagnose(evidence(curve(1.0, 0.9), (), stats)).verdict == "not_learning"


def test_one_class_predicted_where_the_labels_are_all_that_class_is_not_not_learning():
    stats = PredictionStats(class_shares=(1.0, 0.0), label_shares=(1.0, 0.0))
    assert diagnose(evidence(FALLING, good_evals(), stats, BASELINE)).verdict == "good_fit"


def test_not_enough_evidence_beats_unstable_and_overfitting():
    spiky = curve(1.0, 0.9, 0.8, 0.7, 3.0, 0.6)
    assert diagnose(evidence(spiky, good_evals()[:2], BALANCED)).verdict == "not_enough_evidence"


def test_unstable_beats_overfitting():
    spiky = curve(1.0, 0.9, 0.8, 0.7, 3.0, 0.6, 0.5, 0.4, 0.35, 0.3)
    evals = evaluations({"eval_loss": 0.7}, {"eval_loss": 0.5}, {"eval_loss": 0.8}, every=30)
    assert diagnose(evidence(spiky, evals, BALANCED)).verdict == "unstable"


@pytest.mark.parametrize(
    "flat",
    [
        curve(0.70, 0.70, 0.70, 0.70, 0.70, 0.70),
        # noise of 0.01 around a flat loss is no fall
        curve(0.70, 0.70, 0.69, 0.70, 0.69, 0.70),
    ],
)
def test_validation_loss_rising_while_training_loss_is_flat_is_underfitting_not_overfitting(flat):
    evals = evaluations({"eval_loss": 0.6}, {"eval_loss": 0.5}, {"eval_loss": 0.8}, every=20)
    assert diagnose(evidence(flat, evals, BALANCED)).verdict == "underfitting"


def test_overfitting_beats_underfitting_near_the_baseline():
    evals = evaluations(
        {"eval_loss": 0.6, "eval_accuracy": 0.5},
        {"eval_loss": 0.5, "eval_accuracy": 0.5},
        {"eval_loss": 0.9, "eval_accuracy": 0.5},
        every=30,
    )
    assert diagnose(evidence(FALLING, evals, BALANCED, BASELINE)).verdict == "overfitting"


def test_the_verdict_depends_only_on_the_evidence():
    made = evidence(FALLING, good_evals(), BALANCED, BASELINE)
    again = evidence(tuple(FALLING), tuple(good_evals()), BALANCED, dict(BASELINE))
    assert diagnose(made) == diagnose(again)


# -- thresholds --------------------------------------------------------------------------------

OVERFIT_BY_20_PERCENT = evaluations({"eval_loss": 0.6}, {"eval_loss": 0.5}, {"eval_loss": 0.6}, every=30)


def test_thresholds_of_a_section_override_the_defaults_and_ignore_other_keys():
    assert Thresholds.of(None) == Thresholds() == Thresholds.of({})
    thresholds = Thresholds.of({"overfit_rise": 0.5, "min_evaluations": 2, "unrelated": 1})
    assert (thresholds.overfit_rise, thresholds.min_evaluations, thresholds.spike_factor) == (0.5, 2, 3.0)


@pytest.mark.parametrize(
    ("section", "evals", "stats", "default", "overridden"),
    [
        ({"overfit_rise": 0.5}, OVERFIT_BY_20_PERCENT, BALANCED, "overfitting", "good_fit"),
        ({"min_evaluations": 2}, good_evals()[:2], BALANCED, "not_enough_evidence", "good_fit"),
        (
            {"single_class_share": 0.9},
            good_evals(),
            PredictionStats((0.95, 0.05), (0.5, 0.5)),
            "good_fit",
            "not_learning",
        ),
        ({"flat_train_drop": 0.9}, good_evals(), BALANCED, "good_fit", "underfitting"),
    ],
)
def test_overridden_thresholds_change_the_verdict(section, evals, stats, default, overridden):
    made = evidence(FALLING, evals, stats)
    assert diagnose(made).verdict == default
    assert diagnose(made, Thresholds.of(section)).verdict == overridden


def test_a_spike_under_a_raised_spike_factor_is_not_unstable():
    spiky = curve(1.0, 0.9, 0.8, 0.7, 3.0, 0.6, 0.5, 0.4, 0.35, 0.3)
    assert diagnose(evidence(spiky, good_evals(), BALANCED), Thresholds(spike_factor=5)).verdict == "good_fit"


def paraphrase_experiment(path: Path, **changes: dict) -> Path:
    """A valid experiment file on the shipped paraphrase data (no model is loaded to check it)."""
    data = {"train": str(PARAPHRASE / "train.csv"), "validation": str(PARAPHRASE / "validation.csv")}
    return write_experiment(path, Path("bert-base-uncased"), data, **changes)


def test_diagnosis_section_of_an_experiment_file_reaches_the_settings(tmp_path):
    experiment = load(paraphrase_experiment(tmp_path / "tuned.toml", diagnosis={"overfit_rise": 0.5}))
    section = experiment.settings["diagnosis"]
    assert section["overfit_rise"] == 0.5
    assert Thresholds.of(section) == Thresholds(overfit_rise=0.5)
    made = evidence(FALLING, OVERFIT_BY_20_PERCENT, BALANCED)
    assert diagnose(made, Thresholds.of(section)).verdict == "good_fit"
    assert not load(paraphrase_experiment(tmp_path / "plain.toml")).settings.get("diagnosis")


def test_xp_validate_refuses_invalid_thresholds_with_exit_code_2(tmp_path):
    path = paraphrase_experiment(tmp_path / "bad.toml", diagnosis={"spike_factor": 1, "single_class_share": 1.5})
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "[diagnosis] spike_factor: expected a number > 1, got 1" in result.output
    assert "[diagnosis] single_class_share: " in result.output


# -- the trivial baseline ----------------------------------------------------------------------


def trivial(train: list, eval: list, names: tuple[str, ...] | None) -> tuple[Baseline, list, TaskData]:
    """What sequence classification's trivial predictor predicts for these labels, and the
    validation labels it is scored against."""
    from datasets import Dataset

    splits = {"train": Dataset.from_dict({"label": train}), "eval": Dataset.from_dict({"label": eval})}
    data = TaskData(splits, ("text",), SequenceClassification().with_labels(names))
    return data.task.baseline(data), eval, data


def test_trivial_scores_of_classification_predict_the_training_majority_on_the_validation_rows(registry):
    # Training rows are mostly "paraphrase" (1); validation rows mostly "different" (0).
    baseline, references, data = trivial([1, 1, 1, 0], [0, 1, 1, 0, 0], NAMES)
    metrics = [registry.get("metric", name).factory(data) for name in ("accuracy", "f1")]
    scores, directions = trivial_scores(baseline.predictions, references, metrics)
    # Always 1: 2 of 5 right; precision 2/5, recall 1, so F1 = 2 * 0.4 / 1.4.
    assert scores == pytest.approx({"eval_accuracy": 0.4, "eval_f1": 0.8 / 1.4})
    assert directions == {"eval_accuracy": True, "eval_f1": True}
    assert baseline.described == '"paraphrase"'


def test_trivial_scores_of_a_majority_class_absent_from_validation(registry):
    baseline, references, data = trivial([0, 0, 1], [1, 1, 1], NAMES)
    metrics = [registry.get("metric", name).factory(data) for name in ("accuracy", "f1")]
    assert trivial_scores(baseline.predictions, references, metrics)[0] == {"eval_accuracy": 0.0, "eval_f1": 0.0}
    assert baseline.described == '"different"'


class MeanSquaredError:
    """A lower-is-better metric, as a third-party plugin may bring."""

    greater_is_better = False

    def compute(self, predictions, references):
        return {"mse": sum((p - r) ** 2 for p, r in zip(predictions, references, strict=True)) / len(references)}


def test_trivial_scores_of_regression_predict_the_training_mean(registry):
    baseline, references, data = trivial([1.0, 2.0, 3.0], [0.5, 4.0, 2.5], None)
    metrics = [
        registry.get("metric", "pearson").factory(data),
        registry.get("metric", "spearman").factory(data),
        MeanSquaredError(),
    ]
    scores, directions = trivial_scores(baseline.predictions, references, metrics)
    # A constant has no correlation: counted as 0, not NaN. The error is that of predicting 2.0.
    assert scores == pytest.approx(
        {"eval_pearson": 0.0, "eval_spearman": 0.0, "eval_mse": (1.5**2 + 2.0**2 + 0.5**2) / 3}
    )
    assert directions == {"eval_pearson": True, "eval_spearman": True, "eval_mse": False}
    assert baseline.described == "the training mean"


def test_a_lower_is_better_baseline_is_compared_the_right_way():
    evals = evaluations(
        {"eval_loss": 0.9, "eval_mse": 2.2},
        {"eval_loss": 0.8, "eval_mse": 2.15},
        {"eval_loss": 0.7, "eval_mse": 2.16},
        every=30,
    )
    made = Evidence(
        Curves(FALLING, evals),
        PredictionStats(output_std=0.5, label_std=1.5),
        {"eval_mse": 2.17},
        None,
        {"eval_mse": False},
        trivial="the training mean",
    )
    diagnosis = diagnose(made)
    assert diagnosis.verdict == "underfitting"
    assert "always predicting the training mean: eval/mse 2.1600 against 2.1700" in diagnosis.reason
    # Well under the baseline's error: learning.
    better = Evidence(Curves(FALLING, evals), made.predictions, {"eval_mse": 3.0}, None, {"eval_mse": False})
    assert diagnose(better).verdict == "good_fit"


# -- statistics of predictions, and where a diagnosis shows ------------------------------------


def test_prediction_stats_of_classes_count_each_class_share():
    stats = PredictionStats.of_classes([0, 0, 1, 0], [0, 1, 1, 1], 3)
    assert stats.class_shares == (0.75, 0.25, 0.0)
    assert stats.label_shares == (0.25, 0.75, 0.0)
    assert stats.output_std is None and stats.label_std is None


def test_prediction_stats_of_regression_measure_the_spread():
    stats = PredictionStats.of_values([1.0, 1.0, 1.0], [0.0, 1.0, 2.0])
    assert stats.output_std == 0.0
    assert stats.label_std == pytest.approx(math.sqrt(2 / 3))
    assert stats.class_shares is None


def test_tags_and_text_of_a_diagnosis(tmp_path):
    evals = evaluations({"eval_loss": 0.7}, {"eval_loss": 0.5}, {"eval_loss": 0.8}, every=30)
    made = evidence(FALLING, evals, BALANCED, BASELINE, trivial='"paraphrase"')
    diagnosis = diagnose(made)
    assert tags_of(diagnosis) == {
        "xp.diagnosis": "overfitting",
        "xp.diagnosis.reason": diagnosis.reason,
        "xp.diagnosis.suggestion": diagnosis.suggestion,
        "xp.diagnosis.explanation": diagnosis.explanation,
        "xp.diagnosis.since_step": "60",
    }
    text = write_text(tmp_path / "out" / "diagnosis.txt", diagnosis, made, Thresholds()).read_text(encoding="utf-8")
    assert text.startswith("verdict:    overfitting\n")
    assert f"reason:     {diagnosis.reason}\n" in text
    assert "since step: 60\n" in text
    assert 'trivial baseline (always "paraphrase"): eval/accuracy 0.5000, eval/f1 0.6667' in text
    assert "evaluations: 3, training-loss logs: 10" in text
    assert "overfit_rise = 0.1" in text
    assert "xp.diagnosis.since_step" not in tags_of(diagnose(evidence(FALLING, good_evals(), BALANCED)))

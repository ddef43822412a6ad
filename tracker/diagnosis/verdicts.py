"""The verdict on a run's learning curves, with the reason in numbers and what to try next.

Checked in this order, the first that holds is the verdict:

1. not_learning: a NaN or infinite loss; one class predicted for (nearly) every validation row;
   regression outputs that hardly vary. Nothing else about the curves matters then, unless the
   training loss never moved: a model still at its initial weights is underfitting (5).
2. not_enough_evidence: fewer than `min_evaluations` evaluations or `min_train_logs` training
   logs: no trend can be told from noise.
3. unstable: the training loss spikes (a log `spike_factor` times the median before it) or ends
   `diverge_rise` higher than it started.
4. overfitting: validation loss `overfit_rise` above its best, or a validation metric `metric_drop`
   below its best, while the training loss kept falling; from the step of the best evaluation.
5. underfitting: the training loss fell by less than `flat_train_drop`, or every validation metric
   is within `baseline_margin` of the task's trivial predictor (always one class, or the mean).
6. good_fit: otherwise.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from tracker.diagnosis.evidence import Evidence, Point, finite

VERDICTS = ("good_fit", "overfitting", "underfitting", "not_learning", "unstable", "not_enough_evidence")


@dataclass(frozen=True)
class Thresholds:
    """The keys of [diagnosis] (tracker.spec.sections.diagnosis_section), where they are declared
    and documented; the defaults here are the same."""

    min_evaluations: int = 3
    min_train_logs: int = 5
    overfit_rise: float = 0.1
    metric_drop: float = 0.02
    flat_train_drop: float = 0.05
    baseline_margin: float = 0.02
    spike_factor: float = 3.0
    diverge_rise: float = 0.1
    single_class_share: float = 0.99
    constant_output_ratio: float = 0.01

    @classmethod
    def of(cls, section: Mapping[str, Any] | None) -> Thresholds:
        names = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in (section or {}).items() if key in names})


@dataclass(frozen=True)
class Diagnosis:
    verdict: str  # one of VERDICTS
    reason: str  # a sentence with the numbers behind the verdict
    suggestion: str  # what to try next
    since_step: int | None = None  # overfitting: the step of the best evaluation, where it began
    numbers: Mapping[str, float] = field(default_factory=dict)

    @property
    def explanation(self) -> str:
        return f"{self.reason}; {self.suggestion}" if self.suggestion else self.reason


def diagnose(evidence: Evidence, thresholds: Thresholds = Thresholds()) -> Diagnosis:
    for check in (_not_learning, _not_enough_evidence, _unstable, _overfitting, _underfitting):
        found = check(evidence, thresholds)
        if found is not None:
            return found
    return _good_fit(evidence)


def _not_learning(evidence: Evidence, limits: Thresholds) -> Diagnosis | None:
    curves = evidence.curves
    for name, points in (("training loss", curves.train_loss), ("validation loss", curves.eval_loss)):
        broken = next(((step, value) for step, value in points if not finite(value)), None)
        if broken is not None:
            return Diagnosis(
                "not_learning",
                f"the {name} became {broken[1]} at step {broken[0]}",
                "lower the learning rate; with fp16, try bf16 or fp32; check the labels for out-of-range values",
                broken[0],
            )
    stats = evidence.predictions
    if stats is None:
        return None
    # A model whose training loss never moved is still where it started, predicting whatever its
    # initial weights do: that is underfitting (raise the learning rate), not a collapse.
    shares = stats.class_shares
    if shares and not _flat(curves.train_loss, limits):
        top = max(range(len(shares)), key=lambda k: shares[k])
        share, natural = shares[top], (stats.label_shares or (0.0,) * (top + 1))[top]
        if share >= limits.single_class_share and natural < limits.single_class_share:
            label = _class_name(evidence, top)
            return Diagnosis(
                "not_learning",
                f'the model predicts "{label}" for {share:.1%} of the validation {stats.unit}, '
                f"which have {natural:.1%} of it",
                "lower the learning rate if the loss jumped, raise it if the loss stayed flat; check "
                "that the labels match the text and how unbalanced the classes are",
                numbers={"top_class_share": share, "label_share": natural},
            )
    if stats.output_std is not None and stats.label_std and not _flat(curves.train_loss, limits):
        ratio = stats.output_std / stats.label_std
        if ratio < limits.constant_output_ratio:
            return Diagnosis(
                "not_learning",
                f"the outputs hardly vary (spread {stats.output_std:.4g} against the "
                f"labels' {stats.label_std:.4g}): the model predicts about one value",
                "lower the learning rate if the loss jumped, raise it if it stayed flat; check the label scale",
                numbers={"output_std": stats.output_std, "label_std": stats.label_std},
            )
    return None


def _not_enough_evidence(evidence: Evidence, limits: Thresholds) -> Diagnosis | None:
    evaluations, logs = len(evidence.curves.evaluations), len(evidence.curves.train_loss)
    if evaluations >= limits.min_evaluations and logs >= limits.min_train_logs:
        return None
    return Diagnosis(
        "not_enough_evidence",
        f"{evaluations} evaluation(s) and {logs} training-loss log(s): a verdict needs at least "
        f"{limits.min_evaluations} and {limits.min_train_logs}",
        'evaluate more often (eval_strategy = "steps" with eval_steps) and log more often '
        "(logging_steps), or train longer",
    )


def _unstable(evidence: Evidence, limits: Thresholds) -> Diagnosis | None:
    train = evidence.curves.train_loss
    for index in range(3, len(train)):
        before = statistics.median(value for _, value in train[:index])
        step, value = train[index]
        if before > 0 and value > limits.spike_factor * before:
            return Diagnosis(
                "unstable",
                f"the training loss jumped to {value:.3f} at step {step}, "
                f"{value / before:.1f} times the median {before:.3f} of the logs before",
                "lower the learning rate, add warmup, or clip gradients (max_grad_norm)",
                step,
                {"spike": value, "median_before": before},
            )
    start, end = _start_and_end(train)
    if end > start * (1 + limits.diverge_rise):
        return Diagnosis(
            "unstable",
            f"the training loss rose from {start:.3f} to {end:.3f}: training diverged",
            "lower the learning rate or add warmup",
            numbers={"train_start": start, "train_end": end},
        )
    return None


def _overfitting(evidence: Evidence, limits: Thresholds) -> Diagnosis | None:
    curves = evidence.curves
    eval_loss = curves.eval_loss
    if len(eval_loss) >= 2:
        best_step, best = min(eval_loss, key=lambda point: point[1])
        last_step, last = eval_loss[-1]
        if (
            best_step < last_step
            and last > best * (1 + limits.overfit_rise)
            and _falls_after(curves.train_loss, best_step, limits)
        ):
            return Diagnosis(
                "overfitting",
                f"the validation loss rose from its best {best:.3f} (step {best_step}) to "
                f"{last:.3f} (step {last_step}) while the training loss kept falling",
                _STOP_EARLIER.format(step=best_step),
                best_step,
                {"best_eval_loss": best, "last_eval_loss": last},
            )
    for name in curves.metric_names():
        points = curves.metric(name)
        if len(points) < 2:
            continue
        higher = evidence.better_higher(name)
        best_step, best = (max if higher else min)(points, key=lambda point: point[1])
        last_step, last = points[-1]
        worse = best - last if higher else last - best
        if best_step < last_step and worse > limits.metric_drop and _falls_after(curves.train_loss, best_step, limits):
            shown = name.replace("eval_", "eval/", 1)
            return Diagnosis(
                "overfitting",
                f"{shown} fell from its best {best:.4f} (step {best_step}) to {last:.4f} "
                f"(step {last_step}) while the training loss kept falling",
                _STOP_EARLIER.format(step=best_step),
                best_step,
                {f"best_{name}": best, name: last},
            )
    return None


_STOP_EARLIER = (
    "stop around step {step}: early stopping (early_stopping_patience = 2) or fewer epochs; "
    "more data, or more weight decay"
)


def _underfitting(evidence: Evidence, limits: Thresholds) -> Diagnosis | None:
    start, end = _start_and_end(evidence.curves.train_loss)
    drop = (start - end) / start if start > 0 else 0.0
    if drop < limits.flat_train_drop:
        return Diagnosis(
            "underfitting",
            f"the training loss barely fell ({start:.3f} to {end:.3f}, {drop:.1%})" + _one_class(evidence, limits),
            "raise the learning rate, train longer, or use a larger model",
            numbers={"train_start": start, "train_end": end},
        )
    near = _near_baseline(evidence, limits)
    if near:
        compared = ", ".join(
            f"{name.replace('eval_', 'eval/', 1)} {value:.4f} against {baseline:.4f}" for name, value, baseline in near
        )
        return Diagnosis(
            "underfitting",
            f"the validation metrics are no better than always predicting {evidence.trivial}: {compared}",
            "raise the learning rate, train longer, check that the labels match the text",
            numbers={name: value for name, value, _ in near},
        )
    return None


def _good_fit(evidence: Evidence) -> Diagnosis:
    start, end = _start_and_end(evidence.curves.train_loss)
    eval_loss = evidence.curves.eval_loss
    reason = (
        f"the training loss fell {(start - end) / start:.0%} ({start:.3f} to {end:.3f})"
        if start > 0
        else "the training loss fell"
    )
    if eval_loss:
        best_step, best = min(eval_loss, key=lambda point: point[1])
        reason += f" and the validation loss ended at {eval_loss[-1][1]:.3f} (best {best:.3f} at step {best_step})"
    compared = [
        (name, value, evidence.baseline[name])
        for name, value in _last_metrics(evidence).items()
        if name in evidence.baseline
    ]
    if compared:
        reason += "; " + ", ".join(
            f"{name.replace('eval_', 'eval/', 1)} {value:.4f} (trivial {base:.4f})" for name, value, base in compared
        )
    return Diagnosis("good_fit", reason, "more epochs or a larger model may still help; compare runs to choose")


def _near_baseline(evidence: Evidence, limits: Thresholds) -> list[tuple[str, float, float]]:
    """Every compared metric, when all are within `baseline_margin` of the trivial predictor."""
    compared = []
    for name, value in _last_metrics(evidence).items():
        baseline = evidence.baseline.get(name)
        if baseline is None or not finite(baseline):
            continue
        gain = value - baseline if evidence.better_higher(name) else baseline - value
        if gain > limits.baseline_margin:
            return []
        compared.append((name, value, baseline))
    return compared


def _last_metrics(evidence: Evidence) -> dict[str, float]:
    if not evidence.curves.evaluations:
        return {}
    return {
        name: value
        for name, value in evidence.curves.evaluations[-1][1].items()
        if name.startswith("eval_") and name != "eval_loss" and finite(value)
    }


def _falls_after(train: Sequence[Point], step: int, limits: Thresholds) -> bool:
    """Whether the training loss ended at least `flat_train_drop` below where it was around
    `step`: noise around a flat loss is no fall."""
    before = [value for s, value in train if s <= step][-3:]
    after = [value for s, value in train if s > step][-3:]
    return bool(before and after) and statistics.mean(after) < statistics.mean(before) * (1 - limits.flat_train_drop)


def _flat(train: Sequence[Point], limits: Thresholds) -> bool:
    """The training loss moved by less than `flat_train_drop` either way from start to end."""
    start, end = _start_and_end(train)
    return len(train) >= 2 and start > 0 and abs(start - end) / start < limits.flat_train_drop


def _one_class(evidence: Evidence, limits: Thresholds) -> str:
    """`, and it predicts "x" for 100.0% of the validation rows` (or words) when it does."""
    stats = evidence.predictions
    shares = stats.class_shares if stats is not None else None
    if stats is None or not shares:
        return ""
    top = max(range(len(shares)), key=lambda k: shares[k])
    if shares[top] < limits.single_class_share:
        return ""
    label = _class_name(evidence, top)
    return f', and it predicts "{label}" for {shares[top]:.1%} of the validation {stats.unit}'


def _class_name(evidence: Evidence, position: int) -> str:
    """What the share at `position` counts: the predictions' own name for it, else the class's."""
    stats = evidence.predictions
    names = (stats.names if stats is not None else None) or evidence.label_names
    return names[position] if names else str(position)


def _start_and_end(train: Sequence[Point]) -> tuple[float, float]:
    """The mean of the first and of the last fifth of the training-loss logs."""
    values = [value for _, value in train]
    if not values:
        return 0.0, 0.0
    width = max(1, len(values) // 5)
    return statistics.mean(values[:width]), statistics.mean(values[-width:])

"""What a diagnosis reads: the curves a run logged, statistics of its last validation predictions,
and what a trivial predictor scores on the same rows. Every runner hands over the same shapes, so
the same curves get the same verdict whatever the runner."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

Point = tuple[int, float]  # (optimizer step, value)
# Metric names that mean "lower is better"; any other metric is better higher, as every built-in is.
LOWER_IS_BETTER = ("loss", "error", "mse", "mae", "rmse", "perplexity")


@dataclass(frozen=True)
class Curves:
    """The training loss at each logging step, and each evaluation's metrics (`eval_loss`,
    `eval_f1`, ...) at its step, in step order."""

    train_loss: Sequence[Point] = ()
    evaluations: Sequence[tuple[int, Mapping[str, float]]] = ()

    @property
    def eval_loss(self) -> list[Point]:
        return [(step, metrics["eval_loss"]) for step, metrics in self.evaluations if "eval_loss" in metrics]

    def metric(self, name: str) -> list[Point]:
        return [(step, metrics[name]) for step, metrics in self.evaluations if name in metrics]

    def metric_names(self) -> list[str]:
        """The evaluation metrics besides the loss, in the order first logged."""
        names = dict.fromkeys(name for _, metrics in self.evaluations for name in metrics)
        return [name for name in names if name.startswith("eval_") and name != "eval_loss"]


@dataclass(frozen=True)
class PredictionStats:
    """The last validation predictions at a glance: the share of rows given each class (and the
    shares the labels have), or of the prediction given most often (`names` says which); for
    regression the spread of the outputs and of the labels."""

    class_shares: tuple[float, ...] | None = None
    label_shares: tuple[float, ...] | None = None
    output_std: float | None = None
    label_std: float | None = None
    unit: str = "rows"  # what is predicted: rows, or the words of token classification
    # What each share counts, when not the task's classes: question answering's most given answer.
    names: tuple[str, ...] | None = None

    @classmethod
    def of_classes(
        cls, predictions: Sequence[int], references: Sequence[int], classes: int, unit: str = "rows"
    ) -> PredictionStats:
        """The share of predictions (one per row, or per `unit`) of, and of labels of, each class
        id 0..classes-1."""
        import numpy as np

        predicted, labels = np.asarray(predictions), np.asarray(references)
        return cls(
            class_shares=tuple(float(np.sum(predicted == k)) / max(predicted.size, 1) for k in range(classes)),
            label_shares=tuple(float(np.sum(labels == k)) / max(labels.size, 1) for k in range(classes)),
            unit=unit,
        )

    @classmethod
    def of_values(cls, predictions: Sequence[float], references: Sequence[float]) -> PredictionStats:
        """The spread of predicted values and of the labels."""
        import numpy as np

        return cls(output_std=float(np.std(np.asarray(predictions))), label_std=float(np.std(np.asarray(references))))


@dataclass(frozen=True)
class Evidence:
    curves: Curves
    predictions: PredictionStats | None = None
    # What the task's trivial predictor (Task.baseline: always one class, the training mean)
    # scores on the validation rows, by metric name (`eval_accuracy`, `eval_f1`, ...).
    baseline: Mapping[str, float] = field(default_factory=dict)
    label_names: Sequence[str] | None = None
    higher_is_better: Mapping[str, bool] = field(default_factory=dict)  # metric name -> direction
    trivial: str = ""  # what the baseline predicts, in words: '"equivalent"'

    def better_higher(self, name: str) -> bool:
        if name in self.higher_is_better:
            return self.higher_is_better[name]
        return not any(word in name.lower() for word in LOWER_IS_BETTER)


def finite(value: float) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)

"""What a trivial predictor scores: the task says what it predicts for every validation row (the
most frequent class of the training rows, say); the experiment's own metrics score it. A model
no better than that has learned nothing the targets' counts do not say."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any


def trivial_scores(
    predictions: Any, references: Any, metrics: Sequence[Any]
) -> tuple[dict[str, float], dict[str, bool]]:
    """`{"eval_accuracy": 0.68, "eval_f1": 0.81, ...}` for the trivial `predictions` (a
    correlation of a constant, undefined, counts as 0), and whether each is better higher."""
    scores: dict[str, float] = {}
    directions: dict[str, bool] = {}
    for metric in metrics:
        with warnings.catch_warnings():  # a constant has no correlation: numpy and scipy warn
            warnings.simplefilter("ignore")
            computed: Mapping[str, float] = metric.compute(predictions, references)
        for name, value in computed.items():
            value = float(value)
            scores[f"eval_{name}"] = 0.0 if math.isnan(value) else value
            directions[f"eval_{name}"] = bool(getattr(metric, "greater_is_better", True))
    return scores, directions

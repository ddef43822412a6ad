"""What a trivial predictor scores: the training split's majority class for every validation row
(for regression, the training mean), scored by the experiment's own metrics. A model no better
than that has learned nothing the label counts do not say."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any


def trivial_scores(task: Any, metrics: Sequence[Any]) -> tuple[dict[str, float], dict[str, bool]]:
    """`{"eval_accuracy": 0.68, "eval_f1": 0.81, ...}` for the trivial prediction (a correlation
    of a constant, undefined, counts as 0), and whether each is better higher."""
    import numpy as np

    train, references = np.asarray(task.splits["train"]["label"]), np.asarray(task.splits["eval"]["label"])
    if task.labels.is_regression:
        constant = float(np.mean(train))
    else:
        counts = np.bincount(train[train >= 0].astype(int), minlength=task.labels.num_labels)
        constant = int(np.argmax(counts))
    predictions = np.full(len(references), constant, dtype=float if task.labels.is_regression else int)
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


def majority_label(task: Any) -> str | None:
    import numpy as np

    if task.labels.is_regression:
        return None
    train = np.asarray(task.splits["train"]["label"])
    counts = np.bincount(train[train >= 0].astype(int), minlength=task.labels.num_labels)
    return task.labels.names[int(np.argmax(counts))]

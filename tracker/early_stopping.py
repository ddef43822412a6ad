"""Early stopping on one validation metric, shared by every runner."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tracker.metric_names import better_lower


@dataclass
class EarlyStopping:
    """Stop after `patience` evaluations without an improvement of more than `min_delta`."""

    metric: str  # e.g. "eval_loss" or "eval_f1"
    patience: int
    min_delta: float = 0.0
    greater_is_better: bool | None = None  # None: as the name says (metric_names.better_lower)
    best: float | None = None
    best_step: int | None = None
    evaluations_without_improvement: int = 0

    def __post_init__(self) -> None:
        if self.greater_is_better is None:
            self.greater_is_better = not better_lower(self.metric)

    def update(self, metrics: Mapping[str, float], step: int) -> bool:
        """Record one evaluation; True when it is the best so far (keep this model)."""
        if self.metric not in metrics:
            raise KeyError(
                f'metric_for_best "{self.metric}" is not among the evaluation metrics: {", ".join(sorted(metrics))}'
            )
        value = metrics[self.metric]
        margin = value - self.best if self.best is not None else None
        if margin is not None and not self.greater_is_better:
            margin = -margin
        if margin is None or margin > self.min_delta:
            self.best, self.best_step, self.evaluations_without_improvement = value, step, 0
            return True
        self.evaluations_without_improvement += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.evaluations_without_improvement >= self.patience

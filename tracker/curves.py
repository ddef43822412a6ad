"""Reading learning curves: over-fitting, under-fitting or erratic training, as the course explains."""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Sequence

Point = tuple[int, float]  # (optimizer step, value)


@dataclass(frozen=True)
class Diagnosis:
    verdict: str  # "good_fit", "overfitting", "underfitting", "erratic" or "not_enough_data"
    explanation: str


def diagnose(train_loss: Sequence[Point], eval_loss: Sequence[Point]) -> Diagnosis:
    """Classify a run from its training and validation loss curves.

    - overfitting: validation loss rose clearly above its best while training loss kept falling;
    - underfitting: training loss barely moved from where it started;
    - erratic: training loss jumps around by more than it improves.
    """
    if len(train_loss) < 3 or len(eval_loss) < 1:
        return Diagnosis("not_enough_data", "too few logged points to judge the learning curves")
    train = [value for _, value in train_loss]
    first, last = _mean(train[: max(1, len(train) // 5)]), _mean(train[-max(1, len(train) // 5):])
    drop = (first - last) / first if first > 0 else 0.0
    evals = [value for _, value in eval_loss]
    best_eval = min(evals)
    if len(evals) >= 2 and evals[-1] > best_eval * 1.1 and evals.index(best_eval) < len(evals) - 1 and drop > 0.1:
        return Diagnosis("overfitting", f"validation loss rose from its best {best_eval:.3f} to {evals[-1]:.3f} "
                                        f"while training loss fell {drop:.0%}; stop earlier or regularize")
    jitter = statistics.pstdev([b - a for a, b in zip(train, train[1:])]) if len(train) > 2 else 0.0
    if jitter > max(first - last, 0.0) and jitter > 0.1 * first:
        return Diagnosis("erratic", f"training loss jumps by {jitter:.3f} between logs, more than it improved "
                                    f"({first:.3f} -> {last:.3f}); lower the learning rate or raise the batch size")
    if drop < 0.05:
        return Diagnosis("underfitting", f"training loss stayed flat ({first:.3f} -> {last:.3f}); raise the "
                                         "learning rate, train longer or use a larger model")
    return Diagnosis("good_fit", f"training loss fell {drop:.0%} and validation loss ended at {evals[-1]:.3f} "
                                 f"(best {best_eval:.3f})")


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)

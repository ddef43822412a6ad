"""The `perplexity` metric: how surprised a language model is by the responses it is evaluated on,
the exponential of its mean loss per response token over the whole split (each token counts once,
however the rows were batched), as `run_clm.py` reports it. Lower is better."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from tracker.plugin import TaskData, data_rules, outputs
from xp_plugins.tasks.instruction_tuning import InstructionTuning


def _needs_token_losses(options, data):
    if not isinstance(data.task, InstructionTuning):
        yield (
            None,
            "scores a language model's loss per token (instruction tuning), but the task predicts "
            f"{data.task.describe()}",
        )


@dataclass(frozen=True)
class Perplexity:
    """A `Metric` over each row's (summed loss, tokens), as the task decodes them."""

    greater_is_better: bool = False

    def compute(self, predictions: Any, references: Any) -> dict[str, float]:
        import numpy as np

        totals = np.asarray(predictions, dtype=np.float64).reshape(-1, 2).sum(axis=0)
        loss, tokens = float(totals[0]), float(totals[1])
        if not tokens:
            return {"perplexity": math.nan}
        mean = loss / tokens
        return {"perplexity": math.exp(mean) if mean < 700 else math.inf}


@outputs("perplexity")
@data_rules(_needs_token_losses)
def perplexity(data: TaskData) -> Perplexity:
    """exp(mean loss per response token) over the split; lower is better (1 is a perfect model)."""
    return Perplexity()

"""The training settings every runner shares: the keys of a `[runner]` section."""
from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass, field
from typing import Any, Literal

from tracker.errors import BuildError


@dataclass(kw_only=True)
class TrainingSettings:
    """Settings common to all runners; steps always count optimizer steps."""

    num_epochs: int = 3
    max_steps: int | None = None  # when set, wins over num_epochs
    batch_size: int = 8  # per device
    eval_batch_size: int | None = None  # default: batch_size
    gradient_accumulation_steps: int = 1
    max_grad_norm: float = 1.0  # the Trainer's default; 0 turns clipping off (the norm is still logged)
    eval_strategy: Literal["epoch", "steps", "no"] = "epoch"
    eval_steps: int | None = None
    logging_steps: int = 10
    early_stopping_patience: int | None = None  # evaluations without improvement before stopping
    metric_for_best: str = "eval_loss"  # "eval_loss", "eval_f1", ... ("f1" means "eval_f1")
    early_stopping_min_delta: float = 0.0
    group_by_length: bool = False  # batch rows of similar length together: less padding
    save_model: bool = False  # save_pretrained the final model and tokenizer
    predict: bool = True  # write test-split predictions when a test split is configured
    num_workers: int = 0  # DataLoader worker processes
    progress_bar: bool = True
    hardware: Any = field(init=False, default=None)  # set by setup(), before any data is loaded

    def __post_init__(self) -> None:
        for key in ("num_epochs", "batch_size", "gradient_accumulation_steps", "logging_steps"):
            if getattr(self, key) < 1:
                raise BuildError(key, f"expected a positive integer, got {getattr(self, key)}")
        if self.max_grad_norm < 0:
            raise BuildError("max_grad_norm", f"expected 0 (no clipping) or a positive number, got {self.max_grad_norm}")
        if self.max_steps is not None and self.max_steps < 1:
            raise BuildError("max_steps", f"expected a positive integer, got {self.max_steps}")
        if self.eval_strategy == "steps" and not self.eval_steps:
            raise BuildError("eval_steps", 'eval_strategy = "steps" needs eval_steps, e.g. eval_steps = 100')
        if self.early_stopping_patience is not None:
            if self.eval_strategy == "no":
                raise BuildError("early_stopping_patience", 'early stopping needs evaluations; set eval_strategy '
                                                            'to "epoch" or "steps"')
            if self.early_stopping_patience < 1:
                raise BuildError("early_stopping_patience", "expected a positive integer")
        if not self.metric_for_best.startswith("eval_"):
            self.metric_for_best = f"eval_{self.metric_for_best}"

    # The Runner protocol, for single-process runners; the Accelerate runner overrides most of it.

    def setup(self, hardware: Any) -> None:
        self.hardware = hardware

    @property
    def is_main_process(self) -> bool:
        return int(os.environ.get("RANK", "0")) == 0

    def main_process_first(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def steps_per_epoch(self, batches_per_epoch: int) -> int:
        # A last, partial accumulation at the end of an epoch still makes an optimizer step.
        return max(1, math.ceil(batches_per_epoch / self.gradient_accumulation_steps))

    def runs_test_split(self, parts: Any) -> bool:
        """Predict the test split only when its labels give test metrics or predictions are wanted."""
        return "test" in parts.encoded and (parts.task.test_has_labels or self.predict)

    def num_training_steps(self, train_rows: int) -> int:
        if self.max_steps is not None:
            return self.max_steps
        return self.steps_per_epoch(math.ceil(train_rows / self.batch_size)) * self.num_epochs


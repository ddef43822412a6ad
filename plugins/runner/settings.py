"""The training settings every runner shares: the keys of a `[runner]` section."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from tracker.plugin import (
    Annotated,
    Field,
    MetricName,
    Name,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveInt,
    evaluation_name,
    rules,
)


def every_n_steps(strategy_key: str, steps_key: str, example: int):
    """A rule: `<strategy_key> = "steps"` needs `<steps_key>`, which means nothing otherwise."""

    def check(options):
        strategy, steps = options[strategy_key], options[steps_key]
        if strategy == "steps" and steps is None:
            yield steps_key, f'{strategy_key} = "steps" needs {steps_key}, e.g. {steps_key} = {example}'
        if strategy != "steps" and steps is not None:
            yield (
                steps_key,
                (f'only used with {strategy_key} = "steps" (it is "{strategy}"); remove it or change {strategy_key}'),
            )

    check.__name__ = f"{steps_key}_with_{strategy_key}"
    return check


def needs_evaluations(key: str, active: Callable[[Any], bool], what: str):
    """A rule: `key`, when `active(value)`, needs eval_strategy other than "no"."""

    def check(options):
        if active(options[key]) and options["eval_strategy"] == "no":
            yield key, f'{what} needs evaluations; set eval_strategy to "epoch" or "steps"'

    check.__name__ = f"{key}_needs_evaluations"
    return check


@rules(
    every_n_steps("eval_strategy", "eval_steps", 100),
    needs_evaluations("early_stopping_patience", lambda patience: patience is not None, "early stopping"),
)
@dataclass(kw_only=True)
class TrainingSettings:
    """Settings common to all runners; steps always count optimizer steps."""

    num_epochs: Annotated[PositiveInt, Field(description="passes over the training split")] = 3
    max_steps: Annotated[PositiveInt | None, Field(description="optimizer steps; when set, wins over num_epochs")] = (
        None
    )
    batch_size: Annotated[PositiveInt, Field(description="rows per batch, per device")] = 8
    eval_batch_size: Annotated[PositiveInt | None, Field(description="default: batch_size")] = None
    gradient_accumulation_steps: Annotated[PositiveInt, Field(description="batches per optimizer step")] = 1
    max_grad_norm: Annotated[
        NonNegativeFloat,
        Field(description="clip the gradient norm to this; 0 turns clipping off (the norm is still logged)"),
    ] = 1.0
    eval_strategy: Annotated[Literal["epoch", "steps", "no"], Field(description="when to evaluate")] = "epoch"
    eval_steps: Annotated[
        PositiveInt | None, Field(description='optimizer steps between evaluations, with "steps"')
    ] = None
    logging_steps: Annotated[PositiveInt, Field(description="optimizer steps between training-metric logs")] = 10
    early_stopping_patience: Annotated[
        PositiveInt | None,
        Field(description="stop after this many evaluations without improvement; the best weights are restored"),
    ] = None
    metric_for_best: Annotated[
        Name,
        MetricName(),
        Field(description='what "best" means: eval_loss, or a metric the experiment computes (f1, eval_f1 or eval/f1)'),
    ] = "eval_loss"
    early_stopping_min_delta: Annotated[
        NonNegativeFloat, Field(description="the least change that counts as improvement")
    ] = 0.0
    group_by_length: Annotated[bool, Field(description="batch rows of similar length together: less padding")] = False
    save_model: Annotated[bool, Field(description="save_pretrained the final model and tokenizer")] = False
    predict: Annotated[bool, Field(description="write test-split predictions when a test split is configured")] = True
    num_workers: Annotated[NonNegativeInt, Field(description="DataLoader worker processes")] = 0
    progress_bar: bool = True
    hardware: Any = field(init=False, default=None)  # set by setup(), before any data is loaded

    def __post_init__(self) -> None:
        # One spelling inside: "f1" and "eval/f1" (its name in MLflow) mean "eval_f1".
        self.metric_for_best = evaluation_name(self.metric_for_best)

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
        return "test" in parts.encoded and (parts.data.test_has_labels or self.predict)

    def num_training_steps(self, train_rows: int) -> int:
        if self.max_steps is not None:
            return self.max_steps
        return self.steps_per_epoch(math.ceil(train_rows / self.batch_size)) * self.num_epochs

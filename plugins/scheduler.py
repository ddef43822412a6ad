"""Built-in learning-rate schedules: every schedule `transformers.get_scheduler` offers, under its name.

Warmup is `warmup_steps` or `warmup_ratio` (of the training steps, rounded up), because the number
of training steps is only known once the data is loaded. Each factory is written out so that its
signature, which xp reads as the TOML schema, lists exactly the options its schedule takes.
"""

import math
from typing import Literal

from tracker.plugin import (
    Annotated,
    BuildError,
    Field,
    Fraction,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Ratio,
    hookimpl,
    rules,
)

Shape = Literal["linear", "cosine", "1-sqrt"]  # the curves of warmup_stable_decay's warmup and decay
WarmupSteps = Annotated[NonNegativeInt, Field(description="optimizer steps of linear warmup")]
WarmupRatio = Annotated[Ratio, Field(description="warmup as a share of the training steps (rounded up)")]
Cycles = Annotated[PositiveFloat, Field(description="cosine waves over the decay (0.5: one half-wave down to 0)")]
Factor = Annotated[Fraction, Field(description="multiplies the lr on each reduction")]
Patience = Annotated[NonNegativeInt, Field(description="evaluations without improvement before changing the lr")]
Threshold = Annotated[NonNegativeFloat, Field(description="the least change that counts as improvement")]


def _one_of(steps_key: str, ratio_key: str):
    def check(options):
        if options[steps_key] and options[ratio_key]:
            yield ratio_key, f"set {steps_key} or {ratio_key}, not both"

    check.__name__ = f"{steps_key}_or_{ratio_key}"
    return check


_warmup_once = _one_of("warmup_steps", "warmup_ratio")


def _one_floor(options):
    if options["min_lr"] is not None and options["min_lr_rate"] is not None:
        yield "min_lr_rate", "set min_lr or min_lr_rate, not both"


@rules(_warmup_once)
def linear(optimizer, num_training_steps: int, *, warmup_steps: WarmupSteps = 0, warmup_ratio: WarmupRatio = 0.0):
    """Linear warmup, then linear decay to 0 (the Trainer's default)."""
    return _schedule("linear", optimizer, num_training_steps, warmup_steps, warmup_ratio)


@rules(_warmup_once)
def cosine(
    optimizer,
    num_training_steps: int,
    *,
    warmup_steps: WarmupSteps = 0,
    warmup_ratio: WarmupRatio = 0.0,
    num_cycles: Cycles = 0.5,
):
    """Linear warmup, then cosine decay (num_cycles = 0.5: one half-wave down to 0)."""
    return _schedule("cosine", optimizer, num_training_steps, warmup_steps, warmup_ratio, num_cycles=num_cycles)


@rules(_warmup_once)
def cosine_with_restarts(
    optimizer,
    num_training_steps: int,
    *,
    warmup_steps: WarmupSteps = 0,
    warmup_ratio: WarmupRatio = 0.0,
    num_cycles: Annotated[PositiveInt, Field(description="restarts, each from the full lr")] = 1,
):
    """Linear warmup, then num_cycles cosine decays to 0, each restarting at the full lr."""
    return _schedule(
        "cosine_with_restarts", optimizer, num_training_steps, warmup_steps, warmup_ratio, num_cycles=num_cycles
    )


@rules(_warmup_once)
def polynomial(
    optimizer,
    num_training_steps: int,
    *,
    warmup_steps: WarmupSteps = 0,
    warmup_ratio: WarmupRatio = 0.0,
    lr_end: Annotated[NonNegativeFloat, Field(description="the lr at the end of training")] = 1e-7,
    power: Annotated[PositiveFloat, Field(description="degree of the decay (1: linear)")] = 1.0,
):
    """Linear warmup, then polynomial decay (of degree power) down to lr_end."""
    lr = optimizer.defaults["lr"]
    if lr is not None and lr_end >= lr:  # lr None: _schedule explains
        raise BuildError("lr_end", f"must be below the optimizer's lr ({lr}), got {lr_end}")
    return _schedule(
        "polynomial", optimizer, num_training_steps, warmup_steps, warmup_ratio, lr_end=lr_end, power=power
    )


def constant(optimizer, num_training_steps: int):
    """The optimizer's lr throughout, no warmup."""
    return _schedule("constant", optimizer, num_training_steps)


@rules(_warmup_once)
def constant_with_warmup(
    optimizer, num_training_steps: int, *, warmup_steps: WarmupSteps = 0, warmup_ratio: WarmupRatio = 0.0
):
    """Linear warmup, then the optimizer's lr."""
    return _schedule("constant_with_warmup", optimizer, num_training_steps, warmup_steps, warmup_ratio)


@rules(_warmup_once)
def inverse_sqrt(
    optimizer,
    num_training_steps: int,
    *,
    warmup_steps: WarmupSteps = 0,
    warmup_ratio: WarmupRatio = 0.0,
    timescale: Annotated[PositiveInt | None, Field(description="default: the warmup steps, or 10000")] = None,
):
    """Linear warmup, then lr / sqrt(step / timescale) (timescale defaults to the warmup steps, or 10000)."""
    return _schedule("inverse_sqrt", optimizer, num_training_steps, warmup_steps, warmup_ratio, timescale=timescale)


def reduce_lr_on_plateau(
    optimizer,
    num_training_steps: int,
    *,
    mode: Literal["min", "max"] = "min",
    factor: Factor = 0.1,
    patience: Patience = 10,
    threshold: Threshold = 1e-4,
    threshold_mode: Literal["rel", "abs"] = "rel",
    cooldown: NonNegativeInt = 0,
    min_lr: NonNegativeFloat = 0.0,
    eps: NonNegativeFloat = 1e-8,
):
    """Multiply lr by factor when a metric stops improving; step it with the metric: step(eval_loss)."""
    return _schedule(
        "reduce_lr_on_plateau",
        optimizer,
        num_training_steps,
        mode=mode,
        factor=factor,
        patience=patience,
        threshold=threshold,
        threshold_mode=threshold_mode,
        cooldown=cooldown,
        min_lr=min_lr,
        eps=eps,
    )


@rules(_warmup_once, _one_floor)
def cosine_with_min_lr(
    optimizer,
    num_training_steps: int,
    *,
    warmup_steps: WarmupSteps = 0,
    warmup_ratio: WarmupRatio = 0.0,
    num_cycles: Cycles = 0.5,
    min_lr: NonNegativeFloat | None = None,
    min_lr_rate: Ratio | None = None,
):
    """Linear warmup, then cosine decay to a floor: min_lr, or min_lr_rate times the lr (neither: 0)."""
    return _schedule(
        "cosine_with_min_lr",
        optimizer,
        num_training_steps,
        warmup_steps,
        warmup_ratio,
        num_cycles=num_cycles,
        **_floor(min_lr, min_lr_rate),
    )


@rules(_warmup_once, _one_floor)
def cosine_warmup_with_min_lr(
    optimizer,
    num_training_steps: int,
    *,
    warmup_steps: WarmupSteps = 0,
    warmup_ratio: WarmupRatio = 0.0,
    num_cycles: Cycles = 0.5,
    min_lr: NonNegativeFloat | None = None,
    min_lr_rate: Ratio | None = None,
    warmup_lr_rate: Ratio | None = None,
):
    """cosine_with_min_lr whose warmup starts at warmup_lr_rate times the lr (default 1/warmup steps)."""
    return _schedule(
        "cosine_warmup_with_min_lr",
        optimizer,
        num_training_steps,
        warmup_steps,
        warmup_ratio,
        num_cycles=num_cycles,
        warmup_lr_rate=warmup_lr_rate,
        **_floor(min_lr, min_lr_rate),
    )


def _phases_fit(options):
    if options["warmup_ratio"] + options["decay_ratio"] > 1:
        yield (
            "decay_ratio",
            (
                f"warmup_ratio ({options['warmup_ratio']}) and decay_ratio ({options['decay_ratio']}) "
                "add up to more than the whole training"
            ),
        )


@rules(_warmup_once, _one_of("decay_steps", "decay_ratio"), _phases_fit)
def warmup_stable_decay(
    optimizer,
    num_training_steps: int,
    *,
    warmup_steps: WarmupSteps = 0,
    warmup_ratio: WarmupRatio = 0.0,
    decay_steps: Annotated[NonNegativeInt, Field(description="optimizer steps of the final decay")] = 0,
    decay_ratio: Annotated[Ratio, Field(description="the final decay as a share of training")] = 0.0,
    warmup_type: Shape = "linear",
    decay_type: Shape = "cosine",
    min_lr_ratio: Annotated[Ratio, Field(description="the lr floor as a share of the lr")] = 0.0,
    num_cycles: Cycles = 0.5,
):
    """Warmup, then the full lr, then a decay over the last decay_steps (or decay_ratio) of training."""
    warmup = _steps(warmup_steps, warmup_ratio, num_training_steps)
    decay = _steps(decay_steps, decay_ratio, num_training_steps)
    if warmup + decay > num_training_steps:
        raise BuildError(
            "decay_ratio" if decay_ratio else "decay_steps",
            f"warmup ({warmup} steps) and decay ({decay} steps) are longer than training ({num_training_steps} steps)",
        )
    # The stable phase is what remains, so transformers' num_stable_steps is never needed.
    return _schedule(
        "warmup_stable_decay",
        optimizer,
        num_training_steps,
        warmup,
        num_decay_steps=decay,
        warmup_type=warmup_type,
        decay_type=decay_type,
        min_lr_ratio=min_lr_ratio,
        num_cycles=num_cycles,
    )


def _floor_below_ceiling(options):
    if options["min_lr"] >= options["max_lr"]:
        yield "min_lr", f"must be below max_lr ({options['max_lr']}), got {options['min_lr']}"


@rules(_floor_below_ceiling)
def greedy(
    optimizer,
    num_training_steps: int,
    *,
    mode: Literal["min", "max"] = "min",
    factor: Factor = 0.95,
    patience: Patience = 10,
    threshold: Threshold = 1e-6,
    threshold_mode: Literal["rel", "abs"] = "abs",
    cooldown: NonNegativeInt = 0,
    warmup: NonNegativeInt = 0,
    min_lr: NonNegativeFloat = 0.0,
    max_lr: PositiveFloat = 1.0,
    eps: NonNegativeFloat = 1e-8,
    smooth: bool = False,
    window_size: PositiveInt = 50,
    reset_start: NonNegativeInt = 500,
):
    """GreedyLR: divide lr by factor while a metric improves, multiply on plateau; step(eval_loss)."""
    # min_lr defaults to 0, not transformers' 1e-3: that floor is above fine-tuning learning rates,
    # so from lr 5e-5 the first "reduction" would raise the lr twenty-fold.
    return _schedule(
        "greedy",
        optimizer,
        num_training_steps,
        mode=mode,
        factor=factor,
        patience=patience,
        threshold=threshold,
        threshold_mode=threshold_mode,
        cooldown=cooldown,
        warmup=warmup,
        min_lr=min_lr,
        max_lr=max_lr,
        eps=eps,
        smooth=smooth,
        window_size=window_size,
        reset_start=reset_start,
    )


def _schedule(
    name: str, optimizer, num_training_steps: int, warmup_steps: int = 0, warmup_ratio: float = 0.0, **options
):
    """Build schedule `name` through transformers.get_scheduler, with warmup resolved to steps."""
    from transformers import get_scheduler

    if any(group["lr"] is None for group in optimizer.param_groups):
        raise BuildError(
            None,
            "the optimizer computes its own learning rate (adafactor with "
            "relative_step = true); set relative_step = false and an lr to schedule it",
        )
    warmup = _steps(warmup_steps, warmup_ratio, num_training_steps)
    return get_scheduler(
        name,
        optimizer,
        num_warmup_steps=warmup,
        num_training_steps=num_training_steps,
        scheduler_specific_kwargs=options,
    )


def _steps(steps: int, ratio: float, num_training_steps: int) -> int:
    """A phase's length: `steps`, or `ratio` of the training steps rounded up (never both: a rule)."""
    return steps or math.ceil(ratio * num_training_steps)


def _floor(min_lr: float | None, min_lr_rate: float | None) -> dict[str, float]:
    """The cosine floor as transformers wants it: exactly one of min_lr and min_lr_rate."""
    if min_lr is not None:
        return {"min_lr": min_lr}
    return {"min_lr_rate": 0.0 if min_lr_rate is None else min_lr_rate}


# Hard-coded, in transformers.SchedulerType's order, so importing this module stays instant;
# a test compares the names with the installed transformers so a new schedule is noticed.
SCHEDULES = {
    "linear": linear,
    "cosine": cosine,
    "cosine_with_restarts": cosine_with_restarts,
    "polynomial": polynomial,
    "constant": constant,
    "constant_with_warmup": constant_with_warmup,
    "inverse_sqrt": inverse_sqrt,
    "reduce_lr_on_plateau": reduce_lr_on_plateau,
    "cosine_with_min_lr": cosine_with_min_lr,
    "cosine_warmup_with_min_lr": cosine_warmup_with_min_lr,
    "warmup_stable_decay": warmup_stable_decay,
    "greedy": greedy,
}


@hookimpl
def xp_register_schedulers(register):
    for name, factory in SCHEDULES.items():
        register(name, factory)

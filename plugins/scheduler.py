"""Built-in learning-rate schedules: every schedule `transformers.get_scheduler` offers, under its name.

Warmup is `warmup_steps` or `warmup_ratio` (of the training steps, rounded up), because the number
of training steps is only known once the data is loaded. Each factory is written out so that its
signature, which xp reads as the TOML schema, lists exactly the options its schedule takes.
"""
import math
from typing import Literal

from tracker.errors import BuildError
from tracker.hookspecs import hookimpl

Shape = Literal["linear", "cosine", "1-sqrt"]  # the curves of warmup_stable_decay's warmup and decay


def linear(optimizer, num_training_steps: int, *, warmup_steps: int = 0, warmup_ratio: float = 0.0):
    """Linear warmup, then linear decay to 0 (the Trainer's default)."""
    return _schedule("linear", optimizer, num_training_steps, warmup_steps, warmup_ratio)


def cosine(optimizer, num_training_steps: int, *, warmup_steps: int = 0, warmup_ratio: float = 0.0,
           num_cycles: float = 0.5):
    """Linear warmup, then cosine decay (num_cycles = 0.5: one half-wave down to 0)."""
    return _schedule("cosine", optimizer, num_training_steps, warmup_steps, warmup_ratio,
                     num_cycles=num_cycles)


def cosine_with_restarts(optimizer, num_training_steps: int, *, warmup_steps: int = 0,
                         warmup_ratio: float = 0.0, num_cycles: int = 1):
    """Linear warmup, then num_cycles cosine decays to 0, each restarting at the full lr."""
    return _schedule("cosine_with_restarts", optimizer, num_training_steps, warmup_steps,
                     warmup_ratio, num_cycles=num_cycles)


def polynomial(optimizer, num_training_steps: int, *, warmup_steps: int = 0, warmup_ratio: float = 0.0,
               lr_end: float = 1e-7, power: float = 1.0):
    """Linear warmup, then polynomial decay (of degree power) down to lr_end."""
    lr = optimizer.defaults["lr"]
    if lr is not None and lr_end >= lr:  # lr None: _schedule explains
        raise BuildError("lr_end", f"must be below the optimizer's lr ({lr}), got {lr_end}")
    return _schedule("polynomial", optimizer, num_training_steps, warmup_steps, warmup_ratio,
                     lr_end=lr_end, power=power)


def constant(optimizer, num_training_steps: int):
    """The optimizer's lr throughout, no warmup."""
    return _schedule("constant", optimizer, num_training_steps)


def constant_with_warmup(optimizer, num_training_steps: int, *, warmup_steps: int = 0,
                         warmup_ratio: float = 0.0):
    """Linear warmup, then the optimizer's lr."""
    return _schedule("constant_with_warmup", optimizer, num_training_steps, warmup_steps, warmup_ratio)


def inverse_sqrt(optimizer, num_training_steps: int, *, warmup_steps: int = 0, warmup_ratio: float = 0.0,
                 timescale: int | None = None):
    """Linear warmup, then lr / sqrt(step / timescale) (timescale defaults to the warmup steps, or 10000)."""
    return _schedule("inverse_sqrt", optimizer, num_training_steps, warmup_steps, warmup_ratio,
                     timescale=timescale)


def reduce_lr_on_plateau(optimizer, num_training_steps: int, *, mode: Literal["min", "max"] = "min",
                         factor: float = 0.1, patience: int = 10, threshold: float = 1e-4,
                         threshold_mode: Literal["rel", "abs"] = "rel", cooldown: int = 0,
                         min_lr: float = 0.0, eps: float = 1e-8):
    """Multiply lr by factor when a metric stops improving; step it with the metric: step(eval_loss)."""
    _check_factor(factor)
    return _schedule("reduce_lr_on_plateau", optimizer, num_training_steps, mode=mode, factor=factor,
                     patience=patience, threshold=threshold, threshold_mode=threshold_mode,
                     cooldown=cooldown, min_lr=min_lr, eps=eps)


def cosine_with_min_lr(optimizer, num_training_steps: int, *, warmup_steps: int = 0,
                       warmup_ratio: float = 0.0, num_cycles: float = 0.5,
                       min_lr: float | None = None, min_lr_rate: float | None = None):
    """Linear warmup, then cosine decay to a floor: min_lr, or min_lr_rate times the lr (neither: 0)."""
    return _schedule("cosine_with_min_lr", optimizer, num_training_steps, warmup_steps, warmup_ratio,
                     num_cycles=num_cycles, **_floor(min_lr, min_lr_rate))


def cosine_warmup_with_min_lr(optimizer, num_training_steps: int, *, warmup_steps: int = 0,
                              warmup_ratio: float = 0.0, num_cycles: float = 0.5,
                              min_lr: float | None = None, min_lr_rate: float | None = None,
                              warmup_lr_rate: float | None = None):
    """cosine_with_min_lr whose warmup starts at warmup_lr_rate times the lr (default 1/warmup steps)."""
    return _schedule("cosine_warmup_with_min_lr", optimizer, num_training_steps, warmup_steps,
                     warmup_ratio, num_cycles=num_cycles, warmup_lr_rate=warmup_lr_rate,
                     **_floor(min_lr, min_lr_rate))


def warmup_stable_decay(optimizer, num_training_steps: int, *, warmup_steps: int = 0,
                        warmup_ratio: float = 0.0, decay_steps: int = 0, decay_ratio: float = 0.0,
                        warmup_type: Shape = "linear", decay_type: Shape = "cosine",
                        min_lr_ratio: float = 0.0, num_cycles: float = 0.5):
    """Warmup, then the full lr, then a decay over the last decay_steps (or decay_ratio) of training."""
    warmup = _steps("warmup", warmup_steps, warmup_ratio, num_training_steps)
    decay = _steps("decay", decay_steps, decay_ratio, num_training_steps)
    if warmup + decay > num_training_steps:
        raise BuildError("decay_ratio" if decay_ratio else "decay_steps",
                         f"warmup ({warmup} steps) and decay ({decay} steps) are longer than "
                         f"training ({num_training_steps} steps)")
    # The stable phase is what remains, so transformers' num_stable_steps is never needed.
    return _schedule("warmup_stable_decay", optimizer, num_training_steps, warmup, num_decay_steps=decay,
                     warmup_type=warmup_type, decay_type=decay_type, min_lr_ratio=min_lr_ratio,
                     num_cycles=num_cycles)


def greedy(optimizer, num_training_steps: int, *, mode: Literal["min", "max"] = "min",
           factor: float = 0.95, patience: int = 10, threshold: float = 1e-6,
           threshold_mode: Literal["rel", "abs"] = "abs", cooldown: int = 0, warmup: int = 0,
           min_lr: float = 0.0, max_lr: float = 1.0, eps: float = 1e-8, smooth: bool = False,
           window_size: int = 50, reset_start: int = 500):
    """GreedyLR: divide lr by factor while a metric improves, multiply on plateau; step(eval_loss)."""
    # min_lr defaults to 0, not transformers' 1e-3: that floor is above fine-tuning learning rates,
    # so from lr 5e-5 the first "reduction" would raise the lr twenty-fold.
    _check_factor(factor)
    return _schedule("greedy", optimizer, num_training_steps, mode=mode, factor=factor,
                     patience=patience, threshold=threshold, threshold_mode=threshold_mode,
                     cooldown=cooldown, warmup=warmup, min_lr=min_lr, max_lr=max_lr, eps=eps,
                     smooth=smooth, window_size=window_size, reset_start=reset_start)


def _schedule(name: str, optimizer, num_training_steps: int, warmup_steps: int = 0,
              warmup_ratio: float = 0.0, **options):
    """Build schedule `name` through transformers.get_scheduler, with warmup resolved to steps."""
    from transformers import get_scheduler

    if any(group["lr"] is None for group in optimizer.param_groups):
        raise BuildError(None, "the optimizer computes its own learning rate (adafactor with "
                               "relative_step = true); set relative_step = false and an lr to schedule it")
    warmup = _steps("warmup", warmup_steps, warmup_ratio, num_training_steps)
    return get_scheduler(name, optimizer, num_warmup_steps=warmup, num_training_steps=num_training_steps,
                         scheduler_specific_kwargs=options)


def _steps(phase: str, steps: int, ratio: float, num_training_steps: int) -> int:
    """A phase's length: `steps`, or `ratio` of the training steps rounded up; not both."""
    if steps and ratio:
        raise BuildError(f"{phase}_ratio", f"set {phase}_steps or {phase}_ratio, not both")
    if steps < 0:
        raise BuildError(f"{phase}_steps", f"must be >= 0, got {steps}")
    if not 0.0 <= ratio <= 1.0:
        raise BuildError(f"{phase}_ratio", f"must be between 0 and 1, got {ratio}")
    return steps or math.ceil(ratio * num_training_steps)


def _floor(min_lr: float | None, min_lr_rate: float | None) -> dict[str, float]:
    """The cosine floor as transformers wants it: exactly one of min_lr and min_lr_rate."""
    if min_lr is not None and min_lr_rate is not None:
        raise BuildError("min_lr_rate", "set min_lr or min_lr_rate, not both")
    if min_lr is not None:
        return {"min_lr": min_lr}
    return {"min_lr_rate": 0.0 if min_lr_rate is None else min_lr_rate}


def _check_factor(factor: float) -> None:
    if not 0.0 < factor < 1.0:
        raise BuildError("factor", f"must be between 0 and 1 (exclusive), got {factor}")


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

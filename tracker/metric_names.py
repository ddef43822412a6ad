"""The names metrics carry in MLflow: `prefix/name`, which the MLflow UI groups into one chart
section per prefix and overlays across runs (`train/loss`, `eval/accuracy`, `test/f1`).

Runners keep the Trainer's spelling inside (`train_loss`, `eval_accuracy`, `learning_rate`):
it is what `metric_for_best` and the Trainer itself use. The spelling changes once, here, on
the way to the store; code reading runs back accepts both, so runs logged before the rename
still compare.
"""

from __future__ import annotations

PREFIXES = ("train", "eval", "test")
# Training-time values that carry no prefix of their own in the Trainer's logs.
_TRAINING_VALUES = {"learning_rate", "grad_norm", "epoch"}
# What the Trainer logs beside an evaluation's scores (`eval_runtime`, `eval_samples_per_second`):
# how long it took, not how good the model is.
TIMINGS = ("runtime", "per_second", "epoch")
# Values that are better lower, by name: a loss, and a language model's perplexity (the
# exponential of its loss). Every other score is better higher, as the Trainer assumes.
LOWER_IS_BETTER = ("loss", "perplexity")


def stored_name(name: str) -> str:
    """`train_loss` -> `train/loss`, `learning_rate` -> `train/learning_rate`,
    `eval_f1` -> `eval/f1`; names with a `/` already (`system/cpu_utilization_percentage`,
    or a run read back from the store) stay as they are."""
    if "/" in name:
        return name
    if name in _TRAINING_VALUES:
        return f"train/{name}"
    prefix, _, rest = name.partition("_")
    return f"{prefix}/{rest}" if prefix in PREFIXES and rest else name


def runner_name(name: str) -> str:
    """The runners' spelling of a stored name: `train/loss` -> `train_loss`, `train/learning_rate`
    -> `learning_rate`, `eval/f1` -> `eval_f1`; other names (`system/...`) stay as they are."""
    prefix, _, rest = name.partition("/")
    if prefix == "train" and rest in _TRAINING_VALUES:
        return rest
    return f"{prefix}_{rest}" if prefix in PREFIXES and rest else name


def evaluation_name(name: str) -> str:
    """What a setting naming a validation metric (`metric_for_best`, a sweep's `metric`) means in
    the runners' spelling: `f1`, `eval_f1` and `eval/f1` all name `eval_f1`."""
    return "eval_" + name.removeprefix("eval/").removeprefix("eval_")


def is_score(name: str) -> bool:
    """Whether an evaluation's value (`eval_f1`, `eval/f1`) scores the model: not its loss, not a timing."""
    prefix, _, rest = stored_name(name).partition("/")
    return prefix in ("eval", "test") and rest != "loss" and not rest.endswith(TIMINGS)


def better_lower(name: str) -> bool:
    """Whether a metric (`eval_loss`, `eval/perplexity`) is better lower: what early stopping, the
    Trainer's best model and a sweep's direction go by."""
    return name.endswith(LOWER_IS_BETTER)

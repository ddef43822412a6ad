"""An example third-party xp plugin: the RAdam optimizer and the balanced-accuracy metric.

Registered through the `xp.plugins` entry point in pyproject.toml; nothing heavy is imported
until a factory is called, so `xp plugins` and `xp validate` stay fast.
"""
from __future__ import annotations

from dataclasses import dataclass

from tracker.errors import BuildError
from tracker.hookspecs import hookimpl


def radam(
    model,
    *,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decoupled_weight_decay: bool = False,
):
    """RAdam (torch.optim.RAdam): Adam with a rectified warmup of the adaptive learning rate."""
    import torch

    if lr <= 0:
        raise BuildError("lr", f"must be > 0, got {lr}")
    if not all(0.0 <= beta < 1.0 for beta in betas):
        raise BuildError("betas", f"expected two numbers in [0, 1), got {list(betas)}")
    parameters = [p for p in model.parameters() if p.requires_grad]
    if not parameters:
        raise BuildError(None, "the model has no trainable parameters")
    return torch.optim.RAdam(parameters, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                             decoupled_weight_decay=decoupled_weight_decay)


@dataclass(frozen=True)
class BalancedAccuracy:
    """The mean of per-class recall, so a majority class cannot hide a neglected one."""

    adjusted: bool = False
    greater_is_better = True  # not a field: which way is better, for picking the best checkpoint

    def compute(self, predictions, references) -> dict[str, float]:
        from sklearn.metrics import balanced_accuracy_score

        score = balanced_accuracy_score(references, predictions, adjusted=self.adjusted)
        return {"balanced_accuracy": float(score)}


def balanced_accuracy(*, adjusted: bool = False) -> BalancedAccuracy:
    """Balanced accuracy (sklearn): mean recall over classes; adjusted = true maps chance to 0."""
    import sklearn.metrics  # noqa: F401 - fail while building, not after the first epoch

    return BalancedAccuracy(adjusted=adjusted)


@hookimpl
def xp_register_optimizers(register):
    register("radam", radam)


@hookimpl
def xp_register_metrics(register):
    register("balanced_accuracy", balanced_accuracy)

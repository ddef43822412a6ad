"""An example third-party xp plugin: the RAdam optimizer and the balanced-accuracy metric.

Registered through the `xp.plugins` entry point in pyproject.toml; nothing heavy is imported
until a factory is called, so `xp plugins` and `xp validate` stay fast.
"""

from __future__ import annotations

from dataclasses import dataclass

from tracker.plugin import Annotated, BuildError, Field, NonNegativeFloat, PositiveFloat, data_rules, hookimpl, outputs

# Constraints are declared where the key is: xp checks them before anything is built, writes
# them into `xp schema` and lists them in `xp plugins`.
Beta = Annotated[float, Field(ge=0, lt=1)]


def radam(
    model,
    *,
    lr: Annotated[PositiveFloat, Field(description="the peak learning rate")] = 1e-3,
    betas: tuple[Beta, Beta] = (0.9, 0.999),
    eps: PositiveFloat = 1e-8,
    weight_decay: NonNegativeFloat = 0.0,
    decoupled_weight_decay: Annotated[bool, Field(description="AdamW-style decay")] = False,
):
    """RAdam (torch.optim.RAdam): Adam with a rectified warmup of the adaptive learning rate."""
    import torch

    parameters = [p for p in model.parameters() if p.requires_grad]
    if not parameters:
        raise BuildError(None, "the model has no trainable parameters")
    return torch.optim.RAdam(
        parameters,
        lr=lr,
        betas=betas,
        eps=eps,
        weight_decay=weight_decay,
        decoupled_weight_decay=decoupled_weight_decay,
    )


@dataclass(frozen=True)
class BalancedAccuracy:
    """The mean of per-class recall, so a majority class cannot hide a neglected one."""

    adjusted: bool = False
    greater_is_better = True  # not a field: which way is better, for picking the best checkpoint

    def compute(self, predictions, references) -> dict[str, float]:
        from sklearn.metrics import balanced_accuracy_score

        score = balanced_accuracy_score(references, predictions, adjusted=self.adjusted)
        return {"balanced_accuracy": float(score)}


def _needs_classes(options, data):
    """A data rule: xp runs it once the dataset is loaded, before any model is built. The task
    names the classes its targets hold; it names none when they are numbers (regression)."""
    if data.task.label_names is None:
        yield None, f"balanced accuracy needs class labels, but the task predicts {data.task.describe()}"


@outputs("balanced_accuracy")  # so `metric_for_best = "balanced_accuracy"` is checked before training
@data_rules(_needs_classes)
def balanced_accuracy(
    data, *, adjusted: Annotated[bool, Field(description="map chance level to 0")] = False
) -> BalancedAccuracy:
    """Balanced accuracy (sklearn): mean recall over classes; adjusted = true maps chance to 0.
    `data` (the TaskData) is given to every metric factory; this one scores all classes together."""
    import sklearn.metrics  # noqa: F401 - fail while building, not after the first epoch

    return BalancedAccuracy(adjusted=adjusted)


@hookimpl
def xp_register_optimizers(register):
    register("radam", radam)


@hookimpl
def xp_register_metrics(register):
    register("balanced_accuracy", balanced_accuracy)

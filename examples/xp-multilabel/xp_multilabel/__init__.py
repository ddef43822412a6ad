"""xp-multilabel: multi-label text classification for xp, added from outside xp as any third party
would: a task (`multi_label`) and the metric that scores it (`multi_label_f1`), registered
through the `xp.plugins` entry point."""

from __future__ import annotations

from dataclasses import dataclass

from tracker.plugin import Annotated, Field, Fraction, TaskData, data_rules, hookimpl, outputs
from xp_multilabel.task import MultiLabel

__all__ = ["MultiLabel", "multi_label", "multi_label_f1"]


def multi_label(
    *,
    threshold: Annotated[Fraction, Field(description="a label is predicted where its probability reaches this")] = 0.5,
) -> MultiLabel:
    """Several labels per text: a sigmoid per label, binary cross-entropy, a threshold to predict.

    The dataset's `label_column` names a list column (each row a list of label names) or one
    0/1 column per label (label_column = ["price", "quality"]). `threshold` decides which labels
    a row gets, in evaluation, in the predictions file and in `xp predict`.
    """
    return MultiLabel(threshold=threshold)


@dataclass(frozen=True)
class MultiLabelF1:
    """F1 over every (row, label) decision (micro), the mean of each label's F1 (macro), and each
    label's own F1 under its name (`f1_price`)."""

    label_names: tuple[str, ...]  # the task's, in the order of the model's outputs
    greater_is_better = True  # not a field: which way is better, for picking the best checkpoint

    def compute(self, predictions, references) -> dict[str, float]:
        import numpy as np
        from sklearn.metrics import f1_score

        predicted, true = np.asarray(predictions).astype(int), np.asarray(references).astype(int)
        per_label = f1_score(true, predicted, average=None, zero_division=0)
        return {
            "f1_micro": float(f1_score(true, predicted, average="micro", zero_division=0)),
            "f1_macro": float(per_label.mean()),
            **{f"f1_{name}": float(score) for name, score in zip(self.label_names, per_label, strict=True)},
        }


def _scores_label_sets(options, data):
    """A data rule: refused before training when the task predicts anything but label sets."""
    if not isinstance(data.task, MultiLabel):
        yield None, f"scores sets of labels (the multi_label task), but the task predicts {data.task.describe()}"


@outputs("f1_micro", "f1_macro")  # so `metric_for_best = "f1_macro"` is checked before training
@data_rules(_scores_label_sets)
def multi_label_f1(data: TaskData) -> MultiLabelF1:
    """Micro, macro and per-label F1 of multi-label predictions (sklearn), at the task's threshold."""
    return MultiLabelF1(data.task.label_names)


@hookimpl
def xp_register_tasks(register):
    register("multi_label", multi_label)


@hookimpl
def xp_register_metrics(register):
    register("multi_label_f1", multi_label_f1)

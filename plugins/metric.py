"""Built-in metrics, computed with scikit-learn and scipy so that no Hugging Face Hub access is
needed (evaluate's own accuracy, f1, ... modules wrap the same functions); `evaluate` loads any
other metric with `evaluate.load` where the Hub is reachable.

A metric factory is given the `TaskData` first (its task's `label_names`, the data's columns),
for a metric that reports per class; these score every class together and do not need it. A
metric's `compute(predictions, references)` returns plain floats by name, and its
`greater_is_better` says which way is better for all of its scores (True for every built-in one).
"""

import numbers
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from tracker.plugin import (
    Annotated,
    BuildError,
    Field,
    Name,
    NonNegativeInt,
    RunsCode,
    TaskData,
    data_rules,
    hookimpl,
    outputs,
    rules,
)
from xp_plugins.entity_metric import seqeval
from xp_plugins.perplexity_metric import perplexity
from xp_plugins.rouge_metric import rouge
from xp_plugins.squad_metric import squad
from xp_plugins.tasks.sequence_classification import SequenceClassification

Average = Annotated[
    Literal["binary", "macro", "micro", "weighted"],
    Field(description='"binary": the positive class only; otherwise averaged over classes'),
]
PositiveLabel = Annotated[NonNegativeInt, Field(description='the positive class id, with average = "binary"')]
# The configuration names of the `nyu-mll/glue` dataset on the Hub (so "stsb", not "sts-b").
GlueTask = Literal[
    "cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "mnli_matched", "mnli_mismatched", "qnli", "rte", "wnli", "ax"
]
GLUE_OUTPUTS = {
    "cola": ("matthews_correlation",),
    "stsb": ("pearson", "spearman"),
    "mrpc": ("accuracy", "f1"),
    "qqp": ("accuracy", "f1"),
}
GLUE_CLASSES = {
    "cola": 2,
    "sst2": 2,
    "mrpc": 2,
    "qqp": 2,
    "mnli": 3,
    "mnli_matched": 3,
    "mnli_mismatched": 3,
    "qnli": 2,
    "rte": 2,
    "wnli": 2,
    "ax": 3,
}


# --- what a metric needs from the task (data rules) -----------------------------------------------


def _sequence_classes(data) -> SequenceClassification | None:
    """The task, when it predicts one class (or value) per row: the targets these metrics score."""
    return data.task if isinstance(data.task, SequenceClassification) else None


def _classes(task: SequenceClassification) -> str:
    return f"{task.num_labels} classes ({', '.join(task.label_names or ())})"


def _needs_classes(options, data):
    task = _sequence_classes(data)
    if task is None:
        yield None, f"scores one class per row (sequence classification), but the task predicts {data.task.describe()}"
    elif task.is_regression:
        yield None, "needs class labels, but the labels are numbers (a regression task); use pearson or spearman"


def _needs_numbers(options, data):
    task = _sequence_classes(data)
    if task is None:
        yield None, f"scores one value per row (regression), but the task predicts {data.task.describe()}"
    elif not task.is_regression:
        yield (
            None,
            (
                f"a correlation of regression outputs, but the task has {_classes(task)}; "
                "use accuracy, f1 or matthews_correlation"
            ),
        )


def _average_fits_classes(options, data):
    task = _sequence_classes(data)
    if task is None or task.is_regression:
        return
    if options["average"] == "binary" and task.num_labels > 2:
        yield (
            "average",
            (f'"binary" scores two classes, the task has {_classes(task)}; use "macro", "micro" or "weighted"'),
        )
    elif options["pos_label"] >= task.num_labels:
        yield "pos_label", f"{options['pos_label']} is not a class id of the task's {_classes(task)}"


def _glue_task_fits(options, data):
    name, task = options["task"], _sequence_classes(data)
    if name == "stsb" or task is None:
        fits = _needs_numbers if name == "stsb" else _needs_classes
        yield from (("task", message) for _, message in fits(options, data))
    elif task.is_regression:
        yield "task", f'"{name}" is a classification task, but the labels are numbers (regression); use task = "stsb"'
    elif task.num_labels != GLUE_CLASSES[name]:
        yield "task", f'"{name}" has {GLUE_CLASSES[name]} classes, the data has {_classes(task)}'


def _pos_label_only_for_binary(options):
    if options["pos_label"] != 1 and options["average"] != "binary":
        yield "pos_label", f'only applies to average = "binary", not "{options["average"]}"'


@dataclass(frozen=True)
class Scores:
    """A metric made of named score functions, each `score(predictions, references) -> float`."""

    scorers: dict[str, Callable[..., float]]
    greater_is_better: bool = True

    def compute(self, predictions, references) -> dict[str, float]:
        return {name: float(score(predictions, references)) for name, score in self.scorers.items()}


def _sklearn(function_name: str, predictions, references, **options) -> float:
    import sklearn.metrics

    return getattr(sklearn.metrics, function_name)(references, predictions, **options)


def _scipy_correlation(function_name: str, predictions, references) -> float:
    import numpy as np
    import scipy.stats

    # ravel: a regression head's predictions often arrive shaped (n, 1).
    return getattr(scipy.stats, function_name)(np.ravel(predictions), np.ravel(references)).statistic


def _averaged(function_name: str, average: str, pos_label: int) -> Callable[..., float]:
    # zero_division=0.0: a class never predicted (or absent) scores 0 without a warning per call.
    return partial(_sklearn, function_name, average=average, pos_label=pos_label, zero_division=0.0)


_accuracy = partial(_sklearn, "accuracy_score")
_matthews = partial(_sklearn, "matthews_corrcoef")
_pearson = partial(_scipy_correlation, "pearsonr")
_spearman = partial(_scipy_correlation, "spearmanr")


@outputs("accuracy")
@data_rules(_needs_classes)
def accuracy(data: TaskData):
    """Fraction of predicted class ids equal to the references."""
    return Scores({"accuracy": _accuracy})


@outputs("f1")
@rules(_pos_label_only_for_binary)
@data_rules(_needs_classes, _average_fits_classes)
def f1(data: TaskData, *, average: Average = "binary", pos_label: PositiveLabel = 1):
    """F1 score (scikit-learn); pos_label is the positive class when average = "binary"."""
    return Scores({"f1": _averaged("f1_score", average, pos_label)})


@outputs("precision")
@rules(_pos_label_only_for_binary)
@data_rules(_needs_classes, _average_fits_classes)
def precision(data: TaskData, *, average: Average = "binary", pos_label: PositiveLabel = 1):
    """Precision (scikit-learn); pos_label is the positive class when average = "binary"."""
    return Scores({"precision": _averaged("precision_score", average, pos_label)})


@outputs("recall")
@rules(_pos_label_only_for_binary)
@data_rules(_needs_classes, _average_fits_classes)
def recall(data: TaskData, *, average: Average = "binary", pos_label: PositiveLabel = 1):
    """Recall (scikit-learn); pos_label is the positive class when average = "binary"."""
    return Scores({"recall": _averaged("recall_score", average, pos_label)})


@outputs("matthews_correlation")
@data_rules(_needs_classes)
def matthews_correlation(data: TaskData):
    """Matthews correlation coefficient, in [-1, 1]; robust to unbalanced classes."""
    return Scores({"matthews_correlation": _matthews})


@outputs("pearson")
@data_rules(_needs_numbers)
def pearson(data: TaskData):
    """Pearson correlation of regression predictions with the references."""
    return Scores({"pearson": _pearson})


@outputs("spearman")
@data_rules(_needs_numbers)
def spearman(data: TaskData):
    """Spearman rank correlation of regression predictions with the references."""
    return Scores({"spearman": _spearman})


@outputs(lambda options: GLUE_OUTPUTS.get(options["task"], ("accuracy",)))
@data_rules(_glue_task_fits)
def glue(data: TaskData, *, task: Annotated[GlueTask, Field(description="the GLUE task's configuration name")]):
    """The official metrics of a GLUE task: accuracy, plus f1 (mrpc, qqp); cola: MCC; stsb: correlations."""
    if task == "cola":
        return matthews_correlation(data)
    if task == "stsb":
        return Scores({"pearson": _pearson, "spearman": _spearman})
    if task in ("mrpc", "qqp"):
        return Scores({"accuracy": _accuracy, "f1": _averaged("f1_score", "binary", 1)})
    return accuracy(data)


@dataclass(frozen=True)
class EvaluateMetric:
    """A metric loaded with `evaluate.load`; `compute` keeps the numeric entries of its result."""

    module: Any  # an evaluate.EvaluationModule
    compute_options: dict[str, Any]
    greater_is_better: bool = True

    def compute(self, predictions, references) -> dict[str, float]:
        result = self.module.compute(predictions=predictions, references=references, **self.compute_options)
        return {
            name: float(value)
            for name, value in result.items()
            if isinstance(value, numbers.Real) and not isinstance(value, bool)
        }


def evaluate_metric(
    data: TaskData,
    *,
    path: Annotated[Name, RunsCode("evaluate.load runs the metric's Python script, from the Hub or a local file")],
    config_name: Name | None = None,
    compute_options: dict[str, Any] | None = None,
    greater_is_better: bool = True,
):
    """Any metric of the evaluate library (a Hub name or a local script); Hub names need the network."""
    import evaluate

    try:
        module = evaluate.load(path, config_name)
    except (OSError, ImportError) as error:  # offline: FileNotFoundError; a missing dependency: ImportError
        raise BuildError(
            "path",
            f'evaluate could not load "{path}" ({error}); the Hugging Face Hub may be '
            f"unreachable. These built-in metrics need no network: "
            f"{', '.join(BUILT_IN)}",
        ) from error
    return EvaluateMetric(module, compute_options or {}, greater_is_better)


BUILT_IN = {
    "accuracy": accuracy,
    "f1": f1,
    "precision": precision,
    "recall": recall,
    "matthews_correlation": matthews_correlation,
    "pearson": pearson,
    "spearman": spearman,
    "glue": glue,
    "seqeval": seqeval,
    "squad": squad,
    "rouge": rouge,
    "perplexity": perplexity,
}


@hookimpl
def xp_register_metrics(register):
    for name, factory in BUILT_IN.items():
        register(name, factory)
    register("evaluate", evaluate_metric)

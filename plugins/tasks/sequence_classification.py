"""Sequence classification: one class per text or sentence pair (a softmax over the classes,
cross-entropy), or one value per row (regression, mean squared error), as `run_glue.py` does."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tracker.plugin import Baseline, BuildError, Export, Head, PredictionStats, Proposal, Row, TaskData
from xp_plugins.tasks import columns as guess
from xp_plugins.tasks.labels import HIDDEN_LABEL, class_names, named_column, rows_text, unlabelled_rows

if TYPE_CHECKING:
    from datasets import Dataset

PIPELINE_TASK = "text-classification"
NAMED_IDS_AT_MOST = 6  # class ids xp init offers to name; more would make a line nobody reads


@dataclasses.dataclass(frozen=True)
class SequenceClassification:
    """A `Task`. Its targets: class names, or none for regression (floats)."""

    label_names: tuple[str, ...] | None = None
    targets_read: bool = False
    label_padding: None = None  # one target per row

    @property
    def is_regression(self) -> bool:
        return self.targets_read and self.label_names is None

    @property
    def num_labels(self) -> int:
        return 1 if self.label_names is None else len(self.label_names)

    # ---- data -------------------------------------------------------------------------------------

    def read_targets(
        self,
        splits: dict[str, Dataset],
        columns: Sequence[str],
        names_of_ids: Sequence[str] | None,
        *,
        text_columns: Sequence[str],
    ) -> tuple[SequenceClassification, dict[str, Dataset]]:
        if len(columns) != 1:
            raise BuildError(
                "label_column",
                f"sequence classification reads one label column, not {len(columns)} "
                f"({', '.join(columns)}); several labels per row need a multi-label task plugin",
            )
        names, splits = class_names(named_column(splits, columns[0]), names_of_ids)
        return self.with_labels(names), splits

    def check_targets(self, split: Dataset, split_name: str, columns: Sequence[str]) -> None:
        """Training and validation rows without a label (empty, null, NaN) would be trained on as
        a class or scored silently; name them instead."""
        [column] = columns
        rows = unlabelled_rows(split, classes=not self.is_regression)
        if rows:
            raise BuildError(
                "label_column",
                f'{len(rows)} row(s) of the {split_name} split have no "{column}" '
                f"({rows_text(rows)}); every training and validation row needs a label",
            )
        if self.label_names is not None and len(self.label_names) < 2:
            raise BuildError(
                "label_column",
                f'"{column}" has a single class ({", ".join(self.label_names) or "none"}); '
                "classification needs at least two",
            )

    def is_labelled(self, split: Dataset) -> bool:
        return any(value != HIDDEN_LABEL for value in split.unique("label"))

    def describe(self) -> str:
        if self.label_names is None:
            return "regression"
        return f"{len(self.label_names)} labels: {', '.join(self.label_names)}"

    def of_model(self, label_names: Sequence[str] | None, config: Any) -> SequenceClassification:
        """The names xp recorded, else the config's id2label; none for a regression model."""
        if config.problem_type == "regression" or config.num_labels == 1:
            return self.with_labels(None)
        if label_names is not None and len(label_names) == config.num_labels:
            return self.with_labels(label_names)
        return self.with_labels([str(config.id2label[i]) for i in range(config.num_labels)])

    def with_labels(self, label_names: Sequence[str] | None) -> SequenceClassification:
        """This task with its targets known: these class names, or None for regression."""
        names = None if label_names is None else tuple(label_names)
        return dataclasses.replace(self, label_names=names, targets_read=True)

    # ---- model ------------------------------------------------------------------------------------

    def head(self) -> Head:
        if self.label_names is None:
            return Head("AutoModelForSequenceClassification", {"num_labels": 1, "problem_type": "regression"})
        return Head(
            "AutoModelForSequenceClassification",
            {
                "num_labels": len(self.label_names),
                "problem_type": "single_label_classification",
                "id2label": dict(enumerate(self.label_names)),
                "label2id": {name: i for i, name in enumerate(self.label_names)},
            },
        )

    def encode(
        self,
        batch: dict[str, list[Any]],
        *,
        tokenizer: Any,
        text_columns: Sequence[str],
        options: Mapping[str, Any],
        split: str,
    ) -> Mapping[str, Any]:
        """One text, or a sentence pair, per row, as the tokenizer encodes a pair; the label as is."""
        encoded = tokenizer(*(batch[column] for column in text_columns), **options)
        encoded["labels"] = batch["label"]
        return encoded

    # ---- predictions ------------------------------------------------------------------------------

    def decode(self, outputs: tuple[Any, ...]) -> tuple[Any, Any]:
        """Class ids and the probability of each; for regression the value, twice."""
        import torch

        logits = outputs[0].float()
        if self.is_regression:
            values = logits.squeeze(-1)
            return values, values
        scores, predictions = torch.softmax(logits, dim=-1).max(dim=-1)
        return predictions, scores

    def prediction_columns(
        self, predictions: Any, scores: Any, references: Any, data: TaskData
    ) -> dict[str, Sequence[Any]]:
        """`label` (the class name, or the value for regression) and `score`."""
        if self.label_names is None:
            labels: list[Any] = [float(value) for value in predictions]
        else:
            labels = [self.label_names[int(prediction)] for prediction in predictions]
        return {"label": labels, "score": [f"{float(score):.6f}" for score in scores]}

    def predict(
        self, texts: Sequence[Sequence[Any]], *, model: Any, tokenizer: Any, max_length: int | None, probabilities: bool
    ) -> Mapping[str, Sequence[Any]]:
        """`label`, `label_id`, `score` (the label's probability) and, on request, `prob_<label>`
        per class; for regression `score` only, the predicted value."""
        if probabilities and self.label_names is None:
            raise ValueError("it has no classes")
        # One text column, or a sentence pair, as `encode` tokenized them for training.
        encoded = tokenizer(*texts, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
        logits = model(**encoded.to(model.device)).logits.float().cpu().numpy()
        return self._table(logits, probabilities)

    def _table(self, logits: Any, probabilities: bool) -> dict[str, Sequence[Any]]:
        import numpy as np

        if self.label_names is None:
            return {"score": logits[:, 0]}
        shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
        probs = shifted / shifted.sum(axis=-1, keepdims=True)
        ids = probs.argmax(axis=-1)
        columns: dict[str, Sequence[Any]] = {
            "label": [self.label_names[i] for i in ids.tolist()],
            "label_id": ids,
            "score": probs.max(axis=-1),
        }
        if probabilities:
            columns |= {f"prob_{name}": probs[:, i] for i, name in enumerate(self.label_names)}
        return columns

    def prediction_stats(self, predictions: Any, references: Any) -> PredictionStats:
        if self.label_names is None:
            return PredictionStats.of_values(predictions, references)
        return PredictionStats.of_classes(predictions, references, len(self.label_names))

    def baseline(self, data: TaskData) -> Baseline:
        """The training split's majority class for every validation row; for regression, its mean."""
        import numpy as np

        train, rows = np.asarray(data.splits["train"]["label"]), len(data.splits["eval"])
        if self.label_names is None:
            return Baseline(np.full(rows, float(np.mean(train))), "the training mean")
        counts = np.bincount(train[train >= 0].astype(int), minlength=len(self.label_names))
        majority = int(np.argmax(counts))
        return Baseline(np.full(rows, majority), f'"{self.label_names[majority]}"')

    # ---- export -----------------------------------------------------------------------------------

    def export(self, data: TaskData, max_length: int | None) -> Export:
        """The text-classification pipeline: a list of sentences, or rows of `text` and
        `text_pair`, in; a label and its score per row out."""
        from mlflow.models import ModelSignature
        from mlflow.types import ColSpec, Schema

        if len(data.text_columns) == 1:
            inputs = Schema([ColSpec("string")])  # a plain list of sentences
        else:  # the pipeline's own names for a pair; the second is optional, as for the pipeline
            inputs = Schema([ColSpec("string", "text"), ColSpec("string", "text_pair", required=False)])
        signature = ModelSignature(inputs, Schema([ColSpec("string", "label"), ColSpec("double", "score")]))
        return Export(PIPELINE_TASK, signature.to_dict(), _example_rows(data))

    # ---- xp init ----------------------------------------------------------------------------------

    def propose(self, splits: Mapping[str, Dataset | None], text_columns: Any, label_column: Any) -> Proposal:
        """The text column(s) and the label column (as given, else guessed), the classes as
        training will read them, and metrics that fit: accuracy and F1 (macro for more than two
        classes), or correlations for numbers."""
        train = splits["train"]
        assert train is not None
        label = guess.label_column(train, label_column)
        text = guess.text_columns(train, label, text_columns)
        labelled = {key: split for key, split in splits.items() if split is not None and label in split.column_names}
        names, read = class_names(named_column(labelled, label), None)
        task = self.with_labels(names)
        if names is not None and len(names) < 2:
            raise BuildError(
                "label_column",
                f'"{label}" has {len(names)} class(es) ({", ".join(names) or "none"}); '
                "classification needs at least two",
            )
        kind = "a sentence pair" if len(text) == 2 else "one text"
        targets = f"{label} (numbers: regression)" if names is None else f"{label}, {_classes(names)}"
        others = [c for c in guess.string_columns(train) if c not in text and c != label and c not in guess.ID_COLUMNS]
        what = "a sentence pair" if len(text) == 2 else "one column, or two for a sentence pair"
        rows: list[Row] = [
            ("text_columns", list(text), what + (f"; other text: {', '.join(others)}" if others else "")),
            ("label_column", label, "numbers: regression" if names is None else _classes(names)),
        ]
        if names is not None and _unnamed_ids(train.features[label], names) and len(names) <= NAMED_IDS_AT_MOST:
            placeholders = ", ".join(f'"name of {i}"' for i in range(len(names)))
            rows.append(("#", f"label_names = [{placeholders}]", "name the class ids: predictions then say the names"))
        metrics, tables = _metrics(names)
        return Proposal(
            text_columns=text,
            columns=(*text, label),
            dataset=tuple(rows),
            test_labelled="test" in read and task.is_labelled(read["test"]),
            inputs=f"{' + '.join(text)} ({kind})",
            targets=targets,
            metrics=metrics,
            metric_tables=tables,
            model="The pretrained model, with a new classification head sized from the labels.",
        )


def _classes(names: tuple[str, ...]) -> str:
    shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
    return f"{len(names)} classes ({shown})"


def _unnamed_ids(feature: Any, names: tuple[str, ...]) -> bool:
    """Integer class ids 0..n-1 that the data does not name (no ClassLabel)."""
    from datasets import ClassLabel

    dtype = getattr(feature, "dtype", None) or ""
    return not isinstance(feature, ClassLabel) and "int" in dtype and names == tuple(str(i) for i in range(len(names)))


def _metrics(names: tuple[str, ...] | None) -> tuple[tuple[Row, ...], dict[str, tuple[str, tuple[Row, ...]]]]:
    if names is None:
        return (("use", ["pearson", "spearman"], "correlations with the true numbers"),), {}
    if len(names) == 2:
        positive = "class 1" if names == ("0", "1") else f'class 1, "{names[1]}"'
        return (("use", ["accuracy", "f1"], f"f1 of {positive}; [metrics.f1] pos_label = 0 scores the other"),), {}
    average: tuple[Row, ...] = (("average", "macro", f"the mean of the {len(names)} classes' f1"),)
    return (("use", ["accuracy", "f1"], None),), {"f1": ("Options of f1.", average)}


def _example_rows(data: TaskData) -> Any:
    """Two rows of the validation split, as the pipeline takes them."""
    rows = data.splits["eval"].select(range(min(2, len(data.splits["eval"]))))
    columns = [rows[column] for column in data.text_columns]
    if len(columns) == 1:
        return list(columns[0])
    return [{"text": first, "text_pair": second} for first, second in zip(columns[0], columns[1], strict=True)]


def sequence_classification() -> SequenceClassification:
    """One label per text or sentence pair: a class, or a value (regression); the default task.

    Classes are read from the label column (class names, or integer ids named by the dataset's
    `label_names`), trained with a softmax and cross-entropy; a column of floats is regression,
    trained with mean squared error. A file without [task] means this task."""
    return SequenceClassification()

"""Multi-label text classification as an xp task: any number of labels per row, one sigmoid output
per label trained with binary cross-entropy, a label predicted where its probability reaches the
threshold the experiment file sets.

The targets are read from a list column (`label_column = "aspects"`, rows like ["price",
"quality"]) or from one 0/1 column per label (`label_column = ["price", "quality", ...]`); either
way they become a multi-hot vector of floats per row, the `labels` a transformers sequence
classifier with `problem_type = "multi_label_classification"` trains on.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from tracker.plugin import Baseline, BuildError, Export, Head, Proposal, TaskData

HIDDEN = -1.0  # every entry of a test row whose labels are not given: predicted, never scored
SEPARATOR = ";"  # between the labels of one row in the predictions file and `xp predict`'s output


@dataclasses.dataclass(frozen=True)
class MultiLabel:
    """A `Task` (tracker.task.Task). `label_names` is None until the targets are read."""

    threshold: float = 0.5
    label_names: tuple[str, ...] | None = None
    label_padding: None = None  # one vector of targets per row: nothing to pad

    # ---- data -------------------------------------------------------------------------------------

    def read_targets(
        self,
        splits: dict[str, Any],
        columns: Sequence[str],
        names_of_ids: list[str] | None,
        *,
        text_columns: Sequence[str],
    ):
        from datasets import List, Value

        if len(columns) > 1:
            names, encode = tuple(columns), _from_flag_columns(tuple(columns))
        else:
            [column] = columns
            names = _names_in_lists(splits, column, names_of_ids)
            encode = _from_list_column(column, names, numbered=names_of_ids is not None)
        read = {}
        for key, split in splits.items():
            if all(column in split.column_names for column in columns):
                # float32: the binary cross-entropy takes targets of the logits' type
                features = split.features.copy()
                features["label"] = List(Value("float32"), length=len(names))
                read[key] = split.map(encode, batched=True, features=features)
            elif key == "test":  # labels not given: predictions only
                hidden = [[HIDDEN] * len(names)] * len(split)
                read[key] = split.add_column("label", hidden, feature=List(Value("float32"), length=len(names)))
            else:
                raise BuildError("label_column", f"the {key} split has no column(s) {', '.join(columns)}")
        return dataclasses.replace(self, label_names=names), read

    def check_targets(self, split: Any, split_name: str, column: str) -> None:
        missing = [row for row, vector in enumerate(split["label"]) if any(math.isnan(v) for v in vector)]
        if missing:
            shown = ", ".join(map(str, missing[:5])) + (", ..." if len(missing) > 5 else "")
            raise BuildError(
                "label_column",
                f"{len(missing)} row(s) of the {split_name} split have no labels (rows {shown}); "
                "a row with none of the labels is an empty list, or 0 in every column",
            )

    def is_labelled(self, split: Any) -> bool:
        return any(vector[0] != HIDDEN for vector in split["label"])

    def describe(self) -> str:
        names = self.label_names or ()
        return f"{len(names)} labels, any number per row: {', '.join(names)}"

    def of_model(self, label_names: Sequence[str] | None, config: Any) -> MultiLabel:
        if label_names is None or len(label_names) != config.num_labels:
            label_names = [str(config.id2label[i]) for i in range(config.num_labels)]
        return dataclasses.replace(self, label_names=tuple(label_names))

    # ---- model ------------------------------------------------------------------------------------

    def head(self) -> Head:
        names = self.label_names or ()
        return Head(
            "AutoModelForSequenceClassification",
            {
                "num_labels": len(names),
                "problem_type": "multi_label_classification",  # sigmoid outputs, binary cross-entropy
                "id2label": dict(enumerate(names)),
                "label2id": {name: i for i, name in enumerate(names)},
            },
        )

    def encode(
        self, batch: dict[str, list], *, tokenizer: Any, text_columns: Sequence[str], options: Any, split: str
    ) -> Any:
        """The text as the tokenizer encodes it; the row's 0/1 vector as its labels."""
        encoded = tokenizer(*(batch[column] for column in text_columns), **options)
        encoded["labels"] = batch["label"]
        return encoded

    # ---- predictions ------------------------------------------------------------------------------

    def decode(self, outputs: tuple[Any, ...]) -> tuple[Any, Any]:
        """A 0/1 vector per row (each label whose probability reaches the threshold), and the
        probabilities, from the logits (the model's first output)."""
        import torch

        probabilities = torch.sigmoid(outputs[0].float())
        return (probabilities >= self.threshold).long(), probabilities

    def prediction_columns(self, predictions: Any, scores: Any, references: Any, data: Any) -> dict[str, Sequence[Any]]:
        """`labels` (the predicted set, joined by ";") and `score_<label>` for every label."""
        names = self.label_names or ()
        columns: dict[str, Sequence[Any]] = {"labels": [self._label_set(row) for row in predictions]}
        for index, name in enumerate(names):
            columns[f"score_{name}"] = [f"{float(row[index]):.6f}" for row in scores]
        return columns

    def predict(
        self, texts: Sequence[Sequence[Any]], *, model: Any, tokenizer: Any, max_length: int | None, probabilities: bool
    ) -> Mapping[str, Sequence[Any]]:
        """As the predictions file; every label's score is written with or without --probabilities."""
        import torch

        encoded = tokenizer(*texts, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
        scores = torch.sigmoid(model(**encoded.to(model.device)).logits.float()).cpu().numpy()
        return {
            "labels": [self._label_set(row) for row in scores >= self.threshold],
            **{f"score_{name}": scores[:, index] for index, name in enumerate(self.label_names or ())},
        }

    def _label_set(self, row: Any) -> str:
        return SEPARATOR.join(name for name, chosen in zip(self.label_names or (), row, strict=True) if chosen)

    def prediction_stats(self, predictions: Any, references: Any) -> None:
        return None  # the diagnosis reads the curves only

    def baseline(self, data: TaskData) -> Baseline | None:
        return None

    # ---- export -----------------------------------------------------------------------------------

    def export(self, data: TaskData, max_length: int | None) -> Export:
        """Served by the text-classification pipeline with every label's sigmoid score: rows of
        text in, for each row every label with its probability out."""
        from mlflow.models import ModelSignature
        from mlflow.types import ColSpec, Schema

        column = data.text_columns[0]
        rows = data.splits["eval"].select(range(min(2, len(data.splits["eval"]))))[column]
        signature = ModelSignature(Schema([ColSpec("string")]))
        return Export(
            "text-classification",
            signature.to_dict(),
            list(rows),
            model_config={"top_k": None, "function_to_apply": "sigmoid"},
        )

    # ---- xp init ----------------------------------------------------------------------------------

    def propose(self, splits: Any, text_columns: Any, label_column: Any) -> Proposal:
        """The list column of labels (as given, else the first column of lists of strings) and
        the text column (as given, else the string column with the longest texts)."""
        from datasets import List

        train = splits["train"]
        lists = [name for name, feature in train.features.items() if isinstance(feature, List)]
        label = label_column or next(iter(lists), None)
        if label is None or label not in lists:
            raise BuildError(
                "label_column",
                f"no column of label lists in the train split (columns: {', '.join(train.column_names)}); "
                "name it with --label-column",
            )
        strings = [c for c, f in train.features.items() if getattr(f, "dtype", None) in ("string", "large_string")]
        sample = train.select(range(min(len(train), 1000)))
        text = tuple(text_columns or [max(strings, key=lambda c: sum(len(t or "") for t in sample[c]))])
        names = _names_in_lists({"train": train}, label, None)
        test = splits.get("test")
        return Proposal(
            text_columns=text,
            columns=(*text, label),
            dataset=(
                ("text_columns", list(text), None),
                ("label_column", label, f"{len(names)} labels, any number per row: {', '.join(names)}"),
            ),
            test_labelled=test is not None and label in test.column_names,
            inputs=" + ".join(text),
            targets=f"{label}, {len(names)} labels, any number per row ({', '.join(names)})",
            metrics=(("use", ["multi_label_f1"], "f1_micro and f1_macro at the task's threshold"),),
            model="The pretrained model, with one sigmoid output per label.",
        )


def _names_in_lists(splits: dict[str, Any], column: str, names_of_ids: list[str] | None) -> tuple[str, ...]:
    """The labels a list column holds: the sorted distinct values, or `label_names` for integer ids."""
    from datasets import List

    feature = splits["train"].features.get(column)
    dtype = getattr(feature.feature, "dtype", None) if isinstance(feature, List) else None
    if dtype is None or not ("string" in dtype or "int" in dtype):
        raise BuildError(
            "label_column",
            f'"{column}" holds {feature}; a multi-label column is a list of label names per row '
            '(["price", "quality"]), or name one 0/1 column per label: label_column = ["price", "quality"]',
        )
    if names_of_ids is not None:
        return tuple(names_of_ids)
    values = {
        value for split in splits.values() if column in split.column_names for row in split[column] for value in row
    }
    if len(values) < 2:
        raise BuildError(
            "label_column", f'"{column}" holds {len(values)} distinct label(s); multi-label needs two or more'
        )
    return tuple(str(value) for value in sorted(values))


def _from_list_column(column: str, names: tuple[str, ...], numbered: bool):
    index = {name: i for i, name in enumerate(names)}

    def encode(batch: dict[str, list]) -> dict[str, list]:
        vectors = []
        for row in batch[column]:
            vector = [0.0] * len(names)
            if row is None:
                vector = [math.nan] * len(names)
            else:
                for value in row:
                    key = names[value] if numbered else str(value)
                    if key not in index:
                        raise BuildError(
                            "label_column", f'"{value}" in column "{column}" is not one of {", ".join(names)}'
                        )
                    vector[index[key]] = 1.0
            vectors.append(vector)
        return {"label": vectors}

    return encode


def _from_flag_columns(columns: tuple[str, ...]):
    def flag(value: Any, column: str) -> float:
        if value is None:
            return math.nan
        if value not in (0, 1):  # True and False are 1 and 0
            raise BuildError("label_column", f'"{column}" holds {value!r}; a label column holds 0 or 1')
        return float(value)

    def encode(batch: dict[str, list]) -> dict[str, list]:
        rows = zip(*(batch[column] for column in columns), strict=True)
        return {"label": [[flag(value, column) for value, column in zip(row, columns, strict=True)] for row in rows]}

    return encode

"""Reading a column of class labels, shared by the tasks that predict classes: the names of the
classes, in id order, and the column encoded as their ids under the name `label`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tracker.plugin import BuildError

if TYPE_CHECKING:
    from datasets import Dataset

HIDDEN_LABEL = -1  # how GLUE marks the labels of its test splits; an unlabelled test file gets it too


def named_column(splits: dict[str, Dataset], column: str) -> dict[str, Dataset]:
    """Every split with its label column named `label`; an unlabelled test split gets a `label`
    column of HIDDEN_LABEL (predictions only)."""
    splits = {
        key: split.rename_column(column, "label") if column != "label" and column in split.column_names else split
        for key, split in splits.items()
    }
    if "test" in splits and "label" not in splits["test"].column_names:
        splits["test"] = splits["test"].add_column("label", [HIDDEN_LABEL] * len(splits["test"]))
    return splits


def class_names(
    splits: dict[str, Dataset], names_of_ids: Sequence[str] | None
) -> tuple[tuple[str, ...] | None, dict[str, Dataset]]:
    """The class names and the splits with `label` holding class ids; None for names when the
    labels are floats (values, not classes). `names_of_ids` names the ids of a column of integer
    class ids. A BuildError on the key to fix (`label_column`, `label_names`) for anything else."""
    from datasets import ClassLabel, Value

    feature = splits["train"].features["label"]
    dtype = getattr(feature, "dtype", None)
    if names_of_ids is not None:
        return _named_ids(splits, feature, dtype, names_of_ids), splits
    if isinstance(feature, ClassLabel):
        return tuple(feature.names), splits
    if dtype is not None and dtype.startswith("float"):  # values; float32 matches the model's logits
        return None, {k: s.cast_column("label", Value("float32")) for k, s in splits.items()}
    if dtype is None or not ("string" in dtype or dtype == "bool" or "int" in dtype):  # also large_string
        listed = ' (a list per row, as tags per word are: token tags need [task] use = "token_classification")'
        raise BuildError(
            "label_column",
            f"cannot use labels of type {feature} (expected class names, integers or floats)"
            + (listed if hasattr(feature, "feature") else ""),
        )

    # Strings or integers without names: the sorted distinct values become the class names.
    values = sorted({v for split in splits.values() for v in split.unique("label")} - {None, HIDDEN_LABEL, ""})
    names = tuple(str(v) for v in values)
    if "int" in dtype and values == list(range(len(values))):  # already class ids
        return names, splits
    ids = {v: i for i, v in enumerate(values)}
    encode = lambda batch: {"label": [ids.get(v, HIDDEN_LABEL) for v in batch["label"]]}  # noqa: E731
    features = {k: s.features.copy() for k, s in splits.items()}
    for f in features.values():
        f["label"] = Value("int64")
    return names, {k: s.map(encode, batched=True, features=features[k]) for k, s in splits.items()}


def _named_ids(splits: dict[str, Dataset], feature: Any, dtype: str | None, names: Sequence[str]) -> tuple[str, ...]:
    """`label_names` for a column of integer ids: every id must be one of 0..len(names)-1."""
    from datasets import ClassLabel

    if isinstance(feature, ClassLabel):
        raise BuildError(
            "label_names", f"the dataset names its classes already ({', '.join(feature.names)}); remove label_names"
        )
    if dtype is None or "int" not in dtype:
        held = "text" if dtype and "string" in dtype else dtype or feature
        raise BuildError(
            "label_names",
            f"names integer class ids, but the label column holds {held} values "
            "(class names or scores already); remove label_names",
        )
    ids = sorted({v for split in splits.values() for v in split.unique("label")} - {None, HIDDEN_LABEL})
    unnamed = [i for i in ids if not 0 <= i < len(names)]
    if unnamed:
        raise BuildError(
            "label_names",
            f"{len(names)} names for the class ids 0..{len(names) - 1}, but the "
            f"data has the id(s) {', '.join(map(str, unnamed[:10]))}",
        )
    return tuple(names)


def unlabelled_rows(split: Dataset, classes: bool) -> list[int]:
    """Rows without a label: empty, null, NaN, or (for classes) the hidden label."""

    def unlabelled(value: Any) -> bool:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return True
        return classes and value == HIDDEN_LABEL

    return [row for row, value in enumerate(split["label"]) if unlabelled(value)]


def rows_text(rows: list[int]) -> str:
    return "rows " + ", ".join(str(r) for r in rows[:5]) + (", ..." if len(rows) > 5 else "")

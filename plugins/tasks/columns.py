"""Choosing, for `xp init`, which columns of the rows hold the text and which the label, when the
person did not say: the usual names of text columns and sentence pairs, else the string column
with the longest texts; a ClassLabel column or a usual label name."""

from __future__ import annotations

from typing import Any

from tracker.plugin import BuildError

# Row ids are strings sometimes, but never the text to classify.
ID_COLUMNS = ("id", "idx", "guid", "uid", "row_id", "example_id")
# Column names of the usual sentence-pair tasks (GLUE, SNLI, QQP, ...), most specific first.
PAIRS = (
    ("sentence1", "sentence2"),
    ("question1", "question2"),
    ("premise", "hypothesis"),
    ("question", "sentence"),
    ("text_a", "text_b"),
    ("sentence_a", "sentence_b"),
    ("text", "text_pair"),
    ("query", "passage"),
    ("question", "passage"),
)
SINGLES = ("text", "sentence", "review", "content", "document", "comment", "tweet", "utterance", "question", "title")
LABELS = ("label", "labels", "score", "target", "class", "category", "gold_label", "sentiment")


def column_values(split: Any, column: str) -> list[Any]:
    """A column's values as Python lists, read from Arrow at once rather than row by row; the rows
    a `select` kept, in its order (a selected dataset's table still holds every row)."""
    return split.with_format("arrow")[column].to_pylist()


def string_columns(split: Any) -> list[str]:
    return [
        name
        for name, feature in split.features.items()
        if getattr(feature, "dtype", None) in ("string", "large_string")
    ]


def columns_text(split: Any) -> str:
    return ", ".join(
        f"{name} ({getattr(feature, 'dtype', type(feature).__name__)})" for name, feature in split.features.items()
    )


def label_column(train: Any, given: str | None) -> str:
    """The named column; else the ClassLabel one; else the first with a usual label name."""
    from datasets import ClassLabel

    if given:
        if given not in train.column_names:
            raise BuildError("label_column", f'the train split has no column "{given}"; it has: {columns_text(train)}')
        return given
    class_labels = [name for name, feature in train.features.items() if isinstance(feature, ClassLabel)]
    named = [name for name in LABELS if name in train.column_names]
    if class_labels or named:
        return (class_labels or named)[0]
    raise BuildError(
        "label_column",
        "no label column in the train split (looked for a ClassLabel or a column named "
        f"{', '.join(LABELS)}); name it with --label-column. Columns: {columns_text(train)}",
    )


def text_columns(train: Any, label: str, given: list[str] | None) -> tuple[str, ...]:
    """A known sentence pair; else a known single-text name; else the one string column, or the
    string column with the longest texts."""
    strings = [c for c in string_columns(train) if c != label and c not in ID_COLUMNS]
    if given:
        wrong = [c for c in given if c not in strings]
        if wrong or not 1 <= len(given) <= 2 or label in given:
            raise BuildError(
                "text_columns",
                "wants one or two string columns of the train split other than the label; "
                f"the train split has: {', '.join(strings) or 'none'}",
            )
        return tuple(given)
    if not strings:
        raise BuildError(
            "text_columns", f"no text column in the train split (a column of strings); columns: {columns_text(train)}"
        )
    pair = next((pair for pair in PAIRS if all(c in strings for c in pair)), None)
    if pair:
        return pair
    single = next((name for name in SINGLES if name in strings), None)
    if single:
        return (single,)
    sample = train.select(range(min(len(train), 1000)))
    return (max(strings, key=lambda c: sum(len(text or "") for text in sample[c])),)

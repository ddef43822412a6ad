"""Tags read from a dataset's rows for token classification: which columns hold a row's words and
its tags, the tags as strings whatever the column stores (names, `ClassLabel` ids, ids that
`label_names` names), every tag checked, converted to IOB2 and encoded as ids under `label`, a
wrong one named with the row (or the file line) it came from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tracker.plugin import BuildError
from xp_plugins.tasks import columns as guess
from xp_plugins.tasks.tag_schemes import OUTSIDE, scheme_of, split_tag, to_iob2, types_of

if TYPE_CHECKING:
    from datasets import Dataset

# A column a dataset plugin may add to say where each row came from ("train.txt:17"), for messages.
ROW_SOURCE = "row_source"

WORD_COLUMNS = ("tokens", "words")
TAG_COLUMNS = ("ner_tags", "tags", "labels", "ner", "tag")


def word_and_tag_columns(split: Dataset) -> tuple[str, str] | None:
    """The split's column of words and its column of tags, when it has both: a list of strings
    per row (a usual name first), and a list of `ClassLabel` names, or of strings or ids under a
    usual name. None for rows of another shape."""
    from datasets import ClassLabel, List
    from datasets import Sequence as SequenceFeature

    lists = {
        name: feature.feature
        for name, feature in split.features.items()
        if isinstance(feature, (List, SequenceFeature)) and hasattr(feature, "feature")
    }
    strings = [name for name, inner in lists.items() if getattr(inner, "dtype", None) in ("string", "large_string")]
    tags = [name for name, inner in lists.items() if isinstance(inner, ClassLabel)]
    tags += [name for name in TAG_COLUMNS if name in lists and name not in tags]
    words = [name for name in WORD_COLUMNS if name in strings] + [n for n in strings if n not in tags]
    if not words or not tags or words[0] == tags[0]:
        return None
    return words[0], tags[0]


def read_tags(
    splits: dict[str, Dataset], column: str, names_of_ids: Sequence[str] | None
) -> tuple[tuple[str, ...], str, dict[str, Dataset]]:
    """The IOB2 tag names (`O` first, then `B-` and `I-` of each entity type the training split
    has), the scheme the tags were written in, and the splits with their tags as ids under
    `label`. A validation or test split with a type training never saw is refused: no model could
    learn it."""
    tags = {key: _tag_strings(split, column, names_of_ids) for key, split in splits.items()}
    for key, sentences in tags.items():
        _check_tags(splits[key], key, sentences)
    scheme = scheme_of(sentence for sentences in tags.values() for sentence in sentences)
    if scheme == "IOB2":  # as read already: no I- opens an entity, no E- or S-
        converted = tags
    else:
        converted = {key: [to_iob2(sentence) for sentence in sentences] for key, sentences in tags.items()}
    types = sorted({t for sentence in converted["train"] for t in types_of(sentence)})
    if not types:
        raise BuildError("label_column", f'the training split\'s "{column}" tags name no entity (every tag is O)')
    for key in ("eval", "test"):
        if key in converted:
            _check_types_known(splits[key], key, converted[key], set(types))
    names = (OUTSIDE, *(f"{prefix}-{t}" for t in types for prefix in "BI"))
    ids = {name: i for i, name in enumerate(names)}
    encoded = {
        key: _with_labels(split, column, [[ids[tag] for tag in sentence] for sentence in converted[key]], names)
        for key, split in splits.items()
    }
    return names, scheme, encoded


def _tag_strings(split: Dataset, column: str, names_of_ids: Sequence[str] | None) -> list[list[str]]:
    """Every row's tags as strings: as written, or the names of `ClassLabel` or integer ids."""
    from datasets import ClassLabel, List
    from datasets import Sequence as SequenceFeature

    feature = split.features[column]
    inner = getattr(feature, "feature", None) if isinstance(feature, (SequenceFeature, List)) else None
    if inner is None:
        raise BuildError("label_column", f'"{column}" holds {feature}, not a list of tags per row')
    values = guess.column_values(split, column)
    if isinstance(inner, ClassLabel):
        if names_of_ids is not None:
            raise BuildError("label_names", f"the dataset names its tags already ({', '.join(inner.names)})")
        return [[inner.names[i] for i in row] for row in values]
    dtype = getattr(inner, "dtype", "")
    if "int" in dtype:
        if names_of_ids is None:
            raise BuildError("label_names", f'"{column}" holds tag ids: name them, e.g. ["O", "B-PER", "I-PER"]')
        try:
            return [[names_of_ids[i] for i in row] for row in values]
        except IndexError:
            raise BuildError("label_names", f'{len(names_of_ids)} names, but "{column}" has a larger id') from None
    if "string" not in dtype:
        raise BuildError("label_column", f'"{column}" holds lists of {dtype}; expected tag names or ids')
    return [list(row) for row in values]


def _where(split: Dataset, key: str, row: int) -> str:
    if ROW_SOURCE in split.column_names:
        return split[row][ROW_SOURCE]
    return f"row {row} of the {key} split"


def _check_tags(split: Dataset, key: str, sentences: list[list[str]]) -> None:
    """Each tag in a scheme xp reads: the distinct tags checked, a wrong one named with its first row."""
    for tag in sorted({tag for tags in sentences for tag in tags}):
        try:
            split_tag(tag)
        except ValueError as error:
            row = next(row for row, tags in enumerate(sentences) if tag in tags)
            raise BuildError("label_column", f"{_where(split, key, row)}: {error}") from None


def _check_types_known(split: Dataset, key: str, sentences: list[list[str]], known: set[str]) -> None:
    for row, tags in enumerate(sentences):
        unknown = sorted(types_of(tags) - known)
        if unknown:
            split_name = {"eval": "validation", "test": "test"}[key]
            raise BuildError(
                "label_column",
                f"{_where(split, key, row)}: the entity type {', '.join(unknown)} is in the {split_name} "
                f"split but never in the training split (types: {', '.join(sorted(known))}); no model "
                "can learn it: add training sentences with it, or remove it",
            )


def _with_labels(split: Dataset, column: str, ids: list[list[int]], names: Sequence[str]) -> Dataset:
    """The split with its tags as ids under `label`. The new rows are named by what made them
    (the rows, the tag column, the tag names): datasets would otherwise hash every id, seconds
    for CoNLL-2003."""
    from datasets import List, Value
    from datasets.fingerprint import Hasher

    fingerprint = Hasher.hash([split._fingerprint, "xp token labels", column, list(names)])
    split = split.remove_columns([c for c in (column, "label") if c in split.column_names])
    return split.add_column("label", ids, feature=List(Value("int64")), new_fingerprint=fingerprint)

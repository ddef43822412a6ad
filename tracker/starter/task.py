"""`xp init`, reading: the rows of a data folder, file or hub dataset, and the text and label
columns, splits and label names a first experiment on them should use."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The data formats the `hf` dataset plugin reads from files, by extension, as datasets' builders.
FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
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
# A hub-style split name for the validation rows, when a dataset names it otherwise.
EVAL_SPLITS = ("validation", "valid", "val", "dev")
HELD_OUT = ("train[:90%]", "train[90%:]")  # no validation split: the last tenth of train


class InitError(Exception):
    """Why no starter experiment can be written, in one line for the person who asked."""


@dataclass(frozen=True)
class Source:
    """The rows, as the [dataset] section will name them, and as the person named them."""

    shown: str
    path: str  # a builder ("csv", "json", "parquet") or a hub id
    name: str | None = None  # the hub config
    data_files: dict[str, str | list[str]] | None = None


@dataclass(frozen=True)
class Task:
    """What the data holds, and what a first experiment on it should use."""

    source: Source
    train_split: str
    eval_split: str
    test_split: str | None
    rows: dict[str, int]
    text_columns: tuple[str, ...]
    other_text: tuple[str, ...]  # string columns not chosen, to mention
    label_column: str
    label_names: tuple[str, ...] | None  # None: the labels are numbers (regression)
    test_labelled: bool
    notes: tuple[str, ...] = ()
    labels_are_ids: bool = False  # integers 0..n-1 without names: label_names can name them

    @property
    def text_summary(self) -> str:
        kind = "a sentence pair" if len(self.text_columns) == 2 else "one text"
        return f"{' + '.join(self.text_columns)} ({kind})"

    @property
    def rows_summary(self) -> str:
        held_out = "" if "validation" in self.rows else " (the last 10% held out to validate)"
        return ", ".join(f"{count} {split}" for split, count in self.rows.items()) + held_out

    @property
    def label_summary(self) -> str:
        if self.label_names is None:
            return f"{self.label_column} (numbers: regression)"
        shown = ", ".join(self.label_names[:6]) + (", ..." if len(self.label_names) > 6 else "")
        return f"{self.label_column}, {len(self.label_names)} classes ({shown})"


def experiment_name(source: str, config: str | None = None) -> str:
    """A name for the experiment and its file: the folder's (or file's stem), or the hub id's last part."""
    local = Path(source).expanduser()
    if local.is_file():
        name = local.stem
    elif local.exists():
        name = local.resolve().name
    else:
        name = source.rstrip("/").rsplit("/", 1)[-1] + (f"-{config}" if config else "")
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "experiment"


# --- reading the data ---------------------------------------------------------------------------


def inspect_data(
    source: str, config: str | None = None, text_columns: list[str] | None = None, label_column: str | None = None
) -> Task:
    """Read every split of `source` (a folder, a data file or a hub id) as the `hf` plugin will,
    and choose the splits, the text columns and the label column."""
    local = Path(source).expanduser()
    if local.exists():
        if config:
            raise InitError(
                f'--config names a config of a hub dataset, but "{source}" is a local '
                f"{'folder' if local.is_dir() else 'file'}"
            )
        found, splits = _read_local(source, local)
    elif _looks_like_hub_id(source):
        found, splits = _read_hub(source, config)
    else:
        raise InitError(
            f'no folder or file "{source}" here (resolved to {local.resolve()}), and it is not a '
            'hub dataset id ("name" or "org/name") either'
        )
    return _choose(found, splits, text_columns, label_column)


def _looks_like_hub_id(source: str) -> bool:
    return not source.startswith(("/", "./", "../", "~")) and re.fullmatch(r"[\w.-]+(/[\w.-]+)?", source) is not None


def _shown_path(path: Path) -> str:
    """How a data file is written in the experiment: relative to the working directory, where xp
    reads it from, when it is inside it; else absolute."""
    absolute = Path(os.path.abspath(path))
    cwd = Path.cwd()
    return (absolute.relative_to(cwd) if absolute.is_relative_to(cwd) else absolute).as_posix()


def _split_files(local: Path) -> dict[str, list[Path]]:
    """The data files of each split, named as datasets names them in a hub-layout folder
    (train.csv, dev.csv, data/validation-00000-of-00001.parquet, ...), or the file itself as train."""
    if local.is_file():
        return {"train": [local]}
    from datasets.data_files import DataFilesDict, EmptyDatasetError, get_data_patterns

    try:
        patterns = get_data_patterns(str(local))
    except EmptyDatasetError:
        raise InitError(
            f'no data files in "{local}" (expected CSV, JSON Lines or Parquet files named '
            "by split: train.csv, validation.csv, test.csv)"
        ) from None
    resolved = DataFilesDict.from_patterns(patterns, base_path=str(local))
    return {str(split): sorted(Path(file) for file in files) for split, files in resolved.items()}


def _read_local(source: str, local: Path) -> tuple[Source, dict[str, Any]]:
    per_split = {
        split: [file for file in files if file.suffix.lower() in FORMATS]
        for split, files in _split_files(local).items()
    }
    per_split = {split: files for split, files in per_split.items() if files}
    if not per_split:
        raise InitError(
            f'no CSV, JSON Lines or Parquet file in "{source}" (the formats xp reads: {", ".join(sorted(FORMATS))})'
        )
    formats = {FORMATS[file.suffix.lower()] for files in per_split.values() for file in files}
    if len(formats) > 1:
        raise InitError(
            f'"{source}" mixes {" and ".join(sorted(formats))} files; keep one format '
            "(one experiment reads its files with one builder)"
        )
    [builder] = formats
    data_files = {split: [_shown_path(file) for file in files] for split, files in per_split.items()}
    written = {split: files[0] if len(files) == 1 else files for split, files in data_files.items()}
    found = Source(shown=source, path=builder, data_files=written)

    import datasets

    splits = {}
    with _datasets_quiet():
        for split, files in data_files.items():
            try:  # one builder per split, as the plugin loads them: a test file may lack the labels
                splits[split] = datasets.load_dataset(builder, data_files={split: files}, split=split)
            except datasets.exceptions.DatasetGenerationError as error:
                cause = error.__cause__ or error
                raise InitError(
                    f"cannot read {', '.join(files)} as {builder}: {type(cause).__name__}: "
                    f"{str(cause).splitlines()[0] if str(cause) else ''}"
                ) from None
    return found, splits


def _read_hub(source: str, config: str | None) -> tuple[Source, dict[str, Any]]:
    """Every split of a hub dataset: from the hub, or from the local cache when offline."""
    import datasets

    # Also what a mistyped local path reads as, so the message says both.
    cannot = f'no folder or file "{source}" here, and it cannot be read as a hub dataset' + (
        f' (config "{config}")' if config else ""
    )
    try:
        with _datasets_quiet():
            loaded = datasets.load_dataset(source, name=config)
    except ConnectionError as error:
        raise InitError(
            f"{cannot}: {error}. xp init reads the rows to choose the text and label columns: "
            "run it where the hub is reachable (once is enough, the rows are cached), or on a "
            "folder of the data files"
        ) from None
    except (datasets.exceptions.DatasetNotFoundError, FileNotFoundError) as error:
        raise InitError(f"{cannot}: {str(error).splitlines()[0]}") from None
    except ValueError as error:  # an unknown or missing config: datasets lists the available ones
        raise InitError(f"{cannot}: {str(error).splitlines()[0]} (choose one with --config)") from None
    read = next(iter(loaded.values())).info.config_name  # offline without --config: the cached one
    return Source(shown=source, path=source, name=config or (read if read != "default" else None)), dict(loaded)


@contextmanager
def _datasets_quiet() -> Iterator[None]:
    """No "Generating train split" bars or cache notes while looking at the data."""
    from datasets.utils import logging as datasets_logging

    level, bars = datasets_logging.get_verbosity(), datasets_logging.is_progress_bar_enabled()
    datasets_logging.set_verbosity_error()
    datasets_logging.disable_progress_bar()
    try:
        yield
    finally:
        datasets_logging.set_verbosity(level)
        if bars:
            datasets_logging.enable_progress_bar()


# --- choosing -----------------------------------------------------------------------------------


def _choose(found: Source, splits: dict[str, Any], text_columns: list[str] | None, label_column: str | None) -> Task:
    if "train" not in splits:
        raise InitError(
            f'"{found.shown}" has no train split (it has: {", ".join(splits)}); '
            "name the training file train.csv (or .jsonl, .parquet)"
        )
    train = splits["train"]
    if len(train) == 0:
        raise InitError(f'the train split of "{found.shown}" has no rows')
    notes = []
    eval_name = next((name for name in EVAL_SPLITS if name in splits), None) or next(
        (name for name in splits if name.startswith("validation")), None
    )
    test_name = "test" if "test" in splits else next((name for name in splits if name.startswith("test")), None)
    train_split, eval_split = ("train", eval_name) if eval_name else HELD_OUT
    if not eval_name:
        notes.append(
            f"no validation split: the last 10% of train is held out ({HELD_OUT[1]}); slices do not "
            "shuffle, so shuffle a file sorted by label"
        )

    label = _label_column(found, train, label_column)
    text = _text_columns(found, train, label, text_columns)
    if test_name and any(column not in splits[test_name].column_names for column in text):
        notes.append(f"the {test_name} split lacks column(s) {', '.join(text)}: left out")
        test_name = None
    if eval_name:  # the validation rows are scored: they need what the training rows have
        missing = [c for c in (*text, label) if c not in splits[eval_name].column_names]
        if missing:
            raise InitError(
                f'the {eval_name} split of "{found.shown}" has no column(s) {", ".join(missing)}; '
                f"it has: {', '.join(splits[eval_name].column_names)}"
            )
    used = [name for name in (eval_name, test_name) if name]

    names = _label_names(found, [splits[n] for n in ("train", *used)], label)
    ids = _unnamed_ids(train.features[label], names)
    test_labelled = (
        test_name is not None
        and label in splits[test_name].column_names
        and any(value not in (-1, None) for value in splits[test_name].unique(label))
    )
    other = tuple(c for c in _string_columns(train) if c not in text and c != label and c not in ID_COLUMNS)
    rows = {
        "train": len(train),
        **({"validation": len(splits[eval_name])} if eval_name else {}),
        **({"test": len(splits[test_name])} if test_name else {}),
    }
    return Task(
        source=found,
        train_split=train_split,
        eval_split=eval_split,
        test_split=test_name,
        rows=rows,
        text_columns=text,
        other_text=other,
        label_column=label,
        label_names=names,
        test_labelled=test_labelled,
        notes=tuple(notes),
        labels_are_ids=ids,
    )


def _string_columns(split: Any) -> list[str]:
    return [
        name
        for name, feature in split.features.items()
        if getattr(feature, "dtype", None) in ("string", "large_string")
    ]


def _columns_text(split: Any) -> str:
    return ", ".join(
        f"{name} ({getattr(feature, 'dtype', type(feature).__name__)})" for name, feature in split.features.items()
    )


def _label_column(found: Source, train: Any, given: str | None) -> str:
    """The named column; else the ClassLabel one; else the first with a usual label name."""
    from datasets import ClassLabel

    if given:
        if given not in train.column_names:
            raise InitError(
                f'--label-column: the train split of "{found.shown}" has no column "{given}"; '
                f"it has: {_columns_text(train)}"
            )
        return given
    class_labels = [name for name, feature in train.features.items() if isinstance(feature, ClassLabel)]
    named = [name for name in LABELS if name in train.column_names]
    if class_labels or named:
        return (class_labels or named)[0]
    raise InitError(
        f'no label column in the train split of "{found.shown}" (looked for a ClassLabel or a '
        f"column named {', '.join(LABELS)}); name it with --label-column. Columns: {_columns_text(train)}"
    )


def _text_columns(found: Source, train: Any, label: str, given: list[str] | None) -> tuple[str, ...]:
    """A known sentence pair; else a known single-text name; else the one string column, or the
    string column with the longest texts."""
    strings = [c for c in _string_columns(train) if c != label and c not in ID_COLUMNS]
    if given:
        wrong = [c for c in given if c not in strings]
        if wrong or not 1 <= len(given) <= 2 or label in given:
            raise InitError(
                f"--text-columns wants one or two string columns of the train split other than the "
                f'label; "{found.shown}" has: {", ".join(strings) or "none"}'
            )
        return tuple(given)
    if not strings:
        raise InitError(
            f'no text column in the train split of "{found.shown}" (a column of strings); '
            f"columns: {_columns_text(train)}"
        )
    pair = next((pair for pair in PAIRS if all(c in strings for c in pair)), None)
    if pair:
        return pair
    single = next((name for name in SINGLES if name in strings), None)
    if single:
        return (single,)
    sample = train.select(range(min(len(train), 1000)))
    return (max(strings, key=lambda c: sum(len(text or "") for text in sample[c])),)


def _unnamed_ids(feature: Any, names: tuple[str, ...] | None) -> bool:
    """Integer class ids 0..n-1 that the data does not name (no ClassLabel)."""
    from datasets import ClassLabel

    dtype = getattr(feature, "dtype", None) or ""
    return (
        names is not None
        and not isinstance(feature, ClassLabel)
        and "int" in dtype
        and names == tuple(str(i) for i in range(len(names)))
    )


def _label_names(found: Source, splits: list[Any], column: str) -> tuple[str, ...] | None:
    """The class names as the `hf` plugin encodes them, or None for numbers (regression)."""
    from datasets import ClassLabel

    feature = splits[0].features[column]
    if isinstance(feature, ClassLabel):
        names = tuple(feature.names)
    else:
        dtype = getattr(feature, "dtype", None) or ""
        if dtype.startswith("float"):
            return None
        if not ("string" in dtype or dtype == "bool" or "int" in dtype):
            raise InitError(
                f'the label column "{column}" of "{found.shown}" holds {feature}; expected class '
                "names, integers or floats"
            )
        values = {v for split in splits if column in split.column_names for v in split.unique(column)}
        names = tuple(str(v) for v in sorted(values - {None, -1, ""}))
    if len(names) < 2:
        raise InitError(
            f'the label column "{column}" of "{found.shown}" has {len(names)} class(es) '
            f"({', '.join(names) or 'none'}); classification needs at least two"
        )
    return names

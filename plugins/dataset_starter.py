"""The `hf` dataset plugin's part of `xp init`: read a folder of data files, one data file or a hub
dataset as the plugin will read it, choose the training, validation and test splits, ask the task
which columns hold its inputs and targets, and write the [dataset] section that reads them."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tracker.plugin import BuildError, Row, Starter, Task
from xp_plugins.tasks.tag_columns import word_and_tag_columns
from xp_plugins.tasks.token_classification import TokenClassification

# The data formats the `hf` dataset plugin reads from files, by extension, as datasets' builders.
FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
# A hub-style split name for the validation rows, when a dataset names it otherwise.
EVAL_SPLITS = ("validation", "valid", "val", "dev")
HELD_OUT = ("train[:90%]", "train[90%:]")  # no validation split: the last tenth of train
INLINE_WIDTH = 100  # data_files longer than this get a [dataset.data_files] table of their own


def starter(source: str, config: str | None, task: Task, text_columns: Any, label_column: Any) -> Starter | None:
    """The [dataset] section for the rows at `source`; None when it is neither a local path nor
    a hub id. A BuildError (key: the option to fix, or None) for rows it cannot use."""
    local = Path(source).expanduser()
    if local.exists():
        if config:
            kind = "folder" if local.is_dir() else "file"
            raise BuildError("config", f'names a config of a hub dataset, but "{source}" is a local {kind}')
        rows, splits = _read_local(source, local)
    elif _looks_like_hub_id(source):
        rows, splits = _read_hub(source, config)
    else:
        return None
    return _choose(source, rows, splits, task, text_columns, label_column)


def _looks_like_hub_id(source: str) -> bool:
    return not source.startswith(("/", "./", "../", "~")) and re.fullmatch(r"[\w.-]+(/[\w.-]+)?", source) is not None


def shown_path(path: Path) -> str:
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
        raise BuildError(
            None,
            f'no data files in "{local}" (expected CSV, JSON Lines or Parquet files named '
            "by split: train.csv, validation.csv, test.csv)",
        ) from None
    resolved = DataFilesDict.from_patterns(patterns, base_path=str(local))
    return {str(split): sorted(Path(file) for file in files) for split, files in resolved.items()}


def _read_local(source: str, local: Path) -> tuple[list[Row], dict[str, Any]]:
    per_split = {
        split: [file for file in files if file.suffix.lower() in FORMATS]
        for split, files in _split_files(local).items()
    }
    per_split = {split: files for split, files in per_split.items() if files}
    if not per_split:
        raise BuildError(
            None,
            f'no CSV, JSON Lines or Parquet file in "{source}" (the formats xp reads: {", ".join(sorted(FORMATS))})',
        )
    formats = {FORMATS[file.suffix.lower()] for files in per_split.values() for file in files}
    if len(formats) > 1:
        raise BuildError(
            None,
            f'"{source}" mixes {" and ".join(sorted(formats))} files; keep one format '
            "(one experiment reads its files with one builder)",
        )
    [builder] = formats
    data_files = {split: [shown_path(file) for file in files] for split, files in per_split.items()}
    written = {split: files[0] if len(files) == 1 else files for split, files in data_files.items()}

    import datasets

    splits = {}
    with _datasets_quiet():
        for split, files in data_files.items():
            try:  # one builder per split, as the plugin loads them: a test file may lack the labels
                splits[split] = datasets.load_dataset(builder, data_files={split: files}, split=split)
            except datasets.exceptions.DatasetGenerationError as error:
                cause = error.__cause__ or error
                raise BuildError(
                    None,
                    f"cannot read {', '.join(files)} as {builder}: {type(cause).__name__}: "
                    f"{str(cause).splitlines()[0] if str(cause) else ''}",
                ) from None
    rows: list[Row] = [("path", builder, "the format of data_files; or a hub id"), ("data_files", written, None)]
    return rows, splits


def _read_hub(source: str, config: str | None) -> tuple[list[Row], dict[str, Any]]:
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
        raise BuildError(
            None,
            f"{cannot}: {error}. xp init reads the rows to choose the text and label columns: "
            "run it where the hub is reachable (once is enough, the rows are cached), or on a "
            "folder of the data files",
        ) from None
    except (datasets.exceptions.DatasetNotFoundError, FileNotFoundError) as error:
        raise BuildError(None, f"{cannot}: {str(error).splitlines()[0]}") from None
    except ValueError as error:  # an unknown or missing config: datasets lists the available ones
        raise BuildError(None, f"{cannot}: {str(error).splitlines()[0]} (choose one with --config)") from None
    read = next(iter(loaded.values())).info.config_name  # offline without --config: the cached one
    name = config or (read if read != "default" else None)
    rows: list[Row] = [
        ("path", source, "a hub dataset id"),
        ("name", name, "its config") if name else ("#", 'name = "..."', "its config, if any"),
        ("#", 'revision = "..."', "a commit, to pin the rows"),
    ]
    return rows, dict(loaded)


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


def _choose(
    source: str, rows: list[Row], splits: dict[str, Any], task: Task, text_columns: Any, label_column: Any
) -> Starter:
    if "train" not in splits:
        raise BuildError(
            None,
            f'"{source}" has no train split (it has: {", ".join(splits)}); '
            "name the training file train.csv (or .jsonl, .parquet)",
        )
    if len(splits["train"]) == 0:
        raise BuildError(None, f'the train split of "{source}" has no rows')
    notes = []
    eval_name = next((name for name in EVAL_SPLITS if name in splits), None) or next(
        (name for name in splits if name.startswith("validation")), None
    )
    test_name = "test" if "test" in splits else next((name for name in splits if name.startswith("test")), None)
    if not eval_name:
        notes.append(
            f"no validation split: the last 10% of train is held out ({HELD_OUT[1]}); slices do not "
            "shuffle, so shuffle a file sorted by label"
        )
    by_key = {"train": splits["train"], "eval": splits[eval_name] if eval_name else None}
    if test_name:
        by_key["test"] = splits[test_name]
    # Rows of a list of words and a list of tags are for token classification, whatever the default task.
    tagging = isinstance(task, TokenClassification) or word_and_tag_columns(splits["train"]) is not None
    proposing = task if isinstance(task, TokenClassification) or not tagging else TokenClassification()
    proposal = proposing.propose(by_key, text_columns, label_column)
    if test_name and any(column not in splits[test_name].column_names for column in proposal.text_columns):
        notes.append(f"the {test_name} split lacks column(s) {', '.join(proposal.text_columns)}: left out")
        test_name = None
    if eval_name:  # the validation rows are scored: they need what the training rows have
        missing = [c for c in proposal.columns if c not in splits[eval_name].column_names]
        if missing:
            raise BuildError(
                None,
                f'the {eval_name} split of "{source}" has no column(s) {", ".join(missing)}; '
                f"it has: {', '.join(splits[eval_name].column_names)}",
            )

    rows, tables = _data_files_table(rows)
    if not eval_name:
        rows += [
            ("train_split", HELD_OUT[0], "no validation file: train on the first 90%..."),
            ("eval_split", HELD_OUT[1], "...and validate on the last 10%"),
        ]
    elif eval_name != "validation":
        rows.append(("eval_split", eval_name, None))
    rows += proposal.dataset
    if test_name:
        scored = "labelled: scored too" if proposal.test_labelled else "hidden labels: predictions only"
        rows.append(("test_split", test_name, scored))
    rows.append(("#", "max_rows = { train = 500, eval = 100 }", "a seeded sample, for a quick first run"))
    counted = {"train": len(splits["train"])}
    if eval_name:
        counted["validation"] = len(splits[eval_name])
    if test_name:
        counted["test"] = len(splits[test_name])
    held_out = "" if eval_name else " (the last 10% held out to validate)"
    return Starter(
        use="hf",
        about="The rows, read by datasets.load_dataset; which columns hold the text and the targets.",
        rows=tuple(rows),
        tables=tables,
        rows_summary=", ".join(f"{count} {split}" for split, count in counted.items()) + held_out,
        proposal=proposal,
        notes=tuple(notes),
        task="token_classification" if tagging else None,
    )


def _data_files_table(rows: list[Row]) -> tuple[list[Row], dict[str, tuple[str, tuple[Row, ...]]]]:
    """`data_files` inline when it is short, else as a [dataset.data_files] table of its own."""
    import tomlkit

    kept, tables = [], {}
    for key, value, comment in rows:
        inline = tomlkit.inline_table()
        inline.update(value if key == "data_files" else {})
        if key == "data_files" and len(f"data_files = {inline.as_string()}") > INLINE_WIDTH:
            listed: tuple[Row, ...] = tuple((split, files, None) for split, files in value.items())
            tables["data_files"] = ("The files of each split: one, or a list.", listed)
        else:
            kept.append((key, value, comment))
    return kept, tables

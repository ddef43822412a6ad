"""Dataset plugins: load splits with `datasets.load_dataset`, as the HF course does; the task reads their targets."""

from __future__ import annotations

import os
import random
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tracker.plugin import (
    AfterValidator,
    Annotated,
    BuildError,
    DataSource,
    Field,
    Name,
    PositiveInt,
    Task,
    TaskData,
    hookimpl,
    rules,
    starter,
    why_not_loaded,
)
from xp_plugins import dataset_starter
from xp_plugins.tasks.labels import rows_text

if TYPE_CHECKING:
    from datasets import Dataset, DatasetDict

SPLIT_KEYS = {"train": "train_split", "eval": "eval_split", "test": "test_split"}
# A row id column kept, under its own name, in prediction files; the first one present wins.
ID_COLUMNS = ("id", "idx", "guid", "uid", "row_id", "example_id")
_LOCAL_PREFIXES = ("/", "./", "../", "~")
# `path` values that name one of datasets' packaged builders: their files come from data_files.
PACKAGED_BUILDERS = ("csv", "json", "parquet", "text", "arrow", "pandas", "webdataset", "imagefolder", "audiofolder")
# Every dataset plugin's `max_rows`, which `task_data` samples.
MaxRows = Annotated[
    dict[Literal["train", "eval", "test"], PositiveInt] | None,
    Field(description="a seeded random sample of each split's rows (of sentences, for CoNLL files), for quick runs"),
]


def _local_path(path: str) -> str:
    """A path that looks local (or exists) must be an existing folder of data, never a script."""
    local = Path(path).expanduser()
    if path.startswith(_LOCAL_PREFIXES) or local.exists():
        if not local.exists():
            raise ValueError(f'local dataset folder "{path}" does not exist (resolved to {local.resolve()})')
        if local.suffix == ".py":
            raise ValueError(
                f'"{path}" is a Python loading script; xp loads data, never code from a dataset. '
                'Point at the data files instead (path = "csv" with data_files, or a folder)'
            )
    return path


def _data_files_exist(options):
    """Local data files must exist (globs and URLs are left to datasets)."""
    files = options["data_files"]
    if files is None:
        return
    listed = (
        [files]
        if isinstance(files, str)
        else files
        if isinstance(files, list)
        else [f for value in files.values() for f in ([value] if isinstance(value, str) else value)]
    )
    path = options["path"]
    if path in PACKAGED_BUILDERS:
        base = Path(".")
    elif Path(path).expanduser().is_dir():  # datasets reads them relative to the folder
        base = Path(path).expanduser()
    else:  # files inside a hub repository: only the hub can tell
        return
    base = base / (options["data_dir"] or "")
    for file in listed:
        if any(c in file for c in "*?[") or "://" in file:
            continue
        if not (base / Path(file).expanduser()).exists():
            yield "data_files", f'"{file}" does not exist (looked for {(base / file).resolve()})'


def _as_columns(label_column: str | list[str]) -> list[str]:
    return [label_column] if isinstance(label_column, str) else list(label_column)


def _distinct_columns(options):
    columns, labels = options["text_columns"], _as_columns(options["label_column"])
    if len(set(columns)) < len(columns):
        yield "text_columns", f"names a column twice: {columns}"
    if len(set(labels)) < len(labels):
        yield "label_column", f"names a column twice: {labels}"
    for label in labels:
        if label in columns:
            yield "label_column", f'"{label}" is also a text column'
    names = options["label_names"] or []
    if len(set(names)) < len(names):
        yield "label_names", f"names a class twice: {names}"


@rules(_data_files_exist, _distinct_columns)
@starter(dataset_starter.starter)
def hf(
    task: Task,
    seed: int,
    *,
    path: Annotated[
        Name,
        AfterValidator(_local_path),
        Field(
            description='a hub id, a local folder in hub layout, or a packaged builder ("csv", "json", "parquet") '
            "with data_files"
        ),
    ],
    name: Annotated[Name | None, Field(description='the hub config; a local folder\'s is "default"')] = None,
    data_files: Annotated[
        str | list[str] | dict[str, str | list[str]] | None,
        Field(description='files per split, e.g. {train = "train.csv", validation = "dev.csv"}'),
    ] = None,
    data_dir: str | None = None,
    revision: Annotated[Name | None, Field(description="a hub branch, tag or commit")] = None,
    cache_dir: str | None = None,
    train_split: Annotated[Name, Field(description='a split name, maybe sliced: "train[:90%]"')] = "train",
    eval_split: Name = "validation",
    test_split: Annotated[Name | None, Field(description="optional; hidden labels (-1) get predictions only")] = None,
    text_columns: Annotated[
        list[Name], Field(min_length=1, max_length=2, description="one text column, or a sentence pair")
    ],
    label_column: Annotated[
        Name | list[Name],
        Field(
            min_length=1,
            description="the column of targets the task reads; several for a task that reads one column "
            'per label (["toxic", "obscene"])',
        ),
    ] = "label",
    label_names: Annotated[
        list[Name] | None,
        Field(
            min_length=2,
            description='names of the class ids 0, 1, ... when the label column holds ids: ["different", "paraphrase"]',
        ),
    ] = None,
    max_rows: MaxRows = None,
) -> TaskData:
    """Any dataset `datasets.load_dataset` reads: hub id + name, local folder, or csv/json/parquet files.

    `path` is a hub id ("nyu-mll/glue" with name = "mrpc"), a local folder in hub layout, or a
    packaged builder ("csv", "json", "parquet", "text") with `data_files`. Splits may be sliced
    ("train[:90%]"). `max_rows` = {train = 500, eval = 100} keeps a random sample drawn with the
    experiment seed. Labels become an encoded `label` column: ClassLabel names, sorted distinct
    strings or integers (named by `label_names` when given), or regression for floats.
    """
    local = Path(path).expanduser()
    load_args = {
        "path": str(local.resolve()) if local.exists() else path,
        "name": name,
        "data_files": data_files,
        "data_dir": data_dir,
        "revision": revision,
        "cache_dir": cache_dir,
    }
    label_columns = _as_columns(label_column)
    available = _load(**load_args)
    requested = {"train": train_split, "eval": eval_split, "test": test_split}
    wanted = {key: spec for key, spec in requested.items() if spec is not None}
    splits = {key: _split(load_args, available, spec, SPLIT_KEYS[key]) for key, spec in wanted.items()}

    for key, split in splits.items():
        missing = [c for c in text_columns if c not in split.column_names]
        if missing:
            raise BuildError(
                "text_columns",
                f"{wanted[key]} split has no column(s) {', '.join(missing)}; "
                f"available: {', '.join(split.column_names)}",
            )
        missing = [column for column in label_columns if column not in split.column_names]
        if missing and key != "test":  # a test split without targets is predicted, not scored
            raise BuildError(
                "label_column",
                f"{wanted[key]} split has no column(s) {', '.join(missing)}; "
                f"available: {', '.join(split.column_names)}",
            )

    return task_data(
        task,
        splits,
        split_names=wanted,
        text_columns=text_columns,
        label_columns=label_columns,
        label_names=label_names,
        max_rows=max_rows,
        seed=seed,
        source=lambda sampled: _data_source(load_args, {key: wanted[key] for key in splits}, sampled, seed),
    )


def task_data(
    task: Task,
    splits: dict[str, Dataset],
    *,
    split_names: Mapping[str, str],
    text_columns: Sequence[str],
    label_columns: Sequence[str],
    label_names: Sequence[str] | None,
    max_rows: Mapping[Any, int] | None,
    seed: int,
    source: Callable[[dict[str, int]], DataSource | None],
) -> TaskData:
    """What every dataset plugin does once its splits are loaded (under "train", "eval", maybe
    "test"; `split_names` names them for messages): the task reads the targets, `max_rows`
    samples each split with the seed, the rows used are checked. `source` says where the rows
    came from, given the rows each sampled split kept."""
    task, splits = task.read_targets(splits, label_columns, label_names, text_columns=text_columns)
    test_has_labels = "test" in splits and task.is_labelled(splits["test"])

    # Sample after the label names are known, so a rare class cannot vanish from the names.
    sampled: dict[str, int] = {key: n for key, n in (max_rows or {}).items() if key in splits and n < len(splits[key])}
    for key, n in sampled.items():
        rows = sorted(random.Random(seed).sample(range(len(splits[key])), n))
        splits[key] = splits[key].select(rows)

    # Checked on the rows that will be used, after sampling.
    for key in ("train", "eval"):
        task.check_targets(splits[key], split_names[key], label_columns)
    for key, split in splits.items():
        _check_every_row_has_text(split, split_names[key], text_columns)
    return TaskData(
        splits=splits,
        text_columns=tuple(text_columns),
        task=task,
        source=source(sampled),
        test_has_labels=test_has_labels,
        ids={key: _row_ids(split) for key, split in splits.items()},
        id_column=_id_column(splits),
    )


def _load(**load_args: Any) -> DatasetDict:
    """Every split, with datasets' errors turned into BuildErrors that say which key to fix."""
    import datasets

    path, files = load_args["path"], load_args["data_files"]
    try:
        if isinstance(files, dict) and path in PACKAGED_BUILDERS:
            # One builder per split: a test file may lack the label column (or carry an id column)
            # that the training file has, and one builder casts every file to one schema.
            return datasets.DatasetDict(
                {
                    split: datasets.load_dataset(**{**load_args, "data_files": {split: named}}, split=split)
                    for split, named in files.items()
                }
            )
        return datasets.load_dataset(**load_args)
    except ConnectionError as error:  # datasets raises the builtin one, offline or not
        raise BuildError(
            "path",
            f'cannot load "{path}" from the Hugging Face hub: {why_not_loaded(path, error)}. '
            'Point at local files instead: path = "a local folder" in hub layout, or '
            'path = "csv" with data_files = {train = "train.csv", validation = "dev.csv"}',
        ) from None
    except datasets.exceptions.DatasetNotFoundError as error:
        raise BuildError("path", str(error)) from None
    except FileNotFoundError as error:  # missing data files, or a path that is neither folder nor hub id
        key = "data_files" if load_args["data_files"] else "path"
        raise BuildError(key, str(error)) from None
    except ValueError as error:
        if "config" in str(error).lower():  # an unknown or missing config `name`
            raise BuildError("name", str(error)) from None
        raise
    except datasets.exceptions.DatasetGenerationError as error:  # a file datasets cannot parse
        cause = error.__cause__ or error
        raise BuildError(
            "data_files" if files else "path",
            f"cannot read the data: {type(cause).__name__}: {str(cause).splitlines()[0]}",
        ) from None


def _split(load_args: dict[str, Any], available: DatasetDict, spec: str, key: str) -> Dataset:
    base = spec.split("[", 1)[0]
    if base not in available:
        raise BuildError(
            key,
            f'no split "{base}"; available: {", ".join(available)} '
            '(a split can be sliced, e.g. "train[:90%]" and "train[90%:]")',
        )
    if "[" not in spec:
        return available[base]
    import datasets  # a sliced split ("train[:90%]") reads the prepared cache again, cheaply

    try:
        return datasets.load_dataset(**load_args, split=spec)
    except ValueError as error:
        raise BuildError(key, f'bad split slice "{spec}": {error}') from None


def _check_every_row_has_text(split: Dataset, name: str, columns: Sequence[str]) -> None:
    """A row whose text is missing (an empty CSV cell reads as null) would stop tokenization."""
    for column in columns:
        if split.data.column(column).null_count == 0:  # Arrow counts nulls without reading the rows
            continue
        rows = [row for row, text in enumerate(split[column]) if not isinstance(text, str)]
        if rows:
            raise BuildError(
                "text_columns",
                f'{len(rows)} row(s) of the {name} split have no "{column}" text '
                f"({rows_text(rows)}); fill or drop them",
            )


def _id_column(splits: dict[str, Dataset]) -> str:
    """The name the predictions file gives row ids: the test split's own id column, if it has one."""
    columns = splits.get("test", splits["train"]).column_names
    return next((column for column in ID_COLUMNS if column in columns), "id")


def _row_ids(split: Dataset) -> list[Any] | range:
    for column in ID_COLUMNS:
        if column in split.column_names:
            return list(split[column])
    return range(len(split))


def _data_source(load_args: dict[str, Any], splits: dict[str, str], sampled: dict[str, int], seed: int) -> DataSource:
    """Where the rows came from, in terms that read them again from any working directory:
    absolute local paths, or the hub id with the config and commit datasets read."""
    path, name, revision = load_args["path"], load_args["name"], load_args["revision"]
    files, data_dir = load_args["data_files"], load_args["data_dir"]
    if path in PACKAGED_BUILDERS:  # datasets reads the files from the working directory, or data_dir
        base = Path(data_dir or ".").expanduser().resolve()
        data_dir = str(base) if data_dir else None
        files = _files_per_split(files, base)
    elif Path(path).is_absolute():  # a local folder (already resolved); files are relative to it
        files = _files_per_split(files, Path(path) / (data_dir or ""))
    else:
        name, revision = _hub_version(load_args)
        files = _files_per_split(files, None)
    return DataSource(
        path=path,
        name=name,
        revision=revision,
        data_files=files,
        data_dir=data_dir,
        splits=splits,
        sampled=sampled,
        seed=seed if sampled else None,
    )


def _files_per_split(files: Any, base: Path | None) -> dict[str, tuple[str, ...]] | None:
    """`data_files` as datasets reads them (a file or a list is the "train" split), local files
    made absolute against `base`; URLs, and files inside a hub repository (no base), as given."""
    if files is None:
        return None
    per_split = files if isinstance(files, dict) else {"train": files}

    def absolute(file: str) -> str:
        return file if base is None or "://" in file else os.path.normpath(base / Path(file).expanduser())

    return {
        split: tuple(absolute(f) for f in ([named] if isinstance(named, str) else named))
        for split, named in per_split.items()
    }


def _hub_version(load_args: dict[str, Any]) -> tuple[str | None, str | None]:
    """The config and commit of a hub dataset as datasets resolved them (from the hub, or from
    its cache when offline); the configured ones when it cannot say."""
    import datasets

    try:
        builder = datasets.load_dataset_builder(**load_args)
    except (ConnectionError, OSError, ValueError):  # the rows are loaded already: say what is known
        return load_args["name"], load_args["revision"]
    # A hub dataset's builder hash is the commit it read; a branch or tag name is pinned by it.
    commit = builder.hash if re.fullmatch(r"[0-9a-f]{40}", str(builder.hash)) else load_args["revision"]
    return builder.config.name, commit


@hookimpl
def xp_register_datasets(register):
    from xp_plugins.dataset_conll import conll  # they build on task_data, above
    from xp_plugins.dataset_squad import squad

    register("hf", hf)
    register("conll", conll)
    register("squad", squad)

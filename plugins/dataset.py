"""Dataset plugins: load a text-classification task with `datasets.load_dataset`, as the HF course does."""
from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracker.components import LabelSpec, TaskData
from tracker.errors import BuildError
from tracker.hookspecs import hookimpl

if TYPE_CHECKING:
    from datasets import Dataset, DatasetDict

SPLIT_KEYS = {"train": "train_split", "eval": "eval_split", "test": "test_split"}
ID_COLUMNS = ("idx", "id")  # a row id column kept for prediction files, first match wins
HIDDEN_LABEL = -1  # how GLUE marks the labels of its test splits
_LOCAL_PREFIXES = ("/", "./", "../", "~")


def hf(
    seed: int,
    *,
    path: str,
    name: str | None = None,
    data_files: str | list[str] | dict[str, str | list[str]] | None = None,
    data_dir: str | None = None,
    revision: str | None = None,
    cache_dir: str | None = None,
    train_split: str = "train",
    eval_split: str = "validation",
    test_split: str | None = None,
    text_columns: list[str],
    label_column: str = "label",
    max_rows: dict[str, int] | None = None,
) -> TaskData:
    """Any dataset `datasets.load_dataset` reads: hub id + name, local folder, or csv/json/parquet files.

    `path` is a hub id ("nyu-mll/glue" with name = "mrpc"), a local folder in hub layout, or a
    packaged builder ("csv", "json", "parquet", "text") with `data_files`. Splits may be sliced
    ("train[:90%]"). `max_rows` = {train = 500, eval = 100} keeps a random sample drawn with the
    experiment seed. Labels become an encoded `label` column: ClassLabel names, sorted distinct
    strings or integers, or regression for floats.
    """
    if not 1 <= len(text_columns) <= 2:
        raise BuildError("text_columns", f"give one or two text columns, got {len(text_columns)}")
    unknown = sorted(set(max_rows or {}) - set(SPLIT_KEYS))
    if unknown:
        raise BuildError("max_rows", f"unknown split key(s) {', '.join(unknown)}; use train, eval, test")
    if any(n < 1 for n in (max_rows or {}).values()):
        raise BuildError("max_rows", f"row counts must be at least 1, got {max_rows}")

    load_args = dict(path=_checked_path(path), name=name, data_files=data_files, data_dir=data_dir,
                     revision=revision, cache_dir=cache_dir)
    available = _load(**load_args)
    wanted = {"train": train_split, "eval": eval_split, "test": test_split}
    splits = {key: _split(load_args, available, spec, SPLIT_KEYS[key])
              for key, spec in wanted.items() if spec is not None}

    for key, split in splits.items():
        missing = [c for c in text_columns if c not in split.column_names]
        if missing:
            raise BuildError("text_columns", f"{wanted[key]} split has no column(s) {', '.join(missing)}; "
                                             f"available: {', '.join(split.column_names)}")
        if label_column not in split.column_names and key != "test":
            raise BuildError("label_column", f'{wanted[key]} split has no column "{label_column}"; '
                                             f"available: {', '.join(split.column_names)}")

    labels, splits = _encode_labels(splits, label_column)
    test_has_labels = "test" in splits and any(v != HIDDEN_LABEL for v in splits["test"].unique("label"))

    # Sample after the label names are known, so a rare class cannot vanish from the names.
    for key, n in (max_rows or {}).items():
        if key in splits and n < len(splits[key]):
            rows = sorted(random.Random(seed).sample(range(len(splits[key])), n))
            splits[key] = splits[key].select(rows)

    return TaskData(splits=splits, text_columns=tuple(text_columns), labels=labels,
                    source=_describe_source(load_args), test_has_labels=test_has_labels,
                    ids={key: _row_ids(split) for key, split in splits.items()})


def _checked_path(path: str) -> str:
    # datasets takes "./missing" for a hub id and reports an unreachable hub: check folders first.
    local = Path(path).expanduser()
    if path.startswith(_LOCAL_PREFIXES) or local.exists():
        if not local.exists():
            raise BuildError("path", f'local dataset folder "{path}" does not exist (resolved to {local.resolve()})')
        return str(local.resolve())
    return path


def _load(**load_args: Any) -> DatasetDict:
    """Every split, with datasets' errors turned into BuildErrors that say which key to fix."""
    import datasets

    path = load_args["path"]
    try:
        return datasets.load_dataset(**load_args)
    except ConnectionError as error:  # datasets raises the builtin one, offline or not
        raise BuildError("path", f'cannot reach the Hugging Face hub for "{path}" (offline?): {error}. '
                                 'Point at local files instead: path = "a local folder" in hub layout, or '
                                 'path = "csv" with data_files = {train = "train.csv", validation = "dev.csv"}'
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


def _split(load_args: dict[str, Any], available: DatasetDict, spec: str, key: str) -> Dataset:
    base = spec.split("[", 1)[0]
    if base not in available:
        raise BuildError(key, f'no split "{base}"; available: {", ".join(available)} '
                              '(a split can be sliced, e.g. "train[:90%]" and "train[90%:]")')
    if "[" not in spec:
        return available[base]
    import datasets  # a sliced split ("train[:90%]") reads the prepared cache again, cheaply

    try:
        return datasets.load_dataset(**load_args, split=spec)
    except ValueError as error:
        raise BuildError(key, f'bad split slice "{spec}": {error}') from None


def _encode_labels(splits: dict[str, Dataset], column: str) -> tuple[LabelSpec, dict[str, Dataset]]:
    """Rename the label column to `label` and encode it as class ids (or floats for regression)."""
    from datasets import ClassLabel, Value

    splits = {key: split.rename_column(column, "label") if column != "label" and column in split.column_names
              else split for key, split in splits.items()}
    if "test" in splits and "label" not in splits["test"].column_names:  # an unlabelled test file
        splits["test"] = splits["test"].add_column("label", [HIDDEN_LABEL] * len(splits["test"]))

    feature = splits["train"].features["label"]
    if isinstance(feature, ClassLabel):
        return LabelSpec(tuple(feature.names)), splits
    dtype = getattr(feature, "dtype", None)
    if dtype is not None and dtype.startswith("float"):  # regression; float32 matches the model's logits
        return LabelSpec(None), {k: s.cast_column("label", Value("float32")) for k, s in splits.items()}
    if dtype is None or not ("string" in dtype or dtype == "bool" or "int" in dtype):  # also large_string
        raise BuildError("label_column", f"cannot use labels of type {feature} (expected class names, "
                                         "integers or floats)")

    # Strings or integers without names: the sorted distinct values become the class names.
    values = sorted({v for split in splits.values() for v in split.unique("label")} - {None, HIDDEN_LABEL, ""})
    names = tuple(str(v) for v in values)
    if "int" in dtype and values == list(range(len(values))):  # already class ids
        return LabelSpec(names), splits
    ids = {v: i for i, v in enumerate(values)}
    encode = lambda batch: {"label": [ids.get(v, HIDDEN_LABEL) for v in batch["label"]]}  # noqa: E731
    features = {k: s.features.copy() for k, s in splits.items()}
    for f in features.values():
        f["label"] = Value("int64")
    return LabelSpec(names), {k: s.map(encode, batched=True, features=features[k]) for k, s in splits.items()}


def _row_ids(split: Dataset) -> list[Any] | range:
    for column in ID_COLUMNS:
        if column in split.column_names:
            return list(split[column])
    return range(len(split))


def _describe_source(load_args: dict[str, Any]) -> str:
    parts = [load_args["path"]]
    if load_args["name"]:
        parts.append(f'name={load_args["name"]}')
    if load_args["data_files"]:
        parts.append(f'data_files={load_args["data_files"]}')
    if load_args["data_dir"]:
        parts.append(f'data_dir={load_args["data_dir"]}')
    if load_args["revision"]:
        parts.append(f'revision={load_args["revision"]}')
    return " ".join(parts)


@hookimpl
def xp_register_datasets(register):
    register("hf", hf)

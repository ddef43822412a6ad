"""The task's splits as MLflow dataset inputs of a run: a digest of the rows used and a source
that `mlflow.data.get_source(input).load()` reads again (absolute local paths, or hub id, config
and commit). Described in the training process (no MLflow there), logged by the tracking process.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracker.components import DataSource, TaskData

if TYPE_CHECKING:
    from datasets import Dataset

CONTEXTS = ("train", "eval", "test")  # the task's split keys, logged as the inputs' context tag
DIGEST_BATCH_ROWS = 10_000
SCHEMA_SAMPLE_ROWS = 20


def describe_inputs(task: TaskData, redact: Callable[[str], str]) -> list[dict[str, Any]]:
    """The train, eval and (if present) test splits as plain data, for the tracking process to
    log as the run's dataset inputs (`input_entities`): the digest of every row is computed here,
    where the rows are; `redact` masks secrets in every text of their sources."""
    described = []
    source = task.source if isinstance(task.source, DataSource) else None
    for key in CONTEXTS:
        if key not in task.splits:
            continue
        split = task.splits[key]
        tags = {"mlflow.data.context": key}
        if source is not None and key in source.sampled:
            # The source reads the whole split; the run used a seeded sample of it.
            tags["xp.sample"] = f"{source.sampled[key]} rows drawn with seed {source.seed} (max_rows)"
        args: dict[str, Any] | None = None
        name = f"dataset:{key}"
        if source is not None:
            args = _redacted(source.load_args(key), redact)
            name = redact(f"{_title(source, args['split'])}:{args['split']}")
        described.append(
            {
                "tags": tags,
                "name": name,
                "digest": rows_digest(split),
                "source": args,
                # The first rows, for MLflow to infer the schema from, as it would from the split.
                "sample": split.select(range(min(SCHEMA_SAMPLE_ROWS, len(split)))).to_dict(),
                "profile": {
                    "num_rows": split.num_rows,
                    "dataset_size": split.dataset_size,
                    "size_in_bytes": split.size_in_bytes,
                },
            }
        )
    return described


def input_entities(described: list[dict[str, Any]]) -> list[Any]:
    """MLflow `DatasetInput`s from `describe_inputs`, built with MLflow's own dataset classes
    (their public `to_dict`): the schema inferred from the first rows, as MLflow infers it from a
    Hugging Face dataset, with the digest and profile of the whole split. No `datasets` here."""
    import pandas
    from mlflow.data.huggingface_dataset_source import HuggingFaceDatasetSource
    from mlflow.data.pandas_dataset import from_pandas  # mlflow.data.from_pandas, where it is defined
    from mlflow.entities import Dataset as DatasetEntity
    from mlflow.entities import DatasetInput, InputTag

    inputs = []
    for split in described:
        sample = pandas.DataFrame(split["sample"])
        args = split["source"]
        source = (
            None
            if args is None
            else HuggingFaceDatasetSource(
                path=args["path"],
                config_name=args["name"],
                data_dir=args["data_dir"],
                data_files=args["data_files"],
                split=args["split"],
                revision=args["revision"],
            )
        )
        with warnings.catch_warnings():
            # Inferring the schema warns that integer columns cannot hold missing values at
            # inference time: advice for model signatures, not for a record of training data.
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer", category=UserWarning)
            # Without a source (a dataset plugin that does not say), MLflow records the code that ran.
            dataset = from_pandas(
                sample,
                # None is its default, but MLflow annotates `source: str | DatasetSource = None`.
                source=source,  # type: ignore[arg-type]
                name=split["name"],
                digest=split["digest"],
                targets="label" if source is not None else None,
            )
            entity = {**dataset.to_dict(), "profile": json.dumps(split["profile"])}
        inputs.append(DatasetInput(DatasetEntity(**entity), [InputTag(k, v) for k, v in split["tags"].items()]))
    return inputs


def log_dataset_inputs(client: Any, run_id: str, described: list[dict[str, Any]]) -> None:
    """Log the splits `describe_inputs` described as the run's dataset inputs."""
    from mlflow.exceptions import MlflowException

    inputs = input_entities(described)
    # MlflowClient.log_inputs, not mlflow.log_input: xp drives its runs by id through a client
    # bound to the experiment's store, with no active run in MLflow's global state.
    try:
        client.log_inputs(run_id, datasets=inputs)
    except MlflowException:
        # Two runs logging the same new dataset at once: the store's check-then-insert races and
        # the loser hits the unique constraint. By now the dataset exists, and linking it works.
        client.log_inputs(run_id, datasets=inputs)


def rows_digest(split: Dataset) -> str:
    """A fingerprint of every row and of the features (label names included), the same however
    the rows are laid out in Arrow (a selection, a slice, a fresh table).

    MLflow's own digest reads only the first 10,000 rows; this one reads all of them, in Arrow
    batches (under half a second for a million short rows).
    """
    import pyarrow as pa

    digest = hashlib.sha256(json.dumps(split.features.to_dict(), sort_keys=True).encode())
    for batch in split.with_format("arrow").iter(batch_size=DIGEST_BATCH_ROWS):
        # `take` copies the rows into fresh buffers: a selection or slice of a bigger table
        # would otherwise serialize with its parent's offsets and padding.
        batch = batch.replace_schema_metadata(None).take(pa.array(range(batch.num_rows)))
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, batch.schema) as writer:
            writer.write_table(batch)
        digest.update(sink.getvalue())
    return digest.hexdigest()[:16]


def _title(source: DataSource, split: str) -> str:
    """A short name for the data: the folder's or the split's file name, or the hub id and config."""
    files = (source.data_files or {}).get(split.split("[", 1)[0]) or ()
    if os.path.isabs(source.path):
        return Path(source.path).name
    if files and os.path.isabs(files[0]):
        return Path(files[0]).name + (f" +{len(files) - 1}" if len(files) > 1 else "")
    if source.data_dir and os.path.isabs(source.data_dir):
        return Path(source.data_dir).name
    return f"{source.path}/{source.name}" if source.name else source.path


def _redacted(value: Any, redact: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redacted(v, redact) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redacted(v, redact) for v in value]
    return value

"""The task's splits as MLflow dataset inputs of a run: a digest of the rows used and a source
that `mlflow.data.get_source(input).load()` reads again (absolute local paths, or hub id, config
and commit).
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from tracker.components import DataSource, TaskData

if TYPE_CHECKING:
    from datasets import Dataset

CONTEXTS = ("train", "eval", "test")  # the task's split keys, logged as the inputs' context tag
DIGEST_BATCH_ROWS = 10_000


def log_dataset_inputs(client: Any, run_id: str, task: TaskData, redact: Callable[[str], str]) -> None:
    """Log the train, eval and (if present) test splits as the run's dataset inputs; `redact`
    masks secrets in every text of their sources."""
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.exceptions import MlflowException

    inputs = []
    for key in CONTEXTS:
        if key not in task.splits:
            continue
        tags = [InputTag("mlflow.data.context", key)]
        source = task.source if isinstance(task.source, DataSource) else None
        if source is not None and key in source.sampled:
            # The source reads the whole split; the run used a seeded sample of it.
            tags.append(InputTag("xp.sample", f"{source.sampled[key]} rows drawn with seed {source.seed} (max_rows)"))
        inputs.append(DatasetInput(_dataset(task.splits[key], source, key, redact), tags))
    # MlflowClient.log_inputs, not mlflow.log_input: xp drives its runs by id through a client
    # bound to the experiment's store, with no active run in MLflow's global state.
    try:
        client.log_inputs(run_id, datasets=inputs)
    except MlflowException:
        # Two runs logging the same new dataset at once: the store's check-then-insert races and
        # the loser hits the unique constraint. By now the dataset exists, and linking it works.
        client.log_inputs(run_id, datasets=inputs)


def _dataset(split: Dataset, source: DataSource | None, key: str, redact: Callable[[str], str]) -> Any:
    """The `mlflow.entities.Dataset` of one split, built from the public fields (`to_dict`) of
    MLflow's Hugging Face dataset."""
    import mlflow.data
    from mlflow.data.huggingface_dataset_source import HuggingFaceDatasetSource
    from mlflow.entities import Dataset as DatasetEntity

    digest = rows_digest(split)
    if source is None:  # a dataset plugin that does not say: MLflow records the code that ran
        dataset = mlflow.data.from_huggingface(split, name=f"dataset:{key}", digest=digest)
    else:
        args = _redacted(source.load_args(key), redact)
        hf_source = HuggingFaceDatasetSource(path=args["path"], config_name=args["name"], data_dir=args["data_dir"],
                                             data_files=args["data_files"], split=args["split"],
                                             revision=args["revision"])
        name = redact(f"{_title(source, args['split'])}:{args['split']}")
        dataset = mlflow.data.from_huggingface(split, source=hf_source, name=name, digest=digest, targets="label")
    with warnings.catch_warnings():
        # Inferring the schema warns that integer columns cannot hold missing values at
        # inference time: advice for model signatures, not for a record of training data.
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer", category=UserWarning)
        return DatasetEntity(**dataset.to_dict())


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

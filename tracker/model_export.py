"""The trained model as an MLflow model: transformers flavor, a Logged Model of its run linked
to the run's final metrics, optionally a Model Registry version.

`mlflow.pyfunc.load_model(uri).predict(...)` then returns label names: a list of sentences for a
single-text task, rows of `text` and `text_pair` for a sentence-pair task.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from tracker.components import TaskData

MODEL_NAME = "model"  # the Logged Model's name, so `runs:/<run id>/model` finds it
TASK = "text-classification"
XP_METADATA_FILE = "xp.json"  # beside a saved model: what `xp predict` needs to feed it
_METADATA_PREFIX = "xp."  # the card's keys in an MLflow model's metadata
# What a model needs at serving time; pinned to this machine's versions. Given explicitly, so
# MLflow does not spend seconds in a subprocess inferring them (nor ask for torchvision).
_SERVING_PACKAGES = ("transformers", "tokenizers", "torch", "accelerate")


@dataclass(frozen=True)
class ModelCard:
    """What a saved model needs to be fed and read: the text columns it was trained on, in
    order (one sentence or a pair), its label names (none for regression), its truncation.

    Its one record, `as_record()`, is what xp.json beside a saved model holds, what the tracking
    process is sent, and (each key prefixed `xp.`) the MLflow model's metadata; `from_record`
    reads any of them back. A model saved without xp has no card: every field None."""

    text_columns: tuple[str, ...] | None
    label_names: tuple[str, ...] | None
    max_length: int | None

    @classmethod
    def of(cls, task: TaskData, max_length: int | None) -> ModelCard:
        return cls(tuple(task.text_columns), task.labels.names, max_length)

    def as_record(self) -> dict[str, Any]:
        return {
            "text_columns": None if self.text_columns is None else list(self.text_columns),
            "label_names": None if self.label_names is None else list(self.label_names),
            "max_length": self.max_length,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ModelCard:
        """The card a record holds; a ValueError naming the key whose value is not what xp writes."""

        def strings(key: str) -> tuple[str, ...] | None:
            value = record.get(key)
            if value is None:
                return None
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                raise ValueError(f"recorded {key} should be a list of strings, got {value!r}")
            return tuple(value)

        max_length = record.get("max_length")
        if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int)):
            raise ValueError(f"recorded max_length should be an integer, got {max_length!r}")
        return cls(strings("text_columns"), strings("label_names"), max_length)

    def as_metadata(self) -> dict[str, Any]:
        return {f"{_METADATA_PREFIX}{key}": value for key, value in self.as_record().items()}

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> ModelCard:
        return cls.from_record(
            {
                key.removeprefix(_METADATA_PREFIX): value
                for key, value in metadata.items()
                if key.startswith(_METADATA_PREFIX)
            }
        )

    def write(self, folder: Path) -> Path:
        path = folder / XP_METADATA_FILE
        path.write_text(json.dumps(self.as_record(), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def read(cls, folder: Path) -> ModelCard:
        """The card beside a saved model (xp.json); an empty one when there is none. A ValueError
        when the file is not one xp wrote."""
        path = folder / XP_METADATA_FILE
        if not path.is_file():
            return cls(None, None, None)
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as error:
            raise ValueError(f"{XP_METADATA_FILE} is not valid JSON: {error}") from None
        if not isinstance(record, dict):
            raise ValueError(f"{XP_METADATA_FILE} should hold a JSON object, got {record!r}")
        return cls.from_record(record)


@dataclass(frozen=True)
class LoggedModel:
    model_uri: str  # models:/<model id>
    model_id: str
    registered: str | None = None  # "name/version" when registered


def log_transformers_model(
    model: Any,
    tokenizer: Any,
    card: ModelCard,
    input_example: Any,
    *,
    experiment_id: str,
    run_id: str,
    step: int,
    register_as: str | None,
) -> LoggedModel:
    """Log `model` and `tokenizer` as the run's Logged Model. The metrics the run logged at
    `step` (its final evaluation) are linked to the model, so the UI shows them on it.
    `input_example`: rows as the model takes them (`example_rows`).

    The tracking URI is MLflow's current one: the caller sets it for the run.
    """
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient()
    # Created here, in the run's experiment: MLflow would otherwise put a model logged without
    # an active run into the default experiment.
    logged = client.create_logged_model(experiment_id, name=MODEL_NAME, source_run_id=run_id, model_type=TASK)
    info = mlflow.transformers.log_model(
        transformers_model={"model": model, "tokenizer": tokenizer},
        task=TASK,
        model_id=logged.model_id,
        run_id=run_id,
        step=step,
        signature=_signature(card),
        input_example=input_example,
        metadata=card.as_metadata(),
        pip_requirements=_pinned(_SERVING_PACKAGES),
        registered_model_name=register_as,
    )
    registered = f"{register_as}/{info.registered_model_version}" if register_as else None
    return LoggedModel(info.model_uri, logged.model_id, registered)


def _signature(card: ModelCard) -> Any:
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    assert card.text_columns is not None  # a card made at training time names its columns
    if len(card.text_columns) == 1:
        inputs = Schema([ColSpec("string")])  # a plain list of sentences
    else:  # the pipeline's own names for a pair; the second is optional, as for the pipeline
        inputs = Schema([ColSpec("string", "text"), ColSpec("string", "text_pair", required=False)])
    return ModelSignature(inputs, Schema([ColSpec("string", "label"), ColSpec("double", "score")]))


def example_rows(task: TaskData) -> Any:
    """Two rows of the validation split, as the model takes them."""
    rows = task.splits["eval"].select(range(min(2, len(task.splits["eval"]))))
    columns = [rows[column] for column in task.text_columns]
    if len(columns) == 1:
        return list(columns[0])
    return [{"text": first, "text_pair": second} for first, second in zip(columns[0], columns[1], strict=True)]


def _pinned(packages: tuple[str, ...]) -> list[str]:
    pinned = []
    for package in packages:
        try:
            pinned.append(f"{package}=={metadata.version(package).split('+')[0]}")
        except metadata.PackageNotFoundError:
            continue
    return pinned

"""The trained model as an MLflow model: transformers flavor, a Logged Model of its run linked
to the run's final metrics, optionally a Model Registry version.

`mlflow.pyfunc.load_model(uri).predict(...)` then returns label names: a list of sentences for a
single-text task, rows of `text` and `text_pair` for a sentence-pair task.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from tracker.components import TaskData

MODEL_NAME = "model"  # the Logged Model's name, so `runs:/<run id>/model` finds it
TASK = "text-classification"
XP_METADATA_FILE = "xp.json"  # beside a saved model: what `xp predict` needs to feed it
# What a model needs at serving time; pinned to this machine's versions. Given explicitly, so
# MLflow does not spend seconds in a subprocess inferring them (nor ask for torchvision).
_SERVING_PACKAGES = ("transformers", "tokenizers", "torch", "accelerate")


@dataclass(frozen=True)
class ModelCard:
    """What a saved model needs to be fed and read: the text columns it was trained on, in
    order (one sentence or a pair), its label names (none for regression), its truncation."""

    text_columns: tuple[str, ...]
    label_names: tuple[str, ...] | None
    max_length: int | None

    @classmethod
    def of(cls, task: TaskData, max_length: int | None) -> ModelCard:
        return cls(tuple(task.text_columns), task.labels.names, max_length)

    def as_metadata(self) -> dict[str, Any]:
        return {
            "xp.text_columns": list(self.text_columns),
            "xp.label_names": None if self.label_names is None else list(self.label_names),
            "xp.max_length": self.max_length,
        }

    def write(self, folder: Path) -> Path:
        path = folder / XP_METADATA_FILE
        path.write_text(
            json.dumps(
                {
                    "text_columns": list(self.text_columns),
                    "label_names": None if self.label_names is None else list(self.label_names),
                    "max_length": self.max_length,
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
        return path


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

    if len(card.text_columns) == 1:
        inputs = Schema([ColSpec("string")])  # a plain list of sentences
    else:  # the pipeline's own names for a pair; the second is optional, as for the pipeline
        inputs = Schema([ColSpec("string", "text"), ColSpec("string", "text_pair", required=False)])
    return ModelSignature(inputs, Schema([ColSpec("string", "label"), ColSpec("double", "score")]))


def example_rows(card: ModelCard, task: TaskData) -> Any:
    """Two rows of the validation split, as the model takes them."""
    rows = task.splits["eval"].select(range(min(2, len(task.splits["eval"]))))
    columns = [rows[column] for column in card.text_columns]
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

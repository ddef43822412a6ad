"""The trained model as an MLflow model: transformers flavor, a Logged Model of its run linked
to the run's final metrics, optionally a Model Registry version. The task says which pipeline
serves it, with which signature (tracker.components.Export); `mlflow.pyfunc.load_model(uri)
.predict(...)` then answers as that pipeline does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracker.components import TaskData
from tracker.task import Export

if TYPE_CHECKING:
    from tracker.experiment import ComponentSpec

MODEL_NAME = "model"  # the Logged Model's name, so `runs:/<run id>/model` finds it
XP_METADATA_FILE = "xp.json"  # beside a saved model: what `xp predict` needs to feed it
BASE_MODEL = "base_model"  # xp's pyfunc model's config key naming an adapter's base model
_METADATA_PREFIX = "xp."  # the card's keys in an MLflow model's metadata
# What a model needs at serving time; pinned to this machine's versions. Given explicitly, so
# MLflow does not spend seconds in a subprocess inferring them (nor ask for torchvision).
_SERVING_PACKAGES = ("transformers", "tokenizers", "torch", "accelerate")


@dataclass(frozen=True)
class ModelCard:
    """What a saved model needs to be loaded, fed and read: the task that trained it (its
    registered name) and the transformers Auto class of its head, the text columns it was
    trained on, in order (one text or a pair), the names of its target ids (classes, tags; none
    for regression), its truncation; for a model trained as an adapter, the adapter plugin that
    trained it and its [adapter] keys, which load it on its base model.

    Its one record, `as_record()`, is what xp.json beside a saved model holds, what the tracking
    process is sent, and (each key prefixed `xp.`) the MLflow model's metadata; `from_record`
    reads any of them back. A model saved without xp has no card: every field None."""

    task: str | None
    task_options: Mapping[str, Any]  # the [task] section's keys, to build the task again
    model_class: str | None
    text_columns: tuple[str, ...] | None
    label_names: tuple[str, ...] | None
    max_length: int | None
    adapter: str | None = None
    adapter_options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(
        cls, task: ComponentSpec, data: TaskData, max_length: int | None, adapter: ComponentSpec | None = None
    ) -> ModelCard:
        return cls(
            task.use,
            dict(task.options),
            data.task.head().auto_class,
            tuple(data.text_columns),
            data.task.label_names,
            max_length,
            adapter.use if adapter is not None else None,
            dict(adapter.options) if adapter is not None else {},
        )

    @classmethod
    def unknown(cls) -> ModelCard:
        return cls(None, {}, None, None, None, None)

    def as_record(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "task_options": dict(self.task_options),
            "model_class": self.model_class,
            "text_columns": None if self.text_columns is None else list(self.text_columns),
            "label_names": None if self.label_names is None else list(self.label_names),
            "max_length": self.max_length,
            "adapter": self.adapter,
            "adapter_options": dict(self.adapter_options),
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

        def string(key: str) -> str | None:
            value = record.get(key)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"recorded {key} should be a string, got {value!r}")
            return value

        max_length = record.get("max_length")
        if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int)):
            raise ValueError(f"recorded max_length should be an integer, got {max_length!r}")

        def options(key: str) -> dict[str, Any]:
            value = record.get(key) or {}
            if not isinstance(value, dict):
                raise ValueError(f"recorded {key} should be a JSON object, got {value!r}")
            return value

        return cls(
            string("task"),
            options("task_options"),
            string("model_class"),
            strings("text_columns"),
            strings("label_names"),
            max_length,
            string("adapter"),
            options("adapter_options"),
        )

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
            return cls.unknown()
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


def log_model_folder(
    folder: Path,
    card: ModelCard,
    export: Export,
    *,
    experiment_id: str,
    run_id: str,
    step: int,
    register_as: str | None,
) -> LoggedModel:
    """Log the model saved in `folder` (save_pretrained, with its tokenizer and card) as the run's
    Logged Model, served by the pipeline `export` names, or by xp's own pyfunc model. The metrics the run
    logged at `step` (its final evaluation) are linked to the model, so the UI shows them on it.

    The tracking URI is MLflow's current one: the caller sets it for the run.
    """
    import mlflow
    from mlflow import MlflowClient
    from mlflow.models import ModelSignature

    client = MlflowClient()
    # Created here, in the run's experiment: MLflow would otherwise put a model logged without
    # an active run into the default experiment.
    logged = client.create_logged_model(
        experiment_id, name=MODEL_NAME, source_run_id=run_id, model_type=export.pipeline_task
    )
    common = {
        "model_id": logged.model_id,
        "step": step,
        "signature": ModelSignature.from_dict(dict(export.signature)),
        "input_example": export.input_example,
        "metadata": card.as_metadata(),
        "pip_requirements": _pinned(_SERVING_PACKAGES),
        "registered_model_name": register_as,
    }
    if export.served_by == "xp":
        from tracker.pyfunc_model import ARTIFACT, TaskModel

        info = mlflow.pyfunc.log_model(
            python_model=TaskModel(),
            artifacts={ARTIFACT: str(folder)},
            model_config=dict(export.model_config) if export.model_config else None,
            **common,
        )
    else:
        from transformers import AutoTokenizer

        assert card.model_class is not None  # the training process's card names the head
        model, tokenizer = load_saved(card.model_class, folder), AutoTokenizer.from_pretrained(folder)
        info = mlflow.transformers.log_model(
            transformers_model={"model": model, "tokenizer": tokenizer},
            task=export.pipeline_task,
            run_id=run_id,
            model_config=dict(export.model_config) if export.model_config else None,
            **common,
        )
    registered = f"{register_as}/{info.registered_model_version}" if register_as else None
    return LoggedModel(info.model_uri, logged.model_id, registered)


def adapter_export(export: Export, data: TaskData, base_model: str) -> Export:
    """`export` for a model trained as an adapter, which xp's own pyfunc model serves (it puts the
    adapter on its base model, which no pipeline does without the hub): as `xp predict` does,
    rows of the text columns the model was trained on in, typed as the data holds them (a string,
    or a list of words), the task's prediction columns out. The base model it was trained on is
    the pyfunc model's config, which the loader may change:
    `mlflow.pyfunc.load_model(uri, model_config={"base_model": FOLDER})`."""
    with_base = replace(export, model_config={BASE_MODEL: base_model})
    if export.served_by == "xp":
        return with_base
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema
    from mlflow.types.schema import Array

    rows = data.splits["eval"].select(range(min(2, len(data.splits["eval"]))))

    def column(name: str) -> ColSpec:
        words = isinstance(rows[0][name], list) if len(rows) else False
        return ColSpec(Array("string") if words else "string", name)

    inputs = Schema([column(name) for name in data.text_columns])
    examples = [{name: row[name] for name in data.text_columns} for row in rows]
    return replace(with_base, signature=ModelSignature(inputs).to_dict(), input_example=examples, served_by="xp")


def load_saved(model_class: str, folder: Path) -> Any:
    """The model saved in `folder` (save_pretrained layout) as the transformers Auto class named
    (a model card's `model_class`), without running code from the folder."""
    import transformers

    return getattr(transformers, model_class).from_pretrained(folder)


def _pinned(packages: tuple[str, ...]) -> list[str]:
    pinned = []
    for package in packages:
        try:
            pinned.append(f"{package}=={metadata.version(package).split('+')[0]}")
        except metadata.PackageNotFoundError:
            continue
    return pinned

"""`xp predict`'s model: MODEL (a run, a registered version, a Logged Model or a folder) found as a
folder on local disk with what xp recorded about it when it was trained, and loaded."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from tracker.model_export import ModelCard
from tracker.redact import mask_uri
from tracker.stores import (
    StoreError,
    current_tracking_uri,
    experiment_ids,
    open_store,
    runs_selected,
    store_uri,
)

# The folder name MLflow's transformers flavor saves pipeline components (the tokenizer) under.
_MLFLOW_COMPONENTS = "components"


class PredictError(Exception):
    """Bad input to `xp predict` (model, file, option): printed as one line, exit code 2."""


@dataclass(frozen=True)
class ModelSource:
    """A model on local disk and what xp recorded about it when it was trained."""

    description: str  # where it came from, for messages: "run 1a2b3c4d5e6f (quickstart-0a1b2c3d)"
    model_folder: Path  # save_pretrained layout: config.json + weights
    tokenizer_folder: Path
    card: ModelCard  # what xp recorded; every field None for a model saved without xp


def resolve_model(spec: str, uri: str | None, scratch: Path, say=lambda text: None) -> ModelSource:
    """A local folder, a `runs:/` or `models:/` URI, a Logged Model id (`m-...`), or a run id, unique
    id prefix or run name in the tracking store `uri` (any spelling tracker.stores takes; None: the
    environment's or the default store). A StoreError when that store is not there."""
    path = Path(spec).expanduser()
    if path.exists():
        if not path.is_dir():
            raise PredictError(f"MODEL {spec}: is a file; expected a model folder, a run or a model URI")
        return from_folder(path, f"folder {spec}")
    is_uri = spec.startswith(("runs:/", "models:/"))
    if not is_uri and ("/" in spec or os.sep in spec or spec.startswith((".", "~"))):
        raise PredictError(f"MODEL {spec}: no such folder")  # a path: no run name looks like one
    uri = store_uri(uri)
    client = open_store(uri)
    if is_uri:
        return from_folder(download(spec, uri, scratch), spec)
    if re.fullmatch(r"m-[0-9a-f]{32}", spec):
        return from_folder(download(f"models:/{spec}", uri, scratch), f"models:/{spec}")
    run = find_run(client, spec, uri, say)
    model_uri, in_place = run_model(client, run)
    name = f" ({run.info.run_name})" if run.info.run_name else ""
    folder = in_place or download(model_uri, uri, scratch)
    return from_folder(folder, f"run {run.info.run_id}{name}, {model_uri}")


def find_run(client: Any, spec: str, uri: str, say) -> Any:
    """The run `spec` names (tracker.stores.runs_selected); of several runs of one name, the newest
    that logged a model."""
    try:
        runs = runs_selected(client, experiment_ids(client), spec)
    except StoreError as ambiguous:
        raise PredictError(f"MODEL {ambiguous}") from None
    if not runs:
        raise PredictError(f"MODEL {spec}: no folder, and no run with this id, id prefix or name in {mask_uri(uri)}")
    with_model = [run for run in runs if run.outputs and run.outputs.model_outputs] or runs
    chosen = with_model[0]
    if len(runs) > 1:
        say(
            f"note: {len(runs)} runs are named {spec}; using the newest"
            f"{' that logged a model' if with_model is not runs else ''}, {chosen.info.run_id}"
        )
    return client.get_run(chosen.info.run_id)


def run_model(client: Any, run: Any) -> tuple[str, Path | None]:
    """The URI of the model a run logged: its Logged Model (the one named "model" if several), else
    a `model` artifact folder; and the Logged Model's own folder when the store keeps its artifacts
    on this machine: read where it is, rather than copied (the weights are most of it)."""
    model_ids = [output.model_id for output in (run.outputs.model_outputs if run.outputs else [])]
    models = [
        client.get_logged_model(model_id) for model_id in dict.fromkeys(model_ids)
    ] or client.search_logged_models([run.info.experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'")
    if models:
        chosen = next((m for m in models if m.name == "model"), models[0])
        return f"models:/{chosen.model_id}", _local_model_folder(chosen.artifact_location)
    if any(artifact.path == "model" and artifact.is_dir for artifact in client.list_artifacts(run.info.run_id)):
        return f"runs:/{run.info.run_id}/model", None
    raise PredictError(
        f"MODEL {run.info.run_id} ({run.info.run_name}): this run logged no model; "
        "train with `[runner] save_model = true` to log one"
    )


def _local_model_folder(location: str | None) -> Path | None:
    """The folder an artifact location names on this machine (a path or a file: URI), if it holds
    an MLflow model; None for any other store (a server, a bucket): those are downloaded."""
    if not location:
        return None
    parts = urlsplit(location)
    if parts.scheme not in ("", "file") or parts.netloc not in ("", "localhost"):
        return None
    folder = Path(unquote(parts.path))
    return folder if (folder / "MLmodel").is_file() else None


def download(model_uri: str, uri: str, scratch: Path) -> Path:
    """A copy of the model at `model_uri` in the folder `scratch`."""
    import mlflow
    from mlflow.exceptions import MlflowException

    # MLflow's own download bar would be glued to ours; the model is one folder.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    registry = os.environ.get("MLFLOW_REGISTRY_URI") or uri
    try:
        with current_tracking_uri(uri):
            return Path(
                mlflow.artifacts.download_artifacts(
                    model_uri, dst_path=str(scratch), tracking_uri=uri, registry_uri=registry
                )
            )
    except MlflowException as error:
        raise PredictError(f"MODEL {model_uri}: {str(error.message).splitlines()[0]}") from None
    except OSError as error:  # a run or model whose artifacts are gone from disk
        raise PredictError(f"MODEL {model_uri}: cannot download its files: {error}") from None


def from_folder(folder: Path, description: str) -> ModelSource:
    """An MLflow model folder (MLmodel: the transformers flavor, or xp's own pyfunc model) or a
    save_pretrained folder (config.json, xp.json)."""
    if (folder / "MLmodel").is_file():
        return _from_mlflow_folder(folder, description)
    if not (folder / "config.json").is_file() and (folder / "model" / "config.json").is_file():
        folder = folder / "model"  # the run's folder under outputs/, which holds model/
    if not (folder / "config.json").is_file():
        raise PredictError(f"MODEL {description}: not a model folder (it has neither MLmodel nor config.json)")
    return ModelSource(description, folder, folder, _card(description, ModelCard.read, folder))


def _from_mlflow_folder(folder: Path, description: str) -> ModelSource:
    from mlflow.models import Model

    mlmodel = Model.load(str(folder))
    flavor = mlmodel.flavors.get("transformers")
    served_by_xp = _xp_artifact(mlmodel, folder)
    if flavor is None and served_by_xp is not None:  # xp's pyfunc model: its save_pretrained folder
        return ModelSource(
            description,
            served_by_xp,
            served_by_xp,
            _card(description, ModelCard.from_metadata, mlmodel.metadata or {}),
        )
    if flavor is None:
        raise PredictError(
            f"MODEL {description}: an MLflow model of flavor {', '.join(mlmodel.flavors)}; "
            "xp predicts with transformers-flavor models"
        )
    if "model_binary" not in flavor:  # save_pretrained=False: a hub reference, no weights
        raise PredictError(f"MODEL {description}: the MLflow model holds no weights (saved with save_pretrained=False)")
    if "tokenizer" not in flavor.get("components", []):
        raise PredictError(f"MODEL {description}: the MLflow model has no tokenizer")
    return ModelSource(
        description,
        folder / flavor["model_binary"],
        folder / _MLFLOW_COMPONENTS / "tokenizer",
        _card(description, ModelCard.from_metadata, mlmodel.metadata or {}),
    )


def _xp_artifact(mlmodel: Any, folder: Path) -> Path | None:
    """The save_pretrained folder of xp's own pyfunc model (tracker.pyfunc_model), if it is one."""
    from tracker.pyfunc_model import ARTIFACT

    pyfunc = mlmodel.flavors.get("python_function", {})
    artifact = (pyfunc.get("artifacts") or {}).get(ARTIFACT, {})
    path = artifact.get("path") if isinstance(artifact, dict) else None
    return folder / path if path and (folder / path / "config.json").is_file() else None


def _card(description: str, read: Callable[[Any], ModelCard], recorded: Any) -> ModelCard:
    try:
        return read(recorded)
    except ValueError as error:
        raise PredictError(f"MODEL {description}: {error}") from None


def load_model(
    source: ModelSource, model_class: str, adapter: Any = None, base_model: str | None = None
) -> tuple[Any, Any]:
    """The model, as the transformers Auto class named, and its tokenizer, without running code
    from the folder. A model trained as an `adapter` (tracker.components.Adapter) is loaded by
    it, on `base_model` or the base it records."""
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    from tracker.model_export import load_saved

    # The load report, conversion notices and weight-loading bar are not the user's business.
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.tokenizer_folder)
        if adapter is not None:
            model = adapter.load(source.model_folder, model_class, base_model)
        else:
            model = load_saved(model_class, source.model_folder)
    except (OSError, ValueError) as error:
        raise PredictError(f"MODEL {source.description}: cannot load it: {error}") from None
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    return model, tokenizer

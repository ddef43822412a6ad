"""`xp predict`: a trained model (a run, a registered version, a Logged Model or a folder) applied to
a table of texts, written back as the same rows plus the predicted label, label id and score."""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracker.preflight import output_file_problem
from tracker.redact import mask_uri
from tracker.stores import (
    StoreError,
    current_tracking_uri,
    experiment_ids,
    open_store,
    run_with_id,
    run_with_prefix,
    runs_named,
    store_uri,
)

# Table formats by file extension; the output's format is chosen the same way.
FORMATS = {".csv": "CSV", ".jsonl": "JSON Lines", ".ndjson": "JSON Lines", ".parquet": "Parquet"}
STDOUT = "-"  # --output - prints CSV
DEVICES = ("auto", "cpu", "cuda", "mps")
# Where a folder from elsewhere keeps its text (the usual single-text column names).
SINGLE_TEXT_COLUMNS = ("text", "sentence")
# Tokenizers that know no limit report this huge `model_max_length` (transformers' VERY_LARGE_INTEGER).
_NO_LIMIT = 1_000_000
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
    text_columns: tuple[str, ...] | None
    label_names: tuple[str, ...] | None
    max_length: int | None


@dataclass(frozen=True)
class Outcome:
    """What `predict_file` did, for the console."""

    source: ModelSource
    rows: int
    text_columns: tuple[str, ...]
    output: str
    device: str


def predict_file(
    model: str,
    input_path: Path,
    output: str | None = None,
    *,
    uri: str | None = None,
    text_columns: Sequence[str] | None = None,
    probabilities: bool = False,
    batch_size: int = 32,
    device: str = "auto",
    say=lambda text: None,
) -> Outcome:
    """Resolve `model`, read `input_path`, predict in batches of `batch_size` and write the table.

    `output` defaults to `<input stem>.predictions<input extension>` next to the input; "-"
    prints CSV to stdout. Raises PredictError for anything the user can fix.
    """
    input_path = Path(input_path)
    input_format = table_format(input_path, "input")
    if output is None:
        output = str(input_path.with_name(f"{input_path.stem}.predictions{input_path.suffix}"))
    if output != STDOUT:
        table_format(Path(output), "output")
        if Path(output).resolve() == input_path.resolve():
            raise PredictError(f"--output {output}: is the input file; choose another name")
    if not input_path.is_file():
        raise PredictError(f"--input {input_path}: no such file")
    unwritable = None if output == STDOUT else output_file_problem(Path(output))
    if unwritable:  # found before the model loads and predicts
        raise PredictError(f"--output {output}: {unwritable}")
    frame = read_table(input_path, input_format)
    with tempfile.TemporaryDirectory(prefix="xp-predict-") as scratch:
        source = resolve_model(model, uri, Path(scratch), say)
        columns = choose_text_columns(source, text_columns, list(frame.columns), input_path)
        device = pick_device(device)
        loaded, tokenizer = load_model(source)
        kind = "regression" if is_regression(loaded) else f"labels: {', '.join(label_names(loaded, source))}"
        say(f"model: {source.description} ({kind})")
        say(f"input: {input_path} ({len(frame)} rows; text columns: {', '.join(columns)}); device: {device}")
        predictions = predict_frame(
            frame, columns, loaded, tokenizer, source, probabilities=probabilities, batch_size=batch_size, device=device
        )
    for name in sorted(set(frame.columns) & set(predictions.columns)):
        say(f"note: the input's own `{name}` column is written as `input_{name}`")
    result = frame.rename(columns={name: f"input_{name}" for name in predictions.columns if name in frame.columns})
    for name in predictions.columns:
        result[name] = predictions[name].to_numpy()
    write_table(result, output)
    return Outcome(source, len(result), columns, output, device)


# ---- the model: MODEL -> a folder on disk and its xp metadata -------------------------------------


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
    model_uri = run_model_uri(client, run)
    name = f" ({run.info.run_name})" if run.info.run_name else ""
    return from_folder(download(model_uri, uri, scratch), f"run {run.info.run_id}{name}, {model_uri}")


def find_run(client: Any, spec: str, uri: str, say) -> Any:
    """The run whose id is `spec`, else whose name is `spec` (the newest of them that logged a model),
    else the one run whose id starts with `spec`."""
    found = run_with_id(client, spec)
    if found is not None:
        return found
    experiments = experiment_ids(client)
    named = runs_named(client, experiments, spec, newest_first=True)
    if named:
        with_model = [run for run in named if run.outputs and run.outputs.model_outputs] or named
        chosen = with_model[0]
        if len(named) > 1:
            say(
                f"note: {len(named)} runs are named {spec}; using the newest"
                f"{' that logged a model' if with_model is not named else ''}, {chosen.info.run_id}"
            )
        return client.get_run(chosen.info.run_id)
    try:
        found = run_with_prefix(client, experiments, spec)
    except StoreError as ambiguous:
        raise PredictError(f"MODEL {ambiguous}") from None
    if found is None:
        raise PredictError(f"MODEL {spec}: no folder, and no run with this id, id prefix or name in {mask_uri(uri)}")
    return client.get_run(found.info.run_id)


def run_model_uri(client: Any, run: Any) -> str:
    """The URI of the model a run logged: its Logged Model (the one named "model" if several), else
    a `model` artifact folder."""
    model_ids = [output.model_id for output in (run.outputs.model_outputs if run.outputs else [])]
    models = [
        client.get_logged_model(model_id) for model_id in dict.fromkeys(model_ids)
    ] or client.search_logged_models([run.info.experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'")
    if models:
        chosen = next((m for m in models if m.name == "model"), models[0])
        return f"models:/{chosen.model_id}"
    if any(artifact.path == "model" and artifact.is_dir for artifact in client.list_artifacts(run.info.run_id)):
        return f"runs:/{run.info.run_id}/model"
    raise PredictError(
        f"MODEL {run.info.run_id} ({run.info.run_name}): this run logged no model; "
        "train with `[runner] save_model = true` to log one"
    )


def download(model_uri: str, uri: str, scratch: Path) -> Path:
    """A local copy of the model at `model_uri` (or its own folder, for a local artifact store)."""
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
    """An MLflow transformers-flavor folder (MLmodel) or a save_pretrained folder (config.json, xp.json)."""
    if (folder / "MLmodel").is_file():
        return _from_mlflow_folder(folder, description)
    if not (folder / "config.json").is_file() and (folder / "model" / "config.json").is_file():
        folder = folder / "model"  # the run's folder under outputs/, which holds model/
    if not (folder / "config.json").is_file():
        raise PredictError(f"MODEL {description}: not a model folder (it has neither MLmodel nor config.json)")
    recorded = {}
    if (folder / "xp.json").is_file():
        try:
            recorded = json.loads((folder / "xp.json").read_text(encoding="utf-8"))
        except ValueError as error:
            raise PredictError(f"MODEL {description}: xp.json is not valid JSON: {error}") from None
    return _source(
        description,
        folder,
        folder,
        recorded.get("text_columns"),
        recorded.get("label_names"),
        recorded.get("max_length"),
    )


def _from_mlflow_folder(folder: Path, description: str) -> ModelSource:
    from mlflow.models import Model

    mlmodel = Model.load(str(folder))
    flavor = mlmodel.flavors.get("transformers")
    if flavor is None:
        raise PredictError(
            f"MODEL {description}: an MLflow model of flavor {', '.join(mlmodel.flavors)}; "
            "xp predicts with transformers-flavor models"
        )
    if "model_binary" not in flavor:  # save_pretrained=False: a hub reference, no weights
        raise PredictError(f"MODEL {description}: the MLflow model holds no weights (saved with save_pretrained=False)")
    if "tokenizer" not in flavor.get("components", []):
        raise PredictError(f"MODEL {description}: the MLflow model has no tokenizer")
    metadata = mlmodel.metadata or {}
    return _source(
        description,
        folder / flavor["model_binary"],
        folder / _MLFLOW_COMPONENTS / "tokenizer",
        metadata.get("xp.text_columns"),
        metadata.get("xp.label_names"),
        metadata.get("xp.max_length"),
    )


def _source(
    description: str, model_folder: Path, tokenizer_folder: Path, text_columns: Any, label_names: Any, max_length: Any
) -> ModelSource:
    def strings(value: Any, key: str) -> tuple[str, ...] | None:
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise PredictError(f"MODEL {description}: recorded {key} should be a list of strings, got {value!r}")
        return tuple(value)

    if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int)):
        raise PredictError(f"MODEL {description}: recorded max_length should be an integer, got {max_length!r}")
    return ModelSource(
        description,
        model_folder,
        tokenizer_folder,
        strings(text_columns, "text_columns"),
        strings(label_names, "label_names"),
        max_length,
    )


def load_model(source: ModelSource) -> tuple[Any, Any]:
    """The sequence-classification model and its tokenizer, without running code from the folder."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    # The load report, conversion notices and weight-loading bar are not the user's business.
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.tokenizer_folder)
        model = AutoModelForSequenceClassification.from_pretrained(source.model_folder)
    except (OSError, ValueError) as error:
        raise PredictError(f"MODEL {source.description}: cannot load it: {error}") from None
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    return model, tokenizer


# ---- the data: reading, text columns, writing -----------------------------------------------------


def table_format(path: Path, role: str) -> str:
    """ "CSV", "JSON Lines" or "Parquet", by extension."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise PredictError(
            f"--{role} {path}: unsupported extension {path.suffix or '(none)'!r}; expected {', '.join(FORMATS)}"
        )
    return fmt


def read_table(path: Path, fmt: str) -> Any:
    """The file as a DataFrame; CSV cells stay the exact text they were (ids like 007 keep their zeros)."""
    import pandas as pd

    if path.stat().st_size == 0:
        raise PredictError(f"--input {path}: the file is empty")
    try:
        if fmt == "CSV":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        elif fmt == "JSON Lines":
            frame = pd.read_json(path, lines=True, dtype=False, convert_dates=False)
        else:
            frame = pd.read_parquet(path)
    except Exception as error:
        raise PredictError(f"--input {path}: cannot read it as {fmt}: {error}") from None
    if frame.empty:
        raise PredictError(f"--input {path}: no rows (columns: {', '.join(map(str, frame.columns)) or 'none'})")
    return frame


def choose_text_columns(
    source: ModelSource, option: Sequence[str] | None, columns: list[str], input_path: Path
) -> tuple[str, ...]:
    """--text-columns, else the columns the model was trained on, else a lone `text`/`sentence` column."""
    have = ", ".join(map(str, columns))
    if option:
        if source.text_columns and len(option) != len(source.text_columns):
            raise PredictError(
                f"--text-columns {','.join(option)}: the model reads {len(source.text_columns)} "
                f"text column(s) ({', '.join(source.text_columns)}), not {len(option)}"
            )
        chosen = tuple(option)
    elif source.text_columns:
        chosen = source.text_columns
    else:
        found = [name for name in SINGLE_TEXT_COLUMNS if name in columns]
        if len(found) != 1:
            raise PredictError(
                f"MODEL {source.description}: does not record its text columns; name them with "
                f"--text-columns (one, or two for sentence pairs; {input_path} has: {have})"
            )
        chosen = (found[0],)
    missing = [name for name in chosen if name not in columns]
    if missing:
        raise PredictError(
            f"--input {input_path}: missing text column(s) {', '.join(missing)} (the model reads "
            f"{', '.join(chosen)}; the file has: {have}); rename them or map with --text-columns"
        )
    return chosen


def write_table(frame: Any, output: str) -> None:
    if output == STDOUT:
        frame.to_csv(sys.stdout, index=False)
        return
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = table_format(path, "output")
    if fmt == "CSV":
        frame.to_csv(path, index=False)
    elif fmt == "JSON Lines":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        frame.to_parquet(path, index=False)


# ---- predicting -------------------------------------------------------------------------------------


def pick_device(requested: str) -> str:
    """ "auto" is CUDA, else MPS, else the CPU; a named device must exist."""
    import torch

    mps = getattr(torch.backends, "mps", None)
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": bool(mps and mps.is_available())}
    if requested == "auto":
        return "cuda" if available["cuda"] else "mps" if available["mps"] else "cpu"
    if requested not in available:
        raise PredictError(f"--device {requested}: expected one of {', '.join(DEVICES)}")
    if not available[requested]:
        raise PredictError(
            f"--device {requested}: this machine has no {requested.upper()} device torch can use; "
            "use --device auto or cpu"
        )
    return requested


def is_regression(model: Any) -> bool:
    return model.config.problem_type == "regression" or model.config.num_labels == 1


def label_names(model: Any, source: ModelSource) -> list[str]:
    """The names xp recorded, else the model's id2label (which xp fills from the dataset)."""
    if source.label_names and len(source.label_names) == model.config.num_labels:
        return list(source.label_names)
    return [str(model.config.id2label[i]) for i in range(model.config.num_labels)]


def predict_frame(
    frame: Any,
    text_columns: Sequence[str],
    model: Any,
    tokenizer: Any,
    source: ModelSource,
    *,
    probabilities: bool,
    batch_size: int,
    device: str,
) -> Any:
    """One row per input row: `label`, `label_id`, `score` (probability of the label) and, on
    request, `prob_<label>` per class; for regression only `score`, the predicted value."""
    import pandas as pd
    import torch
    from tqdm.auto import tqdm

    regression = is_regression(model)
    if regression and probabilities:
        raise PredictError(f"--probabilities: MODEL {source.description} is a regression model; it has no classes")
    texts = [
        frame[name].map(lambda value: "" if value is None or value != value else str(value)).tolist()
        for name in text_columns
    ]  # None and NaN (missing cells) read as empty text
    max_length = source.max_length or _model_max_length(model, tokenizer)
    model.to(device).eval()
    chunks = []
    with (
        torch.inference_mode(),
        tqdm(total=len(frame), unit="row", desc="Predicting", file=sys.stderr, dynamic_ncols=True) as bar,
    ):
        for start in range(0, len(frame), batch_size):
            batch = [column[start : start + batch_size] for column in texts]  # one column, or a sentence pair
            encoded = tokenizer(*batch, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
            chunks.append(model(**encoded.to(device)).logits.float().cpu())
            bar.update(len(batch[0]))
    logits = torch.cat(chunks)
    if regression:
        return pd.DataFrame({"score": logits[:, 0].numpy()})
    probs = torch.softmax(logits, dim=-1)
    scores, ids = probs.max(dim=-1)
    names = label_names(model, source)
    columns = {"label": [names[i] for i in ids.tolist()], "label_id": ids.numpy(), "score": scores.numpy()}
    if probabilities:
        columns |= {f"prob_{name}": probs[:, i].numpy() for i, name in enumerate(names)}
    return pd.DataFrame(columns)


def _model_max_length(model: Any, tokenizer: Any) -> int | None:
    """The tokenizer's limit, else the model's position embeddings: longer inputs would not fit."""
    if tokenizer.model_max_length < _NO_LIMIT:
        return tokenizer.model_max_length
    return getattr(model.config, "max_position_embeddings", None)

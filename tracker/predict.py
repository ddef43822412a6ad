"""`xp predict`: a trained model (a run, a registered version, a Logged Model or a folder) applied to
a table of texts, written back as the same rows plus the columns the model's task predicts (for a
classifier: the label, label id and score).

The model is found and loaded by tracker.predict_model, the table read and written by
tracker.predict_tables; here they meet, and the rows are predicted in batches. It starts as `xp
run` does (tracker.garbage_collection): Python's garbage collector is off from the moment the
input is read until the first batch is predicted (imports, model and tokenizer), then what start-up
made is frozen out of its sight.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracker.garbage_collection import collector_paused
from tracker.predict_model import ModelSource, PredictError, load_model, resolve_model
from tracker.predict_tables import STDOUT, choose_text_columns, read_table, table_format, write_table
from tracker.preflight import output_file_problem
from tracker.registry import Registry
from tracker.task import prepare_tokenizer

DEVICES = ("auto", "cpu", "cuda", "mps")
# Tokenizers that know no limit report this huge `model_max_length` (transformers' VERY_LARGE_INTEGER).
_NO_LIMIT = 1_000_000


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
    registry: Registry,
    uri: str | None = None,
    text_columns: Sequence[str] | None = None,
    probabilities: bool = False,
    batch_size: int = 32,
    device: str = "auto",
    base_model: str | None = None,
    task_overrides: Sequence[str] = (),
    say=lambda text: None,
) -> Outcome:
    """Resolve `model`, read `input_path`, predict in batches of `batch_size` and write the table.

    `output` defaults to `<input stem>.predictions<input extension>` next to the input; "-"
    prints CSV to stdout. `base_model` is where the base of a model trained as an adapter is, when
    not where it was trained. `task_overrides` ("task.num_beams=4", as `xp run --set` writes them)
    change keys of the [task] section the model was trained with: how a generating task
    generates. Raises PredictError for anything the user can fix.
    """
    input_path = Path(input_path)
    changed = task_options_of(task_overrides)
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
    # Start-up, as in `xp run`: reading the table (pandas), finding the model (MLflow), importing
    # torch and transformers and loading the model make most of the objects this process will
    # ever hold, and every full collection would scan them all; the first batch still imports and
    # sets up what the model's forward pass needs. Until it is out, the collector is off.
    with collector_paused() as start_up, tempfile.TemporaryDirectory(prefix="xp-predict-") as scratch:
        frame = read_table(input_path, input_format)
        source = resolve_model(model, uri, Path(scratch), say)
        columns = choose_text_columns(source, text_columns, list(frame.columns), input_path)
        device = pick_device(device)
        task, loaded, tokenizer = load_for_prediction(source, registry, base_model, changed)
        say(f"model: {source.description} ({task.describe()})")
        say(f"input: {input_path} ({len(frame)} rows; text columns: {', '.join(columns)}); device: {device}")
        predictions = predict_frame(
            frame,
            columns,
            loaded,
            tokenizer,
            task,
            source,
            probabilities=probabilities,
            batch_size=batch_size,
            device=device,
            after_first_batch=start_up.over,
        )
        for name in sorted(set(frame.columns) & set(predictions.columns)):
            say(f"note: the input's own `{name}` column is written as `input_{name}`")
        result = frame.rename(columns={name: f"input_{name}" for name in predictions.columns if name in frame.columns})
        for name in predictions.columns:
            result[name] = predictions[name].to_numpy()
        write_table(result, output)
    return Outcome(source, len(result), columns, output, device)


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


def task_options_of(overrides: Sequence[str]) -> dict[str, Any]:
    """`--set task.KEY=VALUE` texts as the [task] keys they change; only the task's keys change
    at prediction time (the rest of the experiment is in the model's weights)."""
    from tracker.spec.parse import parse_override

    options = {}
    for text in overrides:
        try:
            override = parse_override(text)
        except ValueError as error:
            raise PredictError(f"{error}, e.g. --set task.num_beams=4") from None
        if override.path[0] != "task" or len(override.path) != 2:
            raise PredictError(
                f"--set {text}: only keys of the [task] section the model was trained with change at prediction "
                "time (task.KEY=VALUE, e.g. task.num_beams=4)"
            )
        options[override.path[1]] = override.value
    return options


def load_for_prediction(
    source: ModelSource, registry: Registry, base_model: str | None = None, task_options: Mapping[str, Any] = {}
) -> tuple[Any, Any, Any]:
    """The task that trained the model, the model and its tokenizer, as `xp predict` and xp's
    pyfunc model predict with them. A model trained as an adapter is put on its base model:
    `base_model` when given, else the one it records. `task_options` change keys of the task's
    section (checked as the file's would be)."""
    task = task_of(source, registry, task_options)
    adapter = adapter_of(source, registry)
    loaded, tokenizer = load_model(source, source.card.model_class or task.head().auto_class, adapter, base_model)
    prepare_tokenizer(task, tokenizer)  # as in training: what was changed was said then
    return task.of_model(source.card.label_names, loaded.config), loaded, tokenizer


def adapter_of(source: ModelSource, registry: Registry) -> Any:
    """The adapter plugin that trained the model, built from its model card; None for a model
    trained whole."""
    name = source.card.adapter
    if name is None:
        return None
    component = registry.get("adapter", name)
    if component is None:
        raise PredictError(
            f'MODEL {source.description}: trained with the adapter "{name}", which no installed plugin '
            f"provides (installed adapters: {', '.join(registry.names('adapter')) or 'none'})"
        )
    try:
        return component.factory(**source.card.adapter_options)
    except (TypeError, ValueError) as error:
        raise PredictError(f'MODEL {source.description}: cannot build its adapter "{name}": {error}') from None


def task_of(source: ModelSource, registry: Registry, changed: Mapping[str, Any] = {}) -> Any:
    """The task that trained the model, built from its model card with the `changed` keys; the
    default task for a model saved without xp."""
    name = source.card.task or registry.defaults.get("task")
    component = registry.get("task", name) if name is not None else None
    if component is None:
        installed = ", ".join(registry.names("task")) or "none"
        raise PredictError(
            f'MODEL {source.description}: trained for the task "{name}", which no installed plugin '
            f"provides (installed tasks: {installed}); install the plugin that trained it"
        )
    options = dict(source.card.task_options)
    if changed:
        from tracker.spec.keys import spec_of

        options, problems = spec_of(component.factory).check({**options, **changed})
        if problems:
            raise PredictError(
                "; ".join(f"--set task.{key}: {message}" if key else message for key, message in problems)
            )
    try:
        return component.factory(**options)
    except (TypeError, ValueError) as error:  # the plugin changed its keys since the model was trained
        raise PredictError(f'MODEL {source.description}: cannot build its task "{name}": {error}') from None


def predict_frame(
    frame: Any,
    text_columns: Sequence[str],
    model: Any,
    tokenizer: Any,
    task: Any,
    source: ModelSource,
    *,
    probabilities: bool,
    batch_size: int,
    device: str,
    after_first_batch: Callable[[], None] = lambda: None,
) -> Any:
    """One row per input row, the columns the task gives for each batch (`Task.predict`; for
    sequence classification: `label`, `label_id`, `score` and, on request, `prob_<label>` per
    class). `after_first_batch` is called once the first batch is predicted (start-up is over)."""
    import pandas as pd
    import torch
    from tqdm.auto import tqdm

    texts = [frame[name].map(_cell).tolist() for name in text_columns]
    max_length = source.card.max_length or _model_max_length(model, tokenizer)
    model.to(device).eval()
    columns: dict[str, list[Any]] = {}
    with (
        torch.inference_mode(),
        tqdm(total=len(frame), unit="row", desc="Predicting", file=sys.stderr, dynamic_ncols=True) as bar,
    ):
        for start in range(0, len(frame), batch_size):
            batch = [column[start : start + batch_size] for column in texts]  # one column, or a sentence pair
            try:
                predicted = task.predict(
                    batch, model=model, tokenizer=tokenizer, max_length=max_length, probabilities=probabilities
                )
            except ValueError as error:
                if start > 0:
                    raise
                # The task refuses an option before any work: the first batch fails, not the last.
                raise PredictError(
                    f"--probabilities: MODEL {source.description} is a {task.describe()} model: {error}"
                ) from None
            for name, values in predicted.items():
                columns.setdefault(name, []).extend(values)
            if start == 0:
                after_first_batch()
            bar.update(len(batch[0]))
    return pd.DataFrame(columns)


def _cell(value: Any) -> Any:
    """A table cell as a task reads it: text, or a list of words (JSON Lines and Parquet keep
    lists; Parquet's arrive as numpy arrays); None and NaN (missing cells) read as empty text."""
    if isinstance(value, str):
        return value
    if hasattr(value, "tolist") and not isinstance(value, (int, float)):  # numpy arrays and scalars
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [str(word) for word in value]
    return "" if value is None or value != value else str(value)


def _model_max_length(model: Any, tokenizer: Any) -> int | None:
    """The tokenizer's limit, else the model's position embeddings: longer inputs would not fit."""
    if tokenizer.model_max_length < _NO_LIMIT:
        return tokenizer.model_max_length
    return getattr(model.config, "max_position_embeddings", None)

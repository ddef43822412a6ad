"""Evaluation and prediction over a DataLoader, shared by the loop and Accelerate runners; scores,
predictions files and the files the task keeps of each evaluation, shared by every runner."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracker.plugin import (
    Outputs,
    Parts,
    Table,
    decoded,
    evaluation_files,
    evaluation_samples,
    generation_options,
    outputs_per_row,
)

# Pads rows of per-token (or per-step) outputs to one length, across batches and processes;
# a metric skips it: nothing padded is scored.
PAD = -100
# What a batch holds besides the inputs a model generates from: the targets, and the decoder's
# inputs made of them (as the Hugging Face Seq2SeqTrainer leaves them out).
NOT_GENERATION_INPUTS = ("labels", "decoder_input_ids", "decoder_attention_mask")
# The run tag through which MLflow's UI finds table artifacts (mlflow.log_table sets it), and
# the longest value a tag may hold: the newest tables that fit are listed.
LOGGED_TABLES_TAG, TAG_LIMIT = "mlflow.loggedArtifacts", 8000


@dataclass
class Predictions:
    predictions: Any  # one per row of the split's data (numpy, or what the task's `per_row` makes)
    scores: Any  # the score of each prediction
    references: Any  # what they are scored against (PAD where a split has none)
    loss: float | None

    @property
    def outputs(self) -> Outputs:
        return Outputs(self.predictions, self.scores, self.references)


def predict(
    model: Any, loader: Any, backend: Any, task: Any, has_labels: bool = True, progress: Any = None
) -> Predictions:
    """Run `model` over `loader` without gradients, decode its outputs as the task says and
    gather every process's rows, in order; `progress` (a tqdm bar) advances a batch at a time.
    The predictions are per encoded row (`per_row` makes them per row of the data)."""
    import torch

    model.eval()
    ignored = ignored_outputs(model)
    generation = generation_options(task)
    generated = None
    chunks: list[tuple[Any, ...]] = []
    with torch.no_grad():
        for batch in loader:
            if progress is not None:
                progress.update(1)
            rows = batch["input_ids"].shape[0]
            # References are the batch's `labels`; a task that trains on other targets (question
            # answering's start and end positions) scores against its data's own (`per_row`), and a
            # test split with hidden labels has none.
            labels = batch.get("labels")
            if labels is None:
                labels = torch.full((rows,), PAD, device=batch["input_ids"].device)
            with backend.autocast():
                outputs = model(**batch)
                if generation is not None:  # the loss from the references, the predictions generated
                    inputs = {key: value for key, value in batch.items() if key not in NOT_GENERATION_INPUTS}
                    generated = backend.unwrap(model).generate(**inputs, **generation)
            # The outputs after the loss, in order, as the Trainer hands them on: `(logits,)` for a
            # classifier, `(start_logits, end_logits)` for question answering; generated token ids.
            predictions, scores = decoded(
                task,
                (generated,)
                if generation is not None
                else tuple(value for key, value in outputs.items() if key not in ignored),
                labels,
            )
            # One copy of the batch loss per row: after gathering, the mean is weighted by rows.
            loss = outputs.get("loss") if has_labels else None
            losses = (loss.detach().float() if loss is not None else torch.zeros((), device=labels.device)).expand(rows)
            padded = tuple(backend.pad_across_processes(t, PAD) for t in (predictions, scores, labels))
            chunks.append(tuple(t.cpu() for t in backend.gather_for_metrics((*padded, losses))))
    model.train()
    predictions, scores, references, losses = (concatenated(parts).numpy() for parts in zip(*chunks, strict=True))
    return Predictions(predictions, scores, references, float(losses.mean()) if has_labels else None)


def per_row(result: Predictions, parts: Parts, split: str) -> Predictions:
    """The predictions of each row of the split's data, as the task brings its encoded rows'
    together (question answering: each question's answer from its windows)."""
    rows = outputs_per_row(parts.task, result.outputs, parts.data, split, parts.encoded[split], parts.encoder.tokenizer)
    return Predictions(rows.predictions, rows.scores, rows.references, result.loss)


def ignored_outputs(model: Any) -> set[str]:
    """The outputs no task is given, as the Trainer leaves them out: the loss, and what the model's
    config names (`keys_to_ignore_at_inference`, e.g. a decoder's cache)."""
    config = getattr(model, "module", model).config  # a model wrapped for several processes holds it
    return {"loss", *getattr(config, "keys_to_ignore_at_inference", ())}


def concatenated(tensors: Sequence[Any]) -> Any:
    """Batches of rows joined; rows of different lengths (per-token outputs) padded with PAD."""
    import torch

    widest = [max(sizes) for sizes in zip(*(t.shape[1:] for t in tensors), strict=True)]
    padded = []
    for tensor in tensors:
        missing = [size - have for size, have in zip(widest, tensor.shape[1:], strict=True)]
        if any(missing):
            pads = [amount for gap in reversed(missing) for amount in (0, gap)]
            tensor = torch.nn.functional.pad(tensor, pads, value=PAD)
        padded.append(tensor)
    return torch.cat(padded)


def score(result: Predictions, metrics: Sequence[Any], prefix: str) -> dict[str, float]:
    """`{prefix}_loss` and every configured metric, e.g. eval_loss, eval_accuracy, eval_f1."""
    values = {f"{prefix}_loss": result.loss} if result.loss is not None else {}
    for metric in metrics:
        for name, value in metric.compute(result.predictions, result.references).items():
            values[f"{prefix}_{name}"] = float(value)
    return values


def write_predictions(result: Predictions, data: Any, path: Path, split: str = "test") -> Path | None:
    """A CSV of a split's predictions: the row id (under the data's own id column name) and the
    task's prediction columns (for sequence classification: the label name, or value, and its
    score). None, and no file, for a task that predicts no columns of its own (a causal language
    model's generations are a table it makes: `evaluation_samples`)."""
    columns = data.task.prediction_columns(result.predictions, result.scores, result.references, data)
    if not columns:
        return None
    ids = data.ids.get(split) or range(len(data.splits[split]))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow([data.id_column, *columns])
        for row_id, *values in zip(ids, *columns.values(), strict=True):
            writer.writerow([row_id, *values])
    return path


def keep_evaluation_files(
    result: Predictions, parts: Parts, split: str, step: int, logger: Any, model: Any = None
) -> None:
    """The files the task keeps of an evaluation (question answering: the official predictions
    JSON; a generating task: a table of samples), with the predictions table beside them, as run
    artifacts: `evaluations/step-N/` for validation, the run's top folder for the test split
    (beside its predictions.csv). What the task generates itself with `model` (unwrapped: a
    causal language model's samples) joins them. Tables are listed in the run's tag of tables,
    which MLflow's UI reads to show them side by side across runs."""
    files = dict(evaluation_files(parts.task, result.outputs, parts.data, split))
    if model is not None:
        files |= _generated_samples(parts, model, split)
    if not files:
        return
    artifacts = f"evaluations/step-{step}" if split == "eval" else None
    folder = parts.output_dir / artifacts if artifacts is not None else parts.output_dir
    folder.mkdir(parents=True, exist_ok=True)
    tables = False
    for name, content in files.items():
        tables = tables or isinstance(content, Table)
        (folder / name).write_text(_file_text(content), encoding="utf-8")
        logger.log_artifact(folder / name, artifacts)
    written = write_predictions(result, parts.data, folder / "predictions.csv", split) if split == "eval" else None
    if written is not None:  # the test split's table is its predictions.csv
        logger.log_artifact(written, artifacts)
    if tables:
        logger.set_tags({LOGGED_TABLES_TAG: logged_tables(parts.output_dir, files)})


def _generated_samples(parts: Parts, model: Any, split: str) -> Mapping[str, Table]:
    import torch

    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return evaluation_samples(parts.task, model, parts.encoder.tokenizer, parts.data, split)
    finally:
        model.train(training)


def _file_text(content: str | Table) -> str:
    """A file's text; a table as MLflow writes one (mlflow.log_table): columns, and rows as lists."""
    if isinstance(content, str):
        return content
    return json.dumps(
        {"columns": list(content.columns), "data": [list(row) for row in content.rows]}, ensure_ascii=False
    )


def logged_tables(output_dir: Path, files: Mapping[str, str | Table]) -> str:
    """The tag's value: every table of the run so far (those of earlier evaluations are still in
    the run's folder, also after a resume), oldest first, as many of the newest as the tag holds."""
    names = [name for name, content in files.items() if isinstance(content, Table)]
    paths = [
        path.relative_to(output_dir).as_posix()
        for name in names
        for path in sorted(output_dir.glob(f"evaluations/step-*/{name}"), key=_step_of)
    ] + [name for name in names if (output_dir / name).is_file()]
    listed: list[dict[str, str]] = []
    for path in reversed(paths):
        entry = {"path": path, "type": "table"}
        if len(json.dumps([entry, *listed])) > TAG_LIMIT:
            break
        listed.insert(0, entry)
    return json.dumps(listed)


def _step_of(path: Path) -> int:
    return int(path.parent.name.removeprefix("step-"))

"""Evaluation and prediction over a DataLoader, shared by the loop and Accelerate runners; scores,
predictions files and the files the task keeps of each evaluation, shared by every runner."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracker.plugin import Outputs, Parts, evaluation_files, outputs_per_row

# Pads rows of per-token (or per-step) outputs to one length, across batches and processes;
# a metric skips it: nothing padded is scored.
PAD = -100


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
            # The outputs after the loss, in order, as the Trainer hands them on: `(logits,)` for a
            # classifier, `(start_logits, end_logits)` for question answering.
            predictions, scores = task.decode(tuple(value for key, value in outputs.items() if key not in ignored))
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
    rows = outputs_per_row(parts.task, result.outputs, parts.data, split, parts.encoded[split])
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


def write_predictions(result: Predictions, data: Any, path: Path, split: str = "test") -> Path:
    """A CSV of a split's predictions: the row id (under the data's own id column name) and the
    task's prediction columns (for sequence classification: the label name, or value, and its
    score)."""
    columns = data.task.prediction_columns(result.predictions, result.scores, result.references, data)
    ids = data.ids.get(split) or range(len(data.splits[split]))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow([data.id_column, *columns])
        for row_id, *values in zip(ids, *columns.values(), strict=True):
            writer.writerow([row_id, *values])
    return path


def keep_evaluation_files(result: Predictions, parts: Parts, split: str, step: int, logger: Any) -> None:
    """The files the task keeps of an evaluation (question answering: the official predictions
    JSON), with the predictions table beside them, as run artifacts: `evaluations/step-N/` for
    validation, the run's top folder for the test split (beside its predictions.csv)."""
    files = evaluation_files(parts.task, result.outputs, parts.data, split)
    if not files:
        return
    artifacts = f"evaluations/step-{step}" if split == "eval" else None
    folder = parts.output_dir / artifacts if artifacts is not None else parts.output_dir
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
        logger.log_artifact(folder / name, artifacts)
    if split == "eval":  # the test split's table is its predictions.csv
        logger.log_artifact(write_predictions(result, parts.data, folder / "predictions.csv", split), artifacts)

"""Evaluation and prediction over a DataLoader, shared by the loop and Accelerate runners."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Pads rows of per-token (or per-step) outputs to one length, across batches and processes;
# a metric skips it: nothing padded is scored.
PAD = -100


@dataclass
class Predictions:
    predictions: Any  # numpy, one per row (of any shape beyond the row), as the task decodes them
    scores: Any  # numpy, the score of each prediction
    references: Any  # numpy labels (PAD where a split has none)
    loss: float | None


def predict(
    model: Any, loader: Any, backend: Any, task: Any, has_labels: bool = True, progress: Any = None
) -> Predictions:
    """Run `model` over `loader` without gradients, decode its outputs as the task says and
    gather every process's rows, in order; `progress` (a tqdm bar) advances a batch at a time."""
    import torch

    model.eval()
    ignored = ignored_outputs(model)
    chunks: list[tuple[Any, ...]] = []
    with torch.no_grad():
        for batch in loader:
            if progress is not None:
                progress.update(1)
            # A test split with hidden labels arrives without a labels column: predictions only.
            labels = batch["labels"] if has_labels else torch.full_like(batch["input_ids"][:, 0], PAD)
            with backend.autocast():
                outputs = model(**batch)
            # The outputs after the loss, in order, as the Trainer hands them on: `(logits,)` for a
            # classifier, `(start_logits, end_logits)` for question answering.
            predictions, scores = task.decode(tuple(value for key, value in outputs.items() if key not in ignored))
            # One copy of the batch loss per row: after gathering, the mean is weighted by rows.
            losses = outputs.loss.detach().float() if has_labels else torch.zeros((), device=labels.device)
            losses = losses.expand(labels.shape[0])
            rows = tuple(backend.pad_across_processes(t, PAD) for t in (predictions, scores, labels))
            chunks.append(tuple(t.cpu() for t in backend.gather_for_metrics((*rows, losses))))
    model.train()
    predictions, scores, references, losses = (concatenated(parts).numpy() for parts in zip(*chunks, strict=True))
    return Predictions(predictions, scores, references, float(losses.mean()) if has_labels else None)


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


def write_predictions(result: Predictions, data: Any, path: Path) -> Path:
    """A CSV of the test split's predictions: the row id (under the data's own id column name) and
    the task's prediction columns (for sequence classification: the label name, or value, and its
    score)."""
    columns = data.task.prediction_columns(result.predictions, result.scores, result.references, data)
    ids = data.ids.get("test") or range(len(data.splits["test"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow([data.id_column, *columns])
        for row_id, *values in zip(ids, *columns.values(), strict=True):
            writer.writerow([row_id, *values])
    return path

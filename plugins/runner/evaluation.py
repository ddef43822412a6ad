"""Evaluation and prediction over a DataLoader, shared by the loop and Accelerate runners."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Predictions:
    predictions: Any  # numpy: class ids, or values for regression
    scores: Any  # numpy: probability of the predicted class, or the value for regression
    references: Any  # numpy labels (-1 where hidden)
    loss: float | None


def predict(
    model: Any, loader: Any, backend: Any, is_regression: bool, has_labels: bool = True, progress: Any = None
) -> Predictions:
    """Run `model` over `loader` without gradients and gather every process's rows, in order;
    `progress` (a tqdm bar) advances a batch at a time."""
    import torch

    model.eval()
    chunks: list[tuple[Any, ...]] = []
    with torch.no_grad():
        for batch in loader:
            if progress is not None:
                progress.update(1)
            # A test split with hidden labels arrives without a labels column: predictions only.
            labels = batch["labels"] if has_labels else torch.full_like(batch["input_ids"][:, 0], -1)
            with backend.autocast():
                outputs = model(**batch)
            logits = outputs.logits.float()
            if is_regression:
                predictions = scores = logits.squeeze(-1)
            else:
                scores, predictions = torch.softmax(logits, dim=-1).max(dim=-1)
            # One copy of the batch loss per row: after gathering, the mean is weighted by rows.
            losses = outputs.loss.detach().float() if has_labels else torch.zeros((), device=logits.device)
            losses = losses.expand(labels.shape[0])
            chunks.append(tuple(t.cpu() for t in backend.gather_for_metrics((predictions, scores, labels, losses))))
    model.train()
    predictions, scores, references, losses = (torch.cat(parts).numpy() for parts in zip(*chunks, strict=True))
    return Predictions(predictions, scores, references, float(losses.mean()) if has_labels else None)


def score(result: Predictions, metrics: Sequence[Any], prefix: str) -> dict[str, float]:
    """`{prefix}_loss` and every configured metric, e.g. eval_loss, eval_accuracy, eval_f1."""
    values = {f"{prefix}_loss": result.loss} if result.loss is not None else {}
    for metric in metrics:
        for name, value in metric.compute(result.predictions, result.references).items():
            values[f"{prefix}_{name}"] = float(value)
    return values


def write_predictions(
    result: Predictions, ids: Sequence[Any], label_names: Sequence[str] | None, id_column: str, path: Path
) -> Path:
    """A CSV with the row id (under the data's own id column name), predicted label name (or value
    for regression) and score, one row per test row."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow([id_column, "label", "score"])
        for row_id, prediction, row_score in zip(ids, result.predictions, result.scores, strict=True):
            label = label_names[int(prediction)] if label_names else float(prediction)
            writer.writerow([row_id, label, f"{float(row_score):.6f}"])
    return path

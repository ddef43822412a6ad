"""Experiment settings as MLflow params: flattened to dotted keys, limits kept. The caller hands
in a document whose secrets are already replaced (`Experiment.shown()`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

# MLflow's limits (mlflow.utils.validation): longer values are refused, not truncated.
MAX_VALUE_LENGTH = 6000
MAX_KEY_LENGTH = 250


def parameter_counts(model: Any) -> dict[str, int]:
    """The model's size, as the params `model.parameters` and `model.trainable_parameters` log it:
    every weight, and those training changes (all, or an adapter's few and the head's)."""
    parameters = list(model.parameters())
    return {
        "parameters": sum(p.numel() for p in parameters),
        "trainable_parameters": sum(p.numel() for p in parameters if p.requires_grad),
    }


def flatten(document: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """{"optimizer": {"lr": 5e-5}} -> ("optimizer.lr", 5e-5); None values are skipped."""
    for key, value in document.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from flatten(value, f"{dotted}.")
        elif value is not None:
            yield dotted, value


def as_params(document: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """MLflow params from a nested document, and the values too long for a param.

    Returns (params, overflow): overflow maps a key to its whole value, which the caller
    keeps as an artifact; the param itself then says where to find it.
    """
    params, overflow = {}, {}
    for key, value in flatten(document):
        text = _text(value)
        key = key[:MAX_KEY_LENGTH]
        if len(text) > MAX_VALUE_LENGTH:
            overflow[key] = text
            note = f"... (truncated: full value in artifact params/{key}.txt)"
            text = text[: MAX_VALUE_LENGTH - len(note)] + note
        params[key] = text
    return params, overflow


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_text(item) for item in value) + "]"
    return str(value)

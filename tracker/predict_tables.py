"""`xp predict`'s tables: the file of rows to predict read (in the format its extension names), the
text columns the model reads found in it, and the rows written back with their predictions."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tracker.predict_model import ModelSource, PredictError

# Table formats by file extension; the output's format is chosen the same way.
FORMATS = {".csv": "CSV", ".jsonl": "JSON Lines", ".ndjson": "JSON Lines", ".parquet": "Parquet"}
STDOUT = "-"  # --output - prints CSV
# Where a folder from elsewhere keeps its text (the usual single-text column names).
SINGLE_TEXT_COLUMNS = ("text", "sentence")


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
    """--text-columns, else the columns the model was trained on, else a lone `text`/`sentence` column
    (also for a model of one text column that the file does not have)."""
    have = ", ".join(map(str, columns))
    if option:
        if source.card.text_columns and len(option) != len(source.card.text_columns):
            raise PredictError(
                f"--text-columns {','.join(option)}: the model reads {len(source.card.text_columns)} "
                f"text column(s) ({', '.join(source.card.text_columns)}), not {len(option)}"
            )
        chosen = tuple(option)
    elif source.card.text_columns:
        chosen = source.card.text_columns
        lone = [name for name in SINGLE_TEXT_COLUMNS if name in columns]
        if len(chosen) == 1 and chosen[0] not in columns and len(lone) == 1:
            # A model of one text column (`sentence`, or a token task's `tokens`) reads a lone
            # `text` column: the usual way to hand it raw text.
            chosen = (lone[0],)
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
    """The predictions as CSV (also to standard output), JSON Lines or Parquet. A cell holding a
    list or a record (a token task's entities) stays one in JSON Lines and Parquet, and is written
    as JSON text in CSV."""
    if output == STDOUT:
        _as_text(frame).to_csv(sys.stdout, index=False)
        return
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = table_format(path, "output")
    if fmt == "CSV":
        _as_text(frame).to_csv(path, index=False)
    elif fmt == "JSON Lines":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        frame.to_parquet(path, index=False)


def _as_text(frame: Any) -> Any:
    """The frame with list and record cells as JSON text, which CSV can hold (pandas would write
    Python's spelling of them). Lists read from Parquet arrive as numpy arrays."""
    import json

    import numpy as np

    def structured(value: Any) -> bool:
        return isinstance(value, (list, dict, np.ndarray))

    def as_json(value: Any) -> Any:
        if not structured(value):
            return value
        return json.dumps(value.tolist() if isinstance(value, np.ndarray) else value, ensure_ascii=False)

    names = [name for name in frame.columns if frame[name].dtype == object and frame[name].map(structured).any()]
    return frame.assign(**{name: frame[name].map(as_json) for name in names}) if names else frame

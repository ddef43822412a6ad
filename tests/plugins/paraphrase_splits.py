"""CSV splits cut from experiments/data/paraphrase, for the runner tests (the fixtures in conftest.py)."""

from __future__ import annotations

import csv
from pathlib import Path

PARAPHRASE = Path(__file__).resolve().parents[2] / "experiments" / "data" / "paraphrase" / "train.csv"
LABELS = {"0": "different", "1": "paraphrase"}
COLUMNS = ["idx", "sentence1", "sentence2", "label"]


def read_rows() -> list[dict[str, str]]:
    with PARAPHRASE.open(encoding="utf-8") as file:
        return list(csv.DictReader(file))


def write_split(path: Path, rows: list[dict[str, str]], label: str | None = None) -> str:
    """A CSV split, labels spelled as names; `label` replaces every row's label (a name, or "-1"
    for a hidden label)."""
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([row["idx"], row["sentence1"], row["sentence2"], label or LABELS[row["label"]]])
    return str(path)


def write_split_as_read(path: Path, rows: list[dict[str, str]]) -> str:
    """A CSV split with the rows' labels as the file has them (0 and 1)."""
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({key: row[key] for key in COLUMNS} for row in rows)
    return str(path)

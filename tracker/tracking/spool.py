"""Tracking records on disk: what a run logged while its tracking store could not take it.

A spool is a folder under the run's output folder, `<output_dir>/<run name>/tracking-spool/<id>/`:
`records.jsonl` (one record a line, in the order the run logged them), `sent` (how far the store
has them), `state.json` (the MLflow run they belong to, the store's URI with its password masked)
and `files/` (copies of the artifacts they log, whose originals may be temporary). The tracking
process fills it while the store is unreachable and empties it when the store is back; one left
behind (the store never came back before the run ended) is sent by `xp sync`. Only one process
sends a spool at a time (`lock`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from pathlib import Path
from typing import Any

RECORDS, SENT, STATE, FILES, LOCK = "records.jsonl", "sent", "state.json", "files", "lock"
SPOOLS = "tracking-spool"  # the folder of a run's spools, in its output folder


def encode(record: dict[str, Any]) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    return json.loads(line)


class SpoolBusy(Exception):
    """Another process is sending this spool."""


class Spool:
    def __init__(self, folder: Path):
        self.folder = folder
        self._lock: Any = None  # the lock file, open while this process sends the spool

    @property
    def exists(self) -> bool:
        return (self.folder / RECORDS).exists()

    def append(self, records: list[dict[str, Any]]) -> None:
        """Add `records` durably (fsync): the run may die right after. Artifact files are copied in."""
        (self.folder / FILES).mkdir(parents=True, exist_ok=True)
        with (self.folder / RECORDS).open("ab") as file:
            for record in records:
                file.write(encode(self._with_own_files(record)))
            file.flush()
            os.fsync(file.fileno())

    def _with_own_files(self, record: dict[str, Any]) -> dict[str, Any]:
        if record.get("kind") not in ("artifact", "console") or Path(record["path"]).is_relative_to(self.folder):
            return record
        source = Path(record["path"])
        copy = self.folder / FILES / str(record["seq"]) / source.name
        copy.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, copy, dirs_exist_ok=True)
        elif source.exists():
            shutil.copy2(source, copy)
        return {**record, "path": str(copy)}

    def unsent(self) -> list[tuple[int, dict[str, Any]]]:
        """The records the store does not have yet, each with the offset just past it. A last
        line cut short (the process died while writing it) is not a record."""
        path = self.folder / RECORDS
        if not path.exists():
            return []
        offset = self.sent_offset()
        found = []
        with path.open("rb") as file:
            file.seek(offset)
            for line in file:
                if not line.endswith(b"\n"):
                    break
                offset += len(line)
                found.append((offset, decode(line)))
        return found

    def sent_offset(self) -> int:
        with contextlib.suppress(FileNotFoundError, ValueError):
            return int((self.folder / SENT).read_text())
        return 0

    def mark_sent(self, offset: int) -> None:
        _replace(self.folder / SENT, str(offset))

    def save_state(self, state: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        _replace(self.folder / STATE, json.dumps(state, indent=1))

    def state(self) -> dict[str, Any]:
        with contextlib.suppress(FileNotFoundError, ValueError):
            return json.loads((self.folder / STATE).read_text())
        return {}

    def remove(self) -> None:
        lock, self._lock = self._lock, None
        shutil.rmtree(self.folder, ignore_errors=True)
        if lock is not None:
            lock.close()
        with contextlib.suppress(OSError):  # the run's spools folder, when this was its last spool
            self.folder.parent.rmdir()

    def claim(self) -> None:
        """This process alone sends the spool from now until it exits; SpoolBusy when another
        process does (the run's tracking process, still trying its store)."""
        if self._lock is not None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        lock = (self.folder / LOCK).open("a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise SpoolBusy(str(self.folder)) from None
        self._lock = lock  # held open: the lock goes with the process


def spools_under(folder: Path) -> list[Spool]:
    """Every spool in `folder`: a spool itself, a run's output folder, or a folder of them."""
    if (folder / RECORDS).exists():
        return [Spool(folder)]
    return [Spool(path.parent) for path in sorted(folder.glob(f"**/{SPOOLS}/*/{RECORDS}"))]


def _replace(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)

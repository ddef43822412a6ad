"""The run's console, copied to a file (the `console.log` artifact) with its secrets masked."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tracker.redact import Redactor


class Tee:
    """A text stream that also copies everything written to a file (the run's console log), with
    the experiment's secrets masked in both. Each write is masked on its own: a secret split
    across two writes would slip through, but print() and loggers write whole messages."""

    def __init__(self, stream: Any, file: Any, redactor: Redactor):
        self.stream, self.file, self.redactor = stream, file, redactor

    def write(self, text: str) -> int:
        shown = self.redactor.text(text)
        self.file.write(shown)
        self.stream.write(shown)
        return len(text)

    def flush(self) -> None:
        self.file.flush()
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


class ConsoleLog:
    def __init__(self, path: Path):
        self.path = path
        self.file = path.open("w", encoding="utf-8")

    def flush(self) -> None:
        self.file.flush()


@contextlib.contextmanager
def console_copy(path: Path, redactor: Redactor) -> Iterator[ConsoleLog]:
    log = ConsoleLog(path)
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = Tee(stdout, log.file, redactor), Tee(stderr, log.file, redactor)
    try:
        yield log
    finally:
        sys.stdout, sys.stderr = stdout, stderr
        log.file.close()

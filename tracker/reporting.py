"""Where a runner's numbers go: a small logger interface, the console, and fan-out to several."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

import click


class RunLogger(Protocol):
    """What runners call while training. Steps are optimizer steps in every runner."""

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None: ...

    def log_artifact(self, path: Path, folder: str | None = None) -> None: ...

    def set_tags(self, tags: Mapping[str, str]) -> None: ...


class NullLogger:
    """Logs nothing: tracking off, or a process other than the main one."""

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        pass

    def log_artifact(self, path: Path, folder: str | None = None) -> None:
        pass

    def set_tags(self, tags: Mapping[str, str]) -> None:
        pass


class ConsoleLogger(NullLogger):
    """Prints evaluation results as they come; training metrics are the progress bar's job."""

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        shown = {k: v for k, v in metrics.items() if k.startswith(("eval_", "test_"))}
        if shown:
            click.echo(f"step {step}: " + "  ".join(f"{k} {v:.4f}" for k, v in shown.items()), err=True)


class FanOut:
    """Sends every call to each of several loggers."""

    def __init__(self, loggers: Sequence[Any]):
        self.loggers = list(loggers)

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        for logger in self.loggers:
            logger.log_metrics(metrics, step)

    def log_artifact(self, path: Path, folder: str | None = None) -> None:
        for logger in self.loggers:
            logger.log_artifact(path, folder)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        for logger in self.loggers:
            logger.set_tags(tags)

"""Where a runner's numbers go: a small logger interface, the console, and fan-out to several."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from tracker.components import TrackedRun
from tracker.console import Console


class RunLogger(Protocol):
    """What runners call while training. Steps are optimizer steps in every runner."""

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None: ...

    def log_artifact(self, path: Path, folder: str | None = None) -> None: ...

    def set_tags(self, tags: Mapping[str, str]) -> None: ...

    def flush(self) -> None:
        """Return once everything logged so far is stored: a checkpoint counts only after this."""

    def log_model(self, folder: Path, card: Any, export: Any, step: int) -> Any:
        """Log the model saved in `folder` as `export` (tracker.components.Export) says; its
        LoggedModel (tracker.model_export), or None when not tracked."""

    @property
    def tracked_run(self) -> TrackedRun | None: ...


class NullLogger:
    """Logs nothing: tracking off, or a process other than the main one."""

    tracked_run = None

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        pass

    def log_artifact(self, path: Path, folder: str | None = None) -> None:
        pass

    def set_tags(self, tags: Mapping[str, str]) -> None:
        pass

    def flush(self) -> None:
        pass

    def log_model(self, folder: Path, card: Any, export: Any, step: int) -> Any:
        return None


class ConsoleLogger(NullLogger):
    """Prints each evaluation as one line; training metrics are the progress bar's job."""

    def __init__(self, console: Console | None = None):
        self.console = console if console is not None else Console()

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        for split in ("eval", "test"):
            shown = {k[len(split) + 1 :]: v for k, v in metrics.items() if k.startswith(f"{split}_")}
            if shown:
                self.console.say(
                    "evaluation" if split == "eval" else "test",
                    f"step {step}: " + "  ".join(f"{k} {v:.4f}" for k, v in shown.items()),
                )


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

    def flush(self) -> None:
        for logger in self.loggers:
            logger.flush()

    def log_model(self, folder: Path, card: Any, export: Any, step: int) -> Any:
        logged = [logger.log_model(folder, card, export, step) for logger in self.loggers]
        return next((model for model in logged if model is not None), None)

    @property
    def tracked_run(self) -> TrackedRun | None:
        return next((logger.tracked_run for logger in self.loggers if logger.tracked_run), None)

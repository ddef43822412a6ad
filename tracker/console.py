"""What a person sees while xp runs: one line per phase, a progress bar for training and one for
each evaluation, and the summary. `-q` keeps only the summary; `-v` lets the libraries speak.

Lines go through `tqdm.write`, so they never glue onto a progress bar. Everything goes to
stderr except the summary table of `xp run`, which is the command's output.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

QUIET, NORMAL, VERBOSE = -1, 0, 1
# Library loggers that chat at INFO (MLflow's "Creating initial MLflow database tables", its
# registry messages) or warn about things xp already handles (model cards, schema hints).
_CHATTY_LOGGERS = ("mlflow", "alembic", "urllib3", "filelock", "huggingface_hub", "accelerate")


@dataclass(frozen=True)
class Console:
    """How much to show. The default shows phases and progress, and hides library chatter."""

    verbosity: int = NORMAL

    @property
    def shows_progress(self) -> bool:
        return self.verbosity > QUIET

    def say(self, phase: str, text: str) -> None:
        """One phase line, e.g. `data      240 train, 60 eval rows; labels ...`."""
        if self.verbosity > QUIET:
            self.write(f"{phase:<11}{text}")

    def write(self, text: str) -> None:
        from tqdm.auto import tqdm

        tqdm.write(text, file=sys.stderr)

    def progress(self, total: int, description: str, *, leave: bool = True, enabled: bool = True) -> Any:
        """A progress bar on stderr, or a silent stand-in when this console shows none."""
        from tqdm.auto import tqdm

        return tqdm(
            total=total,
            desc=description,
            leave=leave,
            dynamic_ncols=True,
            file=sys.stderr,
            disable=not (enabled and self.shows_progress),
        )

    @contextlib.contextmanager
    def hushed(self) -> Iterator[None]:
        """Unless verbose: what a library prints to stderr itself, not through logging, is
        dropped while this lasts (MLflow's "Successfully registered model")."""
        if self.verbosity >= VERBOSE:
            yield
            return
        with contextlib.redirect_stderr(io.StringIO()):
            yield

    @contextlib.contextmanager
    def libraries_quiet(self) -> Iterator[None]:
        """Unless verbose: library INFO lines, warnings and load reports are hidden while this
        lasts, and restored after (a notebook keeps its own settings)."""
        if self.verbosity >= VERBOSE:
            yield
            return
        import transformers
        from datasets.utils import logging as datasets_logging

        loggers = {name: logging.getLogger(name).level for name in _CHATTY_LOGGERS}
        transformers_level, datasets_level = (transformers.logging.get_verbosity(), datasets_logging.get_verbosity())
        transformers_bars = transformers.utils.logging.is_progress_bar_enabled()
        datasets_bars = datasets_logging.is_progress_bar_enabled()
        environment = {name: os.environ.get(name) for name in _QUIET_ENVIRONMENT}
        try:
            for name in _CHATTY_LOGGERS:
                logging.getLogger(name).setLevel(logging.ERROR)
            transformers.logging.set_verbosity_error()  # the weights load report, deprecation notes
            transformers.utils.logging.disable_progress_bar()  # "Loading weights", "Writing model shards"
            datasets_logging.set_verbosity_error()
            datasets_logging.disable_progress_bar()  # "Tokenizing train", "Generating train split"
            os.environ.update(_QUIET_ENVIRONMENT)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield
        finally:
            for name, level in loggers.items():
                logging.getLogger(name).setLevel(level)
            transformers.logging.set_verbosity(transformers_level)
            datasets_logging.set_verbosity(datasets_level)
            if transformers_bars:
                transformers.utils.logging.enable_progress_bar()
            if datasets_bars:
                datasets_logging.enable_progress_bar()
            for name, value in environment.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


# MLflow reads the first when it is imported (it sets its loggers' level then), the second at
# each download ("Downloading artifacts" bars).
_QUIET_ENVIRONMENT = {"MLFLOW_LOGGING_LEVEL": "ERROR", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}

"""Problems with an experiment are data until the edge: collected, then printed as one list."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

# Exit code for a bad experiment (click uses 2 for bad usage too); 1 is for failed runs.
EXIT_BAD_INPUT = 2
# Exit code of a command stopped by Ctrl-C or SIGTERM (128 + SIGINT, as a shell reports it).
EXIT_INTERRUPTED = 130


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with an experiment file, located as precisely as we can."""

    file: str
    section: str | None
    key: str | None
    message: str

    def __str__(self) -> str:
        where = self.file + (":" if self.section or self.key else "")
        if self.section:
            where += f" [{self.section}]"
        if self.key:
            where += f" {self.key}"
        return f"{where}: {self.message}"


class ExperimentError(Exception):
    """Raised at the API edge when an experiment has problems; carries all of them."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class BuildError(Exception):
    """Raised by a plugin factory for input that only building can reveal (a missing column,
    a checkpoint that does not exist). `key` names the offending key of the plugin's section."""

    def __init__(self, key: str | None, message: str):
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}" if key else message)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """` (did you mean "x"?)` when a choice is close to `word`, else an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


def choices_text(choices: Iterable[str]) -> str:
    return ", ".join(sorted(choices)) or "(none registered)"

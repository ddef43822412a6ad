"""Reading experiment files: TOML text in, a plain nested dict out, with `--set` overrides applied.

Pure and light: no plugin, no heavy import. Checking the dict against the plugins is
`tracker.validate`'s job.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

from tracker.errors import Problem


@dataclass(frozen=True)
class Override:
    """One `--set section.key=value`: a dotted path and a value parsed as TOML."""

    path: tuple[str, ...]
    value: Any
    text: str


@dataclass(frozen=True)
class RawExperiment:
    """An experiment file as written (`text`) and as parsed with overrides applied (`data`)."""

    path: Path
    text: str
    data: dict[str, Any]
    overrides: tuple[str, ...] = ()


def parse_override(text: str) -> Override:
    """`optimizer.lr=3e-5` -> Override(("optimizer", "lr"), 3e-05).

    The value is parsed as a TOML value, so numbers, booleans, arrays and inline tables keep
    their types; a bare word that is not valid TOML (`model.checkpoint=bert-base-uncased`) is
    taken as a string, which is what the shell user meant.
    """
    dotted, sep, value_text = text.partition("=")
    path = tuple(part.strip() for part in dotted.split("."))
    if not sep or len(path) < 2 or not all(path):
        raise ValueError(f'--set {text!r}: expected "section.key=value", e.g. optimizer.lr=3e-5')
    try:
        value = tomllib.loads(f"value = {value_text.strip()}")["value"]
    except tomllib.TOMLDecodeError:
        value = value_text.strip()
    return Override(path, value, text)


def apply_overrides(data: dict[str, Any], overrides: Iterable[Override]) -> dict[str, Any]:
    """A copy of `data` with each override set, creating tables on the way as needed."""
    result = _deep_copy(data)
    for override in overrides:
        table = result
        for part in override.path[:-1]:
            if not isinstance(table.get(part), dict):
                table[part] = {}
            table = table[part]
        table[override.path[-1]] = override.value
    return result


def read_experiment(path: Path, overrides: Iterable[Override] = ()) -> tuple[RawExperiment | None, list[Problem]]:
    """Read and parse one file. A missing file or malformed TOML is a problem, not an exception."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, [Problem(name, None, None, "file not found")]
    except IsADirectoryError:
        return None, [Problem(name, None, None, "is a directory, expected a .toml file")]
    except (OSError, UnicodeDecodeError) as error:
        return None, [Problem(name, None, None, f"cannot read file: {error}")]
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        return None, [Problem(name, None, None, f"invalid TOML: {_toml_error_text(error)}")]
    overrides = tuple(overrides)
    data = apply_overrides(data, overrides)
    return RawExperiment(path, text, data, tuple(o.text for o in overrides)), []


def _toml_error_text(error: tomllib.TOMLDecodeError) -> str:
    # tomllib's message already ends in "(at line L, column C)"; newer versions also expose
    # lineno/colno, which we prefer so the wording does not depend on the Python version.
    line, column = getattr(error, "lineno", None), getattr(error, "colno", None)
    message = getattr(error, "msg", None) or str(error)
    if line is not None and "line" not in message:
        message += f" (at line {line}, column {column})"
    return message


def _deep_copy(data: dict[str, Any]) -> dict[str, Any]:
    return {key: _deep_copy(value) if isinstance(value, dict) else value for key, value in data.items()}

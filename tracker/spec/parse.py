"""Reading experiment files: TOML text in, a plain nested dict out, with `--set` overrides applied.

Pure and light: no plugin, no heavy import. Checking the dict against the plugins is
`tracker.spec.check`'s job.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

from tracker.errors import Problem

# Experiment files are a few KiB; anything this large is a mistake (a data file passed by accident).
MAX_FILE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Override:
    """One `--set section.key=value`: a dotted path and a value parsed as TOML."""

    path: tuple[str, ...]
    value: Any
    text: str


@dataclass(frozen=True)
class Unset:
    """One `--unset section.key`: a dotted path to remove, so the key takes its default."""

    path: tuple[str, ...]
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
    except (tomllib.TOMLDecodeError, RecursionError):
        value = value_text.strip()
    return Override(path, value, text)


def parse_unset(text: str) -> Unset:
    """`optimizer.weight_decay` -> Unset(("optimizer", "weight_decay"))."""
    path = tuple(part.strip() for part in text.split("."))
    if len(path) < 2 or not all(path):
        raise ValueError(f'--unset {text!r}: expected "section.key", e.g. optimizer.weight_decay')
    return Unset(path, text)


def apply_unsets(data: dict[str, Any], unsets: Iterable[Unset]) -> tuple[dict[str, Any], list[str]]:
    """A copy of `data` without the unset keys, and the paths that named no key of the file."""
    result, missing = _deep_copy(data), []
    for unset in unsets:
        table: object = result  # a key on the way may hold a value, not a table
        for part in unset.path[:-1]:
            table = table.get(part) if isinstance(table, dict) else None
        if isinstance(table, dict) and unset.path[-1] in table:
            del table[unset.path[-1]]
        else:
            missing.append(unset.text)
    return result, missing


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


def read_experiment(
    path: Path, overrides: Iterable[Override] = (), unsets: Iterable[Unset] = ()
) -> tuple[RawExperiment | None, list[Problem]]:
    """Read and parse one file. A missing, huge, binary or malformed file is a problem, not an exception."""
    name = str(path)
    try:
        with path.open("rb") as file:
            content = file.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return None, [Problem(name, None, None, "file not found")]
    except IsADirectoryError:
        return None, [Problem(name, None, None, "is a directory, expected a .toml file")]
    except OSError as error:
        return None, [Problem(name, None, None, f"cannot read file: {error.strerror or error}")]
    if len(content) > MAX_FILE_BYTES:
        return None, [
            Problem(
                name,
                None,
                None,
                f"larger than {MAX_FILE_BYTES // 1024} KiB: an experiment file "
                "is a short text; data belongs in the dataset's files",
            )
        ]
    if b"\0" in content:
        return None, [Problem(name, None, None, "binary content: expected a TOML text file")]
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as error:
        return None, [Problem(name, None, None, f"not UTF-8 text (byte {error.start}): expected a TOML text file")]
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        return None, [Problem(name, None, None, f"invalid TOML: {_toml_error_text(error)}")]
    except RecursionError:  # tomllib recurses into nested arrays and inline tables
        return None, [Problem(name, None, None, "invalid TOML: arrays or tables nested too deeply")]
    unsets, overrides = tuple(unsets), tuple(overrides)
    data, missing = apply_unsets(data, unsets)
    problems = [
        Problem(name, unset.split(".")[0], ".".join(unset.split(".")[1:]), "--unset names a key this file does not set")
        for unset in missing
    ]
    data = apply_overrides(data, overrides)
    applied = tuple(f"--unset {u.text}" for u in unsets) + tuple(o.text for o in overrides)
    return RawExperiment(path, text, data, applied), problems


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

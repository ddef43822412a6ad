"""`xp init`, reading: the rows of a data folder, file or hub dataset, read by a dataset plugin
that writes its own section (`@starter`), which asks the task which columns to use
(`Task.propose`). Nothing here knows how data is read or what a task's targets are."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tracker.errors import BuildError
from tracker.registry import Registry
from tracker.task import Starter

# The options of `xp init` a plugin's BuildError may name, by the key it names.
OPTIONS = {"text_columns": "--text-columns", "label_column": "--label-column", "config": "--config"}


class InitError(Exception):
    """Why no starter experiment can be written, in one line for the person who asked."""


def experiment_name(source: str, config: str | None = None) -> str:
    """A name for the experiment and its file: the folder's (or file's stem), or the hub id's last part."""
    local = Path(source).expanduser()
    if local.is_file():
        name = local.stem
    elif local.exists():
        name = local.resolve().name
    else:
        name = source.rstrip("/").rsplit("/", 1)[-1] + (f"-{config}" if config else "")
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "experiment"


def task_of(registry: Registry, name: str | None) -> tuple[str, Any]:
    """The task `xp init --task` names (default: the registry's) and its name, built with its
    defaults."""
    name = name or registry.defaults.get("task")
    component = registry.get("task", name) if name else None
    if component is None:
        installed = ", ".join(registry.names("task")) or "none"
        raise InitError(f'--task: no task "{name}" is installed (installed: {installed}; see xp plugins --kind task)')
    required = [key for key, declared in component.spec.keys.items() if declared.required]
    if required:  # nothing here knows what to give them
        raise InitError(f'--task: "{name}" has required keys ({", ".join(required)}); write its [task] section by hand')
    return component.name, component.factory()


def propose(
    registry: Registry,
    source: str,
    task: Any,
    config: str | None = None,
    text_columns: list[str] | None = None,
    label_column: str | None = None,
) -> Starter:
    """The [dataset] section for `source` from the first dataset plugin that reads it, with the
    columns and metrics `task` proposes for its rows. A plugin that cannot read it says why;
    that is the answer only when no other plugin reads it (a SQuAD folder is JSON that the
    general `hf` plugin finds no columns in, and the `squad` plugin reads)."""
    given = {"text_columns": text_columns, "label_column": label_column, "config": config}
    first_problem: InitError | None = None
    for name in registry.names("dataset"):
        starter = registry.components["dataset"][name].spec.starter
        if starter is None:
            continue
        try:
            found = starter(source, config, task, text_columns, label_column)
        except BuildError as error:
            option = OPTIONS.get(error.key or "")
            named = option and given.get(error.key or "")
            first_problem = first_problem or InitError(f"{option}: {error.message}" if named else error.message)
            continue
        if found is not None:
            return found
    if first_problem is not None:
        raise first_problem
    local = Path(source).expanduser()
    raise InitError(
        f'no folder or file "{source}" here (resolved to {local.resolve()}), and no dataset plugin '
        'reads it as a dataset id (a hub dataset: "name" or "org/name")'
    )

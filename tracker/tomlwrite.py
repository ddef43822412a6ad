"""Writing a resolved experiment back as TOML with tomlkit (the stdlib reads TOML but cannot write it)."""

from __future__ import annotations

from typing import Any

import tomlkit
from tomlkit.items import Item, Table


def dumps(document: dict[str, Any]) -> str:
    """A TOML document from nested dicts: a non-empty dict becomes a [table] after its parent's keys,
    a dict inside an array or an empty one an inline table, and a key whose value is None a comment
    (TOML has no null)."""
    written = tomlkit.document()
    for name, table in document.items():
        written.append(name, _table(table))
    return written.as_string()


def _table(table: dict[str, Any]) -> Table:
    # Always a [header], even for a table of tables only; subtables last, so the comments for
    # unset keys stay under the header of the table they belong to.
    written = tomlkit.table(is_super_table=False)
    for key, value in table.items():
        if value is None:
            written.add(tomlkit.comment(f"{tomlkit.key(key).as_string()} is not set"))
        elif not (isinstance(value, dict) and value):
            written.append(key, item(value))
    subtables = {key: value for key, value in table.items() if isinstance(value, dict) and value}
    if subtables and not written.value.body:  # a header alone: a blank line before its first subtable
        written.add(tomlkit.nl())
    for key, value in subtables.items():
        written.append(key, _table(value))
    return written


def item(value: Any) -> Item:
    """One TOML value; dicts are inline tables (their None values left out), tuples arrays."""
    if isinstance(value, dict):
        inline = tomlkit.inline_table()
        for key, inner in value.items():
            if inner is not None:
                inline.append(key, item(inner))
        return inline
    if isinstance(value, (list, tuple)):
        array = tomlkit.array()
        for inner in value:
            array.append(item(inner))
        return array
    if isinstance(value, (bool, int, float, str)):
        return tomlkit.item(value)
    raise TypeError(f"cannot write {type(value).__name__} as TOML")

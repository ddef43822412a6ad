"""Writing a resolved experiment back as TOML (the stdlib reads TOML but cannot write it)."""
from __future__ import annotations

import json
import math
from typing import Any


def dumps(document: dict[str, Any]) -> str:
    """A TOML document from nested dicts; a key whose value is None is shown as a comment."""
    blocks = [_table([name], table) for name, table in document.items()]
    return "\n".join(blocks)


def _table(path: list[str], table: dict[str, Any]) -> str:
    lines = [f"[{'.'.join(_key(part) for part in path)}]"]
    subtables = []
    for key, value in table.items():
        if isinstance(value, dict) and value:
            subtables.append((key, value))
        elif value is None:
            lines.append(f"# {_key(key)} is not set")
        else:
            lines.append(f"{_key(key)} = {_value(value)}")
    text = "\n".join(lines) + "\n"
    for key, value in subtables:
        text += "\n" + _table([*path, key], value)
    return text


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        # A JSON string is a TOML basic string, except that TOML also forbids a raw DEL.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items() if v is not None) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _key(key: str) -> str:
    bare = key and all(c.isalnum() or c in "-_" for c in key) and key.isascii()
    return key if bare else json.dumps(key)

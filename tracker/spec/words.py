"""Words for schemas and values, as error messages, `xp plugins` and the docs show them.

Types are described from their JSON Schema (what pydantic derives from a key's annotation), so
a bound declared once reads the same in an error, in the plugin list and in `xp schema`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_TYPES = {
    "number": "a number",
    "integer": "an integer",
    "string": "a string",
    "boolean": "true or false",
    "null": "nothing",
}
_BOUNDS = (("exclusiveMinimum", ">"), ("minimum", ">="), ("exclusiveMaximum", "<"), ("maximum", "<="))


def describe_schema(schema: Mapping[str, Any]) -> str:
    """`{"type": "number", "exclusiveMinimum": 0}` -> "a number > 0"."""
    if "const" in schema:
        return _quote(schema["const"])
    if "enum" in schema:
        return "one of " + ", ".join(_quote(v) for v in schema["enum"])
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        words = [describe_schema(option) for option in options if option.get("type") != "null"]
        return " or ".join(_dedupe(words)) if words else "nothing"
    kind = schema.get("type")
    if kind == "array":
        return _array(schema)
    if kind == "object":
        return _table(schema)
    if kind not in _TYPES:
        return "any value"
    noun = _TYPES[kind]
    if kind == "string" and schema.get("minLength") == 1:
        noun = "a non-empty string"
    bounds = [f"{sign} {format_value(schema[name])}" for name, sign in _BOUNDS if name in schema]
    if len(bounds) == 2 and bounds[0][0] == ">" and bounds[1][0] == "<":  # "in [0, 1)" reads better
        low, high = _BOUNDS_BY_SIGN[bounds[0].split()[0]], _BOUNDS_BY_SIGN[bounds[1].split()[0]]
        return f"{noun} in {low}{bounds[0].split()[1]}, {bounds[1].split()[1]}{high}"
    return " ".join([noun, *bounds]) if bounds else noun


_BOUNDS_BY_SIGN = {">": "(", ">=": "[", "<": ")", "<=": "]"}


def _array(schema: Mapping[str, Any]) -> str:
    prefix = schema.get("prefixItems")
    if prefix:
        return f"an array of {len(prefix)} ({', '.join(describe_schema(item) for item in prefix)})"
    items = _plural(describe_schema(schema.get("items", {})))
    low, high = schema.get("minItems"), schema.get("maxItems")
    if low and high:
        size = f" ({low} item{'s' if low > 1 else ''})" if low == high else f" ({low} to {high} items)"
    elif low:
        size = f" (at least {low})"
    elif high:
        size = f" (at most {high})"
    else:
        size = ""
    return f"an array of {items}{size}"


def _table(schema: Mapping[str, Any]) -> str:
    values = schema.get("additionalProperties")
    names = schema.get("propertyNames", {}).get("enum")
    text = f"a table of {_plural(describe_schema(values))}" if isinstance(values, dict) and values else "a table"
    return f"{text} (keys: {', '.join(names)})" if names else text


def _dedupe(words: list[str]) -> list[str]:
    return list(dict.fromkeys(words))


def describe_value(value: Any) -> str:
    """How a TOML value reads in an error: strings quoted, tables and arrays named."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _quote(value if len(value) <= 80 else value[:77] + "...")
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, (list, tuple)):
        text = format_value(value)
        return f"an array {text}" if len(text) < 40 else f"an array of {len(value)} items"
    return format_value(value)


def format_value(value: Any) -> str:
    """A value written as TOML would write it (for messages and `xp plugins`)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {format_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _quote(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else format_value(value)


def _plural(text: str) -> str:
    # "an integer >= 1" -> "integers >= 1", "a string or an array of strings" -> "strings or arrays of strings".
    if text == "true or false":
        return "booleans"
    if text.startswith("one of"):
        return text
    if " or " in text:
        return " or ".join(_plural(part) for part in text.split(" or "))
    if text.startswith(("an array of ", "a table of ")):
        container, _, items = text.partition(" of ")
        return f"{_plural(container)} of {items}"
    for article in ("an ", "a "):
        if text.startswith(article):
            words = text[len(article) :].split(" ")
            for index, word in enumerate(words):  # "a non-empty string" -> "non-empty strings"
                if word in _NOUNS:
                    words[index] = word + "s"
                    break
            return " ".join(words)
    return text


_NOUNS = ("number", "integer", "string", "array", "table", "value")

"""A factory's signature read as the schema of its TOML section, and values checked against it.

Keyword-only parameters are keys; their defaults make them optional; their annotations are
the expected TOML types. Annotations are evaluated one by one so that a plugin may annotate
its positional (runner-supplied) parameters with heavy types it never imports at run time.
"""
from __future__ import annotations

import inspect
import sys
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable, Literal, Union

REQUIRED = inspect.Parameter.empty


@dataclass(frozen=True)
class Key:
    """One accepted key of a section."""

    name: str
    annotation: Any  # a typing object, or Any when unannotated
    default: Any  # REQUIRED when the key must be given

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def type_text(self) -> str:
        return describe_type(self.annotation)


def keys_of(factory: Callable) -> dict[str, Key]:
    """The section schema of `factory`: its keyword-only parameters, in order."""
    keys = {}
    for parameter in inspect.signature(factory).parameters.values():
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY:
            annotation = _evaluate(parameter.annotation, factory)
            keys[parameter.name] = Key(parameter.name, annotation, parameter.default)
    return keys


def positional_names(factory: Callable) -> list[str]:
    """The parameters a runner supplies (everything before the keyword-only ones)."""
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in inspect.signature(factory).parameters.values() if p.kind in kinds]


def _evaluate(annotation: Any, factory: Callable) -> Any:
    if annotation is inspect.Parameter.empty:
        return Any
    if isinstance(annotation, str):
        # A function's own globals; for a class (a dataclass used as a factory), its module's.
        module = sys.modules.get(getattr(factory, "__module__", ""), None)
        namespace = {**vars(typing), **vars(module or typing),
                     **getattr(inspect.unwrap(factory), "__globals__", {})}
        try:
            return eval(annotation, namespace)  # noqa: S307 - a plugin's own annotation text
        except Exception:  # an annotation we cannot resolve is not checked, like a missing one
            return Any
    return annotation


def conform(value: Any, annotation: Any) -> tuple[Any, str | None]:
    """Check `value` (as parsed from TOML) against `annotation`.

    Returns the value converted to what the factory expects (an integer where a float is
    expected becomes a float, an array becomes a tuple) and None, or the value and a message
    saying what was expected.
    """
    converted = _conform(value, annotation)
    if converted is _MISMATCH:
        return value, f"expected {describe_type(annotation)}, got {describe_value(value)}"
    return converted, None


_MISMATCH = object()


def _conform(value: Any, annotation: Any) -> Any:
    if annotation is Any or annotation is object:
        return value
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Union or origin is types.UnionType:
        for option in args:
            converted = _conform(value, option)
            if converted is not _MISMATCH:
                return converted
        return _MISMATCH
    if origin is Literal:
        return value if any(value == arg and type(value) is type(arg) for arg in args) else _MISMATCH
    if annotation is type(None):
        return value if value is None else _MISMATCH
    if annotation is bool:
        return value if isinstance(value, bool) else _MISMATCH
    if annotation is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _MISMATCH
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        return _MISMATCH
    if annotation is str:
        return value if isinstance(value, str) else _MISMATCH
    if origin in (list, tuple) or annotation in (list, tuple):
        return _conform_sequence(value, origin or annotation, args)
    if origin is dict or annotation is dict:
        return _conform_table(value, args)
    if isinstance(annotation, type):
        return value if isinstance(value, annotation) else _MISMATCH
    return value  # an annotation TOML cannot express: leave it to the factory


def _conform_sequence(value: Any, container: type, args: tuple) -> Any:
    if not isinstance(value, (list, tuple)):
        return _MISMATCH
    if container is tuple and args and args[-1] is not Ellipsis:
        if len(value) != len(args):
            return _MISMATCH
        item_types = args
    else:
        item_types = [args[0] if args else Any] * len(value)
    items = [_conform(item, item_type) for item, item_type in zip(value, item_types)]
    if any(item is _MISMATCH for item in items):
        return _MISMATCH
    return tuple(items) if container is tuple else items


def _conform_table(value: Any, args: tuple) -> Any:
    if not isinstance(value, dict):
        return _MISMATCH
    value_type = args[1] if len(args) == 2 else Any
    items = {key: _conform(item, value_type) for key, item in value.items()}
    if any(item is _MISMATCH for item in items.values()):
        return _MISMATCH
    return items


def describe_type(annotation: Any) -> str:
    """Words for an annotation, as an error message or `xp plugins` shows it."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any or annotation is object:
        return "any value"
    if origin is Union or origin is types.UnionType:
        options = [describe_type(arg) for arg in args if arg is not type(None)]
        return " or ".join(options) if options else "nothing"
    if origin is Literal:
        return "one of " + ", ".join(_quote(arg) for arg in args)
    if origin in (list, tuple) or annotation in (list, tuple):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"an array of {len(args)} ({', '.join(describe_type(a) for a in args)})"
        return f"an array of {_plural(describe_type(args[0]) if args else 'any value')}"
    if origin is dict or annotation is dict:
        return f"a table of {_plural(describe_type(args[1]))}" if len(args) == 2 else "a table"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def describe_value(value: Any) -> str:
    """How a TOML value reads in an error: strings quoted, tables and arrays named."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, (list, tuple)):
        return f"an array {format_value(value)}" if len(str(value)) < 40 else "an array"
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
    # "an integer" -> "integers", "a string or an array of strings" -> "strings or arrays of strings".
    if text == "true or false":
        return "booleans"
    if " or " in text and not text.startswith("one of"):
        return " or ".join(_plural(part) for part in text.split(" or "))
    if text.startswith(("an array of ", "a table of ")):
        container, _, items = text.partition(" of ")
        return f"{_plural(container)} of {items}"
    for article in ("an ", "a "):
        if text.startswith(article):
            text = text[len(article):]
            return text if text.endswith("s") else text + "s"
    return text

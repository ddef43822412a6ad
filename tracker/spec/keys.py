"""A factory's signature read as the schema of its TOML section, and a table checked against it.

Keyword-only parameters are keys; their defaults make them optional; their annotations (with
pydantic constraints, see `tracker.spec.declare`) are what a value must be. One pydantic model
per factory does the checking, and its JSON Schema feeds `xp schema` and `xp plugins`.
Annotations are evaluated one by one, so a plugin may annotate its positional (runner-supplied)
parameters with heavy types it never imports at run time.
"""

from __future__ import annotations

import datetime
import inspect
import json
import sys
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tracker.errors import did_you_mean
from tracker.redact import REDACTED, is_secret_key
from tracker.spec.markers import MetricName, RunsCode
from tracker.spec.words import describe_schema, describe_value

if TYPE_CHECKING:  # pydantic is imported when a section is checked, not with the registry
    from pydantic_core import ErrorDetails

REQUIRED = inspect.Parameter.empty


class SpecError(Exception):
    """A factory whose signature cannot serve as a section schema (a plugin bug)."""


@dataclass(frozen=True)
class Key:
    """One accepted key of a section."""

    name: str
    annotation: Any  # a typing object (Annotated constraints included), or Any when unannotated
    default: Any  # REQUIRED when the key must be given
    schema: Mapping[str, Any]  # its JSON Schema: type, bounds, choices, description

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def type_text(self) -> str:
        return describe_schema(self.schema)

    @property
    def description(self) -> str:
        return self.schema.get("description", "")

    def marker(self, kind: type) -> Any:
        """The `RunsCode` or `MetricName` declared in this key's annotation, if any."""
        for item in getattr(self.annotation, "__metadata__", ()):
            if isinstance(item, kind):
                return item
        return None


# The Trainer's own checkpoint keys, which earlier versions of its [runner] section took.
MOVED_TO_CHECKPOINT = {
    "save_strategy": "every_steps = N or at_evaluation = true",
    "save_steps": "every_steps = N",
    "save_total_limit": "keep = K",
}


@dataclass(frozen=True)
class SectionSpec:
    """Everything a factory declares about its section: keys, their checker, rules, outputs, and
    (a dataset plugin) how `xp init` writes it."""

    keys: Mapping[str, Key]
    model: Any  # the pydantic model that checks a table
    rules: tuple = ()
    experiment_rules: tuple = ()
    data_rules: tuple = ()
    outputs: Callable[[Mapping[str, Any]], Iterable[str]] | None = None
    starter: Callable[..., Any] | None = None  # a dataset plugin's part of `xp init` (markers.starter)

    def check(self, table: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str | None, str]]]:
        """The options a factory is called with (defaults filled in, values converted: an
        integer where a number is expected becomes a float, an array a tuple), and the problems."""
        known = {name: value for name, value in table.items() if name in self.keys}
        converted, errors = self._validate(known)
        problems: list[tuple[str | None, str]] = []
        for name, value in table.items():  # in the order the file has them
            if name not in self.keys:
                valid = ", ".join(self.keys) or "none"
                moved = MOVED_TO_CHECKPOINT.get(name)
                hint = (
                    f"; checkpoints are set in [checkpoint] for every runner: {moved}"
                    if moved
                    else did_you_mean(name, self.keys)
                )
                problems.append((name, f"unknown key{hint}. Valid keys: {valid}"))
            elif name in errors:
                problems.append((name, self._message(self.keys[name], value, errors[name])))
        for key in self.keys.values():
            if key.required and key.name not in table:
                problems.append((key.name, f"missing required key (expected {key.type_text})"))
        options = {
            name: converted.get(name, key.default)
            for name, key in self.keys.items()
            if name in converted or not key.required
        }
        if not problems:
            problems += run_rules(self.rules, options)
        return options, problems

    def _validate(self, table: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, ErrorDetails]]:
        from pydantic import ValidationError

        # Through JSON, in strict mode: TOML's types then mean what they say (an array fits a
        # tuple, an integer fits a number), and nothing is coerced (no "8" for 8, no 1 for true).
        text = json.dumps(table, allow_nan=True)
        try:
            validated = self.model.model_validate_json(text, strict=True)
        except ValidationError as error:
            errors: dict[str, ErrorDetails] = {}
            for item in error.errors():
                # A missing key is reported by check() with its words; a missing array item is not.
                if item["loc"] and not (item["type"] == "missing" and len(item["loc"]) == 1):
                    errors.setdefault(str(item["loc"][0]), item)
            return {}, errors
        return {name: getattr(validated, _field(index)) for index, name in enumerate(self.keys) if name in table}, {}

    @staticmethod
    def _message(key: Key, value: Any, error: ErrorDetails) -> str:
        if error["type"] == "value_error":  # a key's own validator (AfterValidator) says what is wrong
            return str(error.get("ctx", {}).get("error", error["msg"]))
        got = REDACTED if is_secret_key(key.name) else describe_value(value)
        return f"expected {key.type_text}, got {got}{_hint(value, error)}"


def _hint(value: Any, error: ErrorDetails) -> str:
    if error["type"] == "finite_number":
        return " (numbers must be finite)"
    if isinstance(value, str) and (value.strip() in ("true", "false") or _is_number(value)):
        return " (a string: write it without quotes)"  # lr = "5e-5"
    return ""


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def run_rules(checks: Iterable[Callable], *arguments: Any) -> list[tuple[str | None, str]]:
    """Every problem the rules yield; a rule that crashes is a plugin bug, reported, not raised."""
    problems = []
    for check in checks:
        try:
            problems += [(key, message) for key, message in check(*arguments) or ()]
        except Exception as error:
            name = getattr(check, "__name__", check)
            problems.append((None, f"check {name} failed: {type(error).__name__}: {error}"))
    return problems


def spec_of(factory: Callable) -> SectionSpec:
    """Read `factory`'s keyword-only parameters as a section schema; SpecError if they cannot be."""
    from pydantic import ConfigDict, Field, create_model

    try:
        parameters = [
            p for p in inspect.signature(factory).parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY
        ]
    except (TypeError, ValueError) as error:
        raise SpecError(f"cannot read the signature of {_name(factory)}: {error}") from None
    annotations = {p.name: _evaluate(p, factory) for p in parameters}
    # Fields get neutral names and the key as alias: a key may then be called "schema" or
    # "model_name" without clashing with pydantic's own attributes.
    fields: dict[str, Any] = {  # (annotation, FieldInfo) per field
        _field(index): (annotations[p.name], Field(... if p.default is REQUIRED else p.default, alias=p.name))
        for index, p in enumerate(parameters)
    }
    config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, protected_namespaces=())
    try:
        model = create_model(f"{_name(factory)}_options", __config__=config, **fields)
        schema = model.model_json_schema(mode="validation")
    except Exception as error:
        raise SpecError(f"{_name(factory)} has a key type xp cannot check: {error}") from None
    properties = schema.get("properties", {})
    keys = {
        p.name: Key(p.name, annotations[p.name], p.default, _inline(properties.get(p.name, {}), schema))
        for p in parameters
    }
    return SectionSpec(
        keys,
        model,
        getattr(factory, "__xp_rules__", ()),
        getattr(factory, "__xp_experiment_rules__", ()),
        getattr(factory, "__xp_data_rules__", ()),
        getattr(factory, "__xp_outputs__", None),
        getattr(factory, "__xp_starter__", None),
    )


def positional_names(factory: Callable) -> list[str]:
    """The parameters a runner supplies (everything before the keyword-only ones)."""
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in inspect.signature(factory).parameters.values() if p.kind in kinds]


def code_keys(spec: SectionSpec, options: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(key, reason) for each key set to a value that would run code from outside the plugins."""
    return [
        (key.name, key.marker(RunsCode).reason)
        for key in spec.keys.values()
        if key.marker(RunsCode) is not None and options.get(key.name) not in (None, False, "", 0)
    ]


def metric_keys(spec: SectionSpec) -> list[str]:
    return [key.name for key in spec.keys.values() if key.marker(MetricName) is not None]


def toml_value_problem(value: Any, depth: int = 0, max_depth: int = 32) -> str | None:
    """Why a parsed TOML value cannot be an option at all (too deep, a date or time), or None."""
    if depth > max_depth:
        return f"nested more than {max_depth} levels deep"
    if isinstance(value, (datetime.date, datetime.time)):
        return f"a TOML date or time ({value}) is not accepted by any key; quote it to make it a string"
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for child in children:
        problem = toml_value_problem(child, depth + 1, max_depth)
        if problem:
            return problem
    return None


def _field(index: int) -> str:
    return f"key_{index}"


def _name(factory: Callable) -> str:
    return getattr(factory, "__qualname__", None) or repr(factory)


def _evaluate(parameter: inspect.Parameter, factory: Callable) -> Any:
    annotation = parameter.annotation
    if annotation is inspect.Parameter.empty:
        return Any
    if not isinstance(annotation, str):
        return annotation
    # A function's own globals; for a class (a dataclass used as a factory), the module of the
    # class that declares the field, which for an inherited field is the parent's.
    owner = next(
        (cls for cls in getattr(factory, "__mro__", ()) if parameter.name in vars(cls).get("__annotations__", {})),
        factory,
    )
    module = sys.modules.get(getattr(owner, "__module__", ""), None)
    namespace = {**vars(typing), **vars(module or typing), **getattr(inspect.unwrap(factory), "__globals__", {})}
    try:
        return eval(annotation, namespace)
    except Exception as error:
        raise SpecError(
            f'the annotation of key "{parameter.name}" of {_name(factory)} cannot be resolved: '
            f"{annotation!r} ({type(error).__name__}: {error})"
        ) from None


def _inline(schema: Any, document: Mapping[str, Any]) -> Any:
    """A key's JSON Schema (or any value inside one) with `$ref`s to the model's `$defs` replaced
    by what they point to."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            target = document.get("$defs", {}).get(schema["$ref"].rsplit("/", 1)[-1], {})
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            return {**_inline(target, document), **_inline(rest, document)}
        return {k: _inline(v, document) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_inline(item, document) for item in schema]
    return schema

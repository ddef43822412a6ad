"""The markers and decorators of `tracker.spec.declare`, without pydantic: what the checker reads
back from a factory (importing this stays instant, so the registry can too)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Problems = Iterable[tuple[str | None, str]]  # (key, message) pairs a rule yields
Rule = Callable[[Mapping[str, Any]], Problems]
DataRule = Callable[[Mapping[str, Any], Any], Problems]
ExperimentRule = Callable[[Mapping[str, Any], Mapping[str, Mapping[str, Any]]], Problems]


@dataclass(frozen=True)
class RunsCode:
    """Marks a key whose true or non-empty value runs Python that is not an installed plugin."""

    reason: str


@dataclass(frozen=True)
class MetricName:
    """Marks a key whose value names an evaluation metric (with or without the `eval_` prefix)."""


def _append(attribute: str, items: tuple) -> Callable:
    def decorate(factory: Callable) -> Callable:
        # getattr, not vars: a subclass of a dataclass factory keeps its parent's rules and adds its own.
        setattr(factory, attribute, (*getattr(factory, attribute, ()), *items))
        return factory

    return decorate


def rules(*checks: Rule) -> Callable:
    """Attach checks between a factory's keys: `rule(options)` yields `(key, message)` pairs."""
    return _append("__xp_rules__", checks)


def experiment_rules(*checks: ExperimentRule) -> Callable:
    """Attach checks against other sections: `rule(options, sections)` yields `(key, message)`
    pairs; `sections` maps each section name to its resolved options (with `use`)."""
    return _append("__xp_experiment_rules__", checks)


def data_rules(*checks: DataRule) -> Callable:
    """Attach checks that need the loaded data: `rule(options, task)` yields `(key, message)` pairs."""
    return _append("__xp_data_rules__", checks)


_OUTPUTS = "__xp_outputs__"


def outputs(*names: str | Callable[[Mapping[str, Any]], Iterable[str]]) -> Callable:
    """Declare the score names a metric produces: fixed names, or one function of its options; a
    name may be a pattern (`"f1_*"`) for names the data decides (one per entity type)."""

    def decorate(factory: Callable) -> Callable:
        # setattr, as in _append: a Callable declares no such attribute.
        if len(names) == 1 and callable(names[0]):
            setattr(factory, _OUTPUTS, names[0])
        else:
            fixed = tuple(names)
            setattr(factory, _OUTPUTS, lambda options: fixed)
        return factory

    return decorate


_STARTER = "__xp_starter__"


def starter(function: Callable[..., Any]) -> Callable:
    """Declare how `xp init` writes a dataset plugin's section: `function(source, config, task,
    text_columns, label_column)` reads the rows at `source`, asks `task.propose` which columns to
    use, and returns a `tracker.components.Starter`; None for a source the plugin does not read."""

    def decorate(factory: Callable) -> Callable:
        setattr(factory, _STARTER, function)  # setattr, as in _append
        return factory

    return decorate

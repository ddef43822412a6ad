"""Reading [sweep.space] and checking every entry against the experiment it varies, before any
trial starts: each key must be a key a trial can set (of the section's plugin, or of a plugin the
space chooses), each value (a range's ends) is checked the way `--set` would check it, each table
of keys that vary together whole, and a small grid combination by combination. What a space is,
once checked, lives in tracker.sweep.space.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from tracker.errors import Problem, did_you_mean
from tracker.spec.sections import (
    COMPONENT_SECTIONS,
    FIXED_SECTIONS,
    MULTI_COMPONENT_SECTIONS,
    OPTIONAL_SECTIONS,
    fixed_spec,
)
from tracker.spec.words import describe_value
from tracker.sweep.space import (
    CHECKED_GRID_POINTS,
    MAX_GRID_POINTS,
    RANGE_KEYS,
    SPACE,
    Choice,
    Dimension,
    Range,
    grid_points,
    grid_size,
    override_text,
    settings_of,
    toml_text,
)


class SpaceChecker:
    """Reads [sweep.space] and checks every dimension against the experiment it varies.

    `check_overrides(overrides)` checks the experiment with `--set`-style overrides (a list of
    (path, value)) and returns its problems: the same checks as any experiment file."""

    def __init__(
        self,
        file: str,
        space: Mapping[str, Any],
        method: str,
        registry: Any,
        base: Mapping[str, Any],
        check_overrides: Any,
    ):
        self.file, self.space, self.method, self.registry, self.base = file, space, method, registry, base
        self.check_overrides = check_overrides
        self.problems: list[Problem] = []

    def problem(self, key: str, message: str) -> None:
        self.problems.append(Problem(self.file, SPACE, f'"{key}"', message))

    def check(self) -> tuple[Dimension, ...]:
        read = []
        for key, written in self.space.items():
            if isinstance(written, list) and written and all(isinstance(table, dict) for table in written):
                tables = self.tables(key, written)
                if tables is not None:
                    read.append(Dimension(key, (key,), tables))
            elif self.key_problem(key, key):
                continue
            else:
                values = self.values(key, written)
                if values is not None:
                    read.append(Dimension(key, tuple(key.split(".")), values))
        # A plugin choice first: a trial picks its plugin before that plugin's keys.
        read.sort(key=lambda dimension: not dimension.chooses_plugin)
        plugins = _plugin_choices(read)
        dimensions = []
        for dimension in read:
            typed = self.typed(dimension, plugins)
            if typed is not None and self.values_accepted(typed, plugins):
                dimensions.append(typed)
        self.check_varied_once(read)
        if len(dimensions) == len(read) and self.method == "grid":
            self.check_grid(dimensions)
        return tuple(dimensions)

    def key_problem(self, entry: str, key: str) -> bool:
        """Whether `key` (of the space's `entry`) is no "section.key" a trial can vary; says why."""
        sections = [*(s for s in FIXED_SECTIONS if s not in OPTIONAL_SECTIONS), *COMPONENT_SECTIONS]
        path = key.split(".")
        inside = f"{key}: " if key != entry else ""
        if len(path) < 2 or not all(path):
            self.problem(
                entry,
                f'{inside}expected a dotted key "section.key", e.g. "optimizer.lr"'
                + ("" if inside else ", or a list of tables of keys that vary together"),
            )
        elif path[0] not in sections:
            self.problem(
                entry,
                f'{inside}"{path[0]}" is not a section a trial can vary{did_you_mean(path[0], sections)}. '
                f"Valid sections: {', '.join(sections)}",
            )
        else:
            return False
        return True

    def tables(self, name: str, written: list[dict[str, Any]]) -> Choice | None:
        """A choice between tables of keys that vary together, checked for shape; each table whole
        is checked with the experiment by values_accepted."""
        if "." in name:
            self.problem(
                name,
                "a list of tables sets several keys together: name it with a word of your own, e.g. "
                'evaluation = [{ "runner.eval_strategy" = "steps", "runner.eval_steps" = 50 }, '
                '{ "runner.eval_strategy" = "epoch" }]',
            )
            return None
        tables, known = [], len(self.problems)
        for number, written_table in enumerate(written, 1):
            table = tuple(_flattened(written_table))
            if not table:
                self.problem(name, f"table {number} is empty: give the keys it sets")
            for key, value in table:
                if not self.key_problem(name, key) and not isinstance(value, (str, int, float, bool)):
                    self.problem(
                        name,
                        f"{key}: a value to try must be a string, a number or a boolean, got {describe_value(value)}",
                    )
            tables.append(table)
        if len(self.problems) > known:
            return None
        labels = tuple(", ".join(override_text(key, value) for key, value in table) for table in tables)
        if len(set(labels)) < len(labels):
            self.problem(name, "lists a table twice")
            return None
        chosen_plugins = [{key for key, _ in table if key.endswith(".use")} for table in tables]
        if any(keys != chosen_plugins[0] for keys in chosen_plugins):
            self.problem(name, "a plugin one table chooses (section.use) must be chosen by every table")
            return None
        return Choice(labels, tuple(tables))

    def check_varied_once(self, dimensions: Sequence[Dimension]) -> None:
        """A key varied by two entries would have two values in a trial."""
        varied_by: dict[str, str] = {}
        for dimension in dimensions:
            keys = {key for table in dimension.tables for key, _ in table} if dimension.tables else {dimension.key}
            for key in sorted(keys):
                if key in varied_by:
                    self.problem(dimension.key, f'{key} is varied by "{varied_by[key]}" too: vary it in one place')
                varied_by.setdefault(key, dimension.key)

    def values(self, key: str, written: Any) -> Choice | Range | None:
        """The dimension's values as written, checked for shape only."""
        if isinstance(written, list):
            if not written:
                self.problem(key, "an empty list: give at least one value")
                return None
            odd = [value for value in written if not isinstance(value, (str, int, float, bool))]
            if odd:
                self.problem(
                    key, f"a value to try must be a string, a number or a boolean, got {describe_value(odd[0])}"
                )
                return None
            if len({(isinstance(value, bool), value) for value in written}) < len(written):  # 1 and 1.0 alike
                self.problem(key, f"lists a value twice: {describe_value(written)}")
                return None
            return Choice(tuple(written))
        if not isinstance(written, dict):
            self.problem(
                key, f"expected a list of values or a range {{ low = ..., high = ... }}, got {describe_value(written)}"
            )
            return None
        unknown = [name for name in written if name not in RANGE_KEYS]
        for name in unknown:
            self.problem(
                key, f"unknown range key {name}{did_you_mean(name, RANGE_KEYS)}. Valid keys: {', '.join(RANGE_KEYS)}"
            )
        missing = [name for name in ("low", "high") if name not in written]
        if missing:
            self.problem(key, f"a range needs {' and '.join(missing)}, e.g. {{ low = 1e-5, high = 1e-3 }}")
        numbers = {name: written[name] for name in ("low", "high", "step") if name in written}
        for name, value in numbers.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                self.problem(key, f"{name} must be a finite number, got {describe_value(value)}")
                return None
        log = written.get("log", False)
        if not isinstance(log, bool):
            self.problem(key, f"log must be true or false, got {describe_value(log)}")
            return None
        if unknown or missing:
            return None
        low, high, step = written["low"], written["high"], written.get("step")
        if not low < high:
            self.problem(key, f"low ({toml_text(low)}) must be less than high ({toml_text(high)})")
        elif log and low <= 0:
            self.problem(key, f"a log range needs low > 0, got {toml_text(low)}")
        elif step is not None and step <= 0:
            self.problem(key, f"step must be greater than 0, got {toml_text(step)}")
        elif step is not None and log:
            self.problem(key, "a range takes log or step, not both")
        else:
            return Range(low, high, log, step)
        return None

    def typed(self, dimension: Dimension, plugins: Mapping[str, tuple]) -> Dimension | None:
        """Which plugins have the key (when the section's plugin varies); a range's number type
        from the key's declared type."""
        from dataclasses import replace

        if dimension.tables is not None:  # its keys' sections must not have a plugin varied elsewhere
            own = {key.removesuffix(".use") for key, _ in dimension.tables[0] if key.endswith(".use")}
            sections = {key.split(".")[0] for table in dimension.tables for key, _ in table}
            for section in sorted(sections & set(plugins) - own):
                self.problem(
                    dimension.key,
                    f'sets keys of [{section}], whose plugin "{section}.use" varies on its own: '
                    f"choose {section}.use in each table instead",
                )
                return None
            return dimension
        section, key = dimension.path[0], dimension.path[-1]
        only_with = None
        if section in plugins and not dimension.chooses_plugin:
            only_with = tuple(name for name in plugins[section] if key in self.keys_of(section, name))
            if not only_with:
                self.problem(
                    dimension.key,
                    f'none of the plugins of "{section}.use" ({", ".join(plugins[section])}) has a key {key}',
                )
                return None
        if isinstance(dimension.values, Range):
            if dimension.chooses_plugin:
                self.problem(dimension.key, "plugins are chosen from a list of names, not a range")
                return None
            schemas = self.key_schemas(section, key, only_with, dimension.path)
            # Integers when any plugin takes only integers: every plugin that takes numbers takes those.
            integer = any(_types(schema) == {"integer"} for schema in schemas)
            types = set().union(*(_types(schema) for schema in schemas))
            if integer:
                values = dimension.values
                if not all(float(v).is_integer() for v in (values.low, values.high, values.step or 1)):
                    self.problem(dimension.key, f"{key} takes integers: low, high and step must be integers")
                    return None
                dimension = replace(
                    dimension,
                    values=replace(
                        values,
                        low=int(values.low),
                        high=int(values.high),
                        step=None if values.step is None else int(values.step),
                        integer=True,
                    ),
                )
            elif schemas and "number" not in types:
                self.problem(
                    dimension.key,
                    f"a range needs a number key; {key} takes {_describe_types(types)}: give a list of values instead",
                )
                return None
        return replace(dimension, only_with=only_with)

    def keys_of(self, section: str, plugin: str) -> Mapping[str, Any]:
        component = self.registry.get(COMPONENT_SECTIONS[section], plugin)
        return component.spec.keys if component is not None else {}

    def key_schemas(
        self, section: str, key: str, only_with: tuple[str, ...] | None, path: tuple[str, ...]
    ) -> list[Mapping[str, Any]]:
        """The key's declared JSON Schema in each plugin that has it; none when it is unknown
        (the value check says so)."""
        if section not in COMPONENT_SECTIONS:
            found = fixed_spec(section).keys.get(key)
            return [found.schema] if found is not None and len(path) == 2 else []
        plugins: tuple[object, ...]  # the base's `use` is whatever the file says, checked elsewhere
        if section in MULTI_COMPONENT_SECTIONS:
            plugins = (path[1],) if len(path) == 3 else ()
        else:
            plugins = only_with or ((self.base.get(section) or {}).get("use"),)
        return [
            self.keys_of(section, plugin)[key].schema
            for plugin in plugins
            if isinstance(plugin, str) and key in self.keys_of(section, plugin)
        ]

    def values_accepted(self, dimension: Dimension, plugins: Mapping[str, tuple]) -> bool:
        """Each value (a range's ends) checked as `--set` would, with each plugin that has the key."""
        values = dimension.values
        if dimension.tables is not None:  # each table whole: its keys only make sense together
            known = len(self.problems)
            for number, table in enumerate(dimension.tables, 1):
                for problem in self.check_overrides([(tuple(key.split(".")), value) for key, value in table]):
                    self.problem(dimension.key, f"table {number}: {_located(problem)}")
            return len(self.problems) == known
        probes = values.values if isinstance(values, Choice) else (values.low, values.high)
        section = dimension.path[0]
        with_plugins = dimension.only_with or (None,)
        found: dict[str, list[str]] = {}  # a problem -> the values (and plugins) that have it
        for value, plugin in itertools.product(probes, with_plugins):
            overrides = [(dimension.path, value)]
            if plugin is not None:
                overrides.append(((section, "use"), plugin))
            also = f' with "{section}.use" = "{plugin}"' if plugin is not None else ""
            for problem in self.check_overrides(overrides):
                found.setdefault(_located(problem), []).append(f"{toml_text(value)}{also}")
        tried = len(probes) * len(with_plugins)
        for located, having in found.items():  # a problem every value has is the key's: said once
            self.problem(dimension.key, located if len(having) == tried > 1 else f"{', '.join(having)}: {located}")
        return not found

    def check_grid(self, dimensions: Sequence[Dimension]) -> None:
        """A grid needs values along every axis; small grids are checked point by point, so a
        combination no key alone rules out is found too."""
        for dimension in dimensions:
            if isinstance(dimension.values, Range) and dimension.values.grid() is None:
                self.problem(
                    dimension.key, 'method = "grid" needs the values to try: a list, or a range with step (and no log)'
                )
        if self.problems:
            return
        size = grid_size(dimensions)
        if size > MAX_GRID_POINTS:
            self.problem(
                ", ".join(d.key for d in dimensions),
                f"a grid of {size} combinations (more than {MAX_GRID_POINTS}): use fewer values, a coarser "
                'step, or method = "random" with trials',
            )
            return
        if size > CHECKED_GRID_POINTS:
            return
        for point in grid_points(dimensions):
            settings = settings_of(dimensions, point)
            problems = self.check_overrides([(tuple(key.split(".")), value) for key, value in settings.items()])
            for problem in problems[:1]:
                combination = ", ".join(override_text(key, value) for key, value in settings.items())
                self.problems.append(
                    Problem(self.file, SPACE, None, f"the combination {combination}: {_located(problem)}")
                )


def _plugin_choices(dimensions: Sequence[Dimension]) -> dict[str, tuple[str, ...]]:
    """Section -> the plugins a trial may choose for it, for the sections whose plugin varies."""
    plugins: dict[str, tuple[str, ...]] = {}
    for dimension in dimensions:
        if dimension.tables is not None:
            for key, _ in dimension.tables[0]:
                if key.endswith(".use"):
                    chosen = (dict(table)[key] for table in dimension.tables)
                    plugins[key.removesuffix(".use")] = tuple(dict.fromkeys(chosen))
        elif dimension.chooses_plugin and isinstance(dimension.values, Choice):
            plugins[dimension.path[0]] = dimension.values.values
    return plugins


def _flattened(table: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) pairs of a table as TOML reads it: `{ runner.eval_steps = 50 }` is the
    nested table {"runner": {"eval_steps": 50}}, `{ "runner.eval_steps" = 50 }` one dotted key."""
    for key, value in table.items():
        if isinstance(value, dict):
            yield from _flattened(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _located(problem: Problem) -> str:
    where = f"[{problem.section}]" if problem.section else ""
    if problem.key:
        where += f" {problem.key}"
    return f"{where.strip()}: {problem.message}" if where else problem.message


def _types(schema: Mapping[str, Any]) -> set[str]:
    if "type" in schema:
        return {schema["type"]} if isinstance(schema["type"], str) else set(schema["type"])
    found: set[str] = set()
    for option in schema.get("anyOf", ()):
        found |= _types(option)
    return found - {"null"}


def _describe_types(types: set[str]) -> str:
    return " or ".join(sorted(types)) if types else "values of another kind"

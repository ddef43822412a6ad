"""[sweep.space]: which keys of the experiment vary and over what, checked against the experiment
schema before any trial starts.

A dimension is `"section.key" = [values]` (a choice) or `"section.key" = { low, high, log, step }`
(a range of numbers, integers for an integer key). Every value is checked the way `--set` would
check it, so each key's constraints stay declared once, where the key is declared. A dimension
over a section's plugin (`"scheduler.use" = ["linear", "cosine"]`) brings that plugin's keys: a
key of that section then applies to the trials whose plugin has it.

Keys that only make sense together vary together: `name = [{ "section.key" = value, ... }, ...]`
is a choice between tables, each setting every key it names (`evaluation = [{ "runner.eval_strategy"
= "steps", "runner.eval_steps" = 50 }, { "runner.eval_strategy" = "epoch" }]`), each checked whole.
Optuna chooses between the tables' labels (`runner.eval_strategy="steps", runner.eval_steps=50`).

Pure and light: nothing here imports Optuna; tracker.sweep.study turns dimensions into its
distributions.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tracker.errors import Problem, did_you_mean
from tracker.spec.words import describe_value

SPACE = "sweep.space"
RANGE_KEYS = ("low", "high", "log", "step")
# A grid larger than this is almost surely a mistake (a float step too fine); so is a check of
# every one of its points, which is what a smaller grid gets.
MAX_GRID_POINTS = 10_000
CHECKED_GRID_POINTS = 500


@dataclass(frozen=True)
class Choice:
    values: tuple[Any, ...]
    # A choice between tables of keys that vary together: for each value (the table's label), the
    # (dotted key, value) pairs it sets. None: a choice of one key's values.
    tables: tuple[tuple[tuple[str, Any], ...], ...] | None = None

    def describe(self) -> str:
        if self.tables is not None:
            return " | ".join("{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in table) + " }" for table in self.tables)
        return " | ".join(_toml(value) for value in self.values)


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    log: bool = False
    step: float | None = None
    integer: bool = False

    def grid(self) -> tuple[Any, ...] | None:
        """Every value a grid takes: from low to high by step (integers by 1); None for a float
        range without a step, or a log range."""
        if self.log or (self.step is None and not self.integer):
            return None
        step = self.step or 1
        count = math.floor((self.high - self.low) / step + 1e-9) + 1
        values = [self.low + index * step for index in range(count)]
        return tuple(round(v) for v in values) if self.integer else tuple(round(v, 12) for v in values)

    def describe(self) -> str:
        kind = "integers" if self.integer else "numbers"
        details = ", log scale" if self.log else f", step {_toml(self.step)}" if self.step else ""
        return f"{kind} {_toml(self.low)} to {_toml(self.high)}{details}"


@dataclass(frozen=True)
class Dimension:
    """One key the study varies."""

    key: str  # as written: "optimizer.lr"
    path: tuple[str, ...]  # ("optimizer", "lr")
    values: Choice | Range
    # The plugins of the section that have this key, when the section's plugin varies too; None:
    # every trial sets it.
    only_with: tuple[str, ...] | None = None

    @property
    def tables(self) -> tuple[tuple[tuple[str, Any], ...], ...] | None:
        """The tables of keys that vary together, when this dimension is a choice between them."""
        return self.values.tables if isinstance(self.values, Choice) else None

    @property
    def chooses_plugin(self) -> bool:
        if self.tables is not None:
            return any(key.endswith(".use") for key, _ in self.tables[0])
        return self.path[-1] == "use"

    def applies(self, chosen: Mapping[str, Any]) -> bool:
        """Whether a trial that set `chosen` (dotted key -> value so far) sets this key."""
        return self.only_with is None or chosen.get(f"{self.path[0]}.use") in self.only_with

    def sets(self, value: Any) -> tuple[tuple[str, Any], ...]:
        """The (dotted key, value) pairs a trial sets when this dimension takes `value`."""
        tables = self.tables
        if tables is None:
            return ((self.key, value),)
        assert isinstance(self.values, Choice)
        return tables[self.values.values.index(value)]


def override_text(key: str, value: Any) -> str:
    """`optimizer.lr=3e-05`, as `--set` takes it."""
    return f"{key}={_toml(value)}"


def grid_axis(dimension: Dimension) -> tuple[Any, ...]:
    """The values a grid tries for `dimension`: a range's steps (check_grid refuses a range
    without them)."""
    if isinstance(dimension.values, Choice):
        return dimension.values.values
    steps = dimension.values.grid()
    if steps is None:
        raise ValueError(f'"{dimension.key}" is a range without a step, or on a log scale: no grid')
    return steps


def grid_points(space: Sequence[Dimension]) -> list[dict[str, Any]]:
    """Every combination of a grid, in order, each once, as the study's values (dimension ->
    value): a key that does not apply to a combination's plugin is left out, and the combinations
    that become equal are one."""
    points, seen = [], set()
    for combination in itertools.product(*(grid_axis(dimension) for dimension in space)):
        picked = {dimension.key: value for dimension, value in zip(space, combination, strict=True)}
        point = dict(trial_overrides(space, _given(picked)))
        identity = tuple(sorted((dimension.key, repr(value)) for dimension, value in point.items()))
        if identity not in seen:
            seen.add(identity)
            points.append({dimension.key: value for dimension, value in point.items()})
    return points


def settings_of(space: Sequence[Dimension], point: Mapping[str, Any]) -> dict[str, Any]:
    """The keys a trial with the study's values `point` sets (dotted key -> value), in order."""
    chosen = [dimension.sets(point[dimension.key]) for dimension in space if dimension.key in point]
    return {key: value for pairs in chosen for key, value in pairs}


def grid_size(space: Sequence[Dimension]) -> int:
    sizes = [len(d.values.values) if isinstance(d.values, Choice) else len(d.values.grid() or ()) for d in space]
    return math.prod(sizes)


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
        from tracker.spec.sections import COMPONENT_SECTIONS, FIXED_SECTIONS, OPTIONAL_SECTIONS

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
            self.problem(key, f"low ({_toml(low)}) must be less than high ({_toml(high)})")
        elif log and low <= 0:
            self.problem(key, f"a log range needs low > 0, got {_toml(low)}")
        elif step is not None and step <= 0:
            self.problem(key, f"step must be greater than 0, got {_toml(step)}")
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
        from tracker.spec.sections import COMPONENT_SECTIONS

        component = self.registry.get(COMPONENT_SECTIONS[section], plugin)
        return component.spec.keys if component is not None else {}

    def key_schemas(
        self, section: str, key: str, only_with: tuple[str, ...] | None, path: tuple[str, ...]
    ) -> list[Mapping[str, Any]]:
        """The key's declared JSON Schema in each plugin that has it; none when it is unknown
        (the value check says so)."""
        from tracker.spec.check import fixed_spec
        from tracker.spec.sections import COMPONENT_SECTIONS, MULTI_COMPONENT_SECTIONS

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
                found.setdefault(_located(problem), []).append(f"{_toml(value)}{also}")
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


def trial_overrides(space: Sequence[Dimension], pick: Any) -> Iterator[tuple[Dimension, Any]]:
    """The value of each dimension a trial sets, in order: `pick(dimension, chosen)` chooses it,
    `chosen` being the keys set so far (dotted key -> value)."""
    chosen: dict[str, Any] = {}
    for dimension in space:
        if dimension.applies(chosen):
            value = pick(dimension, chosen)
            chosen.update(dimension.sets(value))
            yield dimension, value


def _given(values: Mapping[str, Any]) -> Any:
    """A `pick` for trial_overrides that takes each dimension's value from `values`."""
    return lambda dimension, chosen: values[dimension.key]


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


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        import json

        return json.dumps(value, ensure_ascii=False)
    return repr(value)

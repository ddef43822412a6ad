"""[sweep.space]: which keys of the experiment vary and over what, and the values a trial sets
(tracker.sweep.space_check reads the section and checks it against the experiment).

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
            return " | ".join(
                "{ " + ", ".join(f"{k} = {toml_text(v)}" for k, v in table) + " }" for table in self.tables
            )
        return " | ".join(toml_text(value) for value in self.values)


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
        details = ", log scale" if self.log else f", step {toml_text(self.step)}" if self.step else ""
        return f"{kind} {toml_text(self.low)} to {toml_text(self.high)}{details}"


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
    return f"{key}={toml_text(value)}"


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


def toml_text(value: Any) -> str:
    """A value as TOML writes it: `"cosine"`, `3e-05`, `true`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        import json

        return json.dumps(value, ensure_ascii=False)
    return repr(value)

"""`xp sweep --dry-run`: what a sweep would run, without running it: the study, its space, and for
each trial (a grid) or over the space (samples) the effective batch size and training steps."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from tracker.experiment import Experiment
from tracker.redact import mask_uri
from tracker.sweep.space import Choice, Dimension, grid_points, override_text, settings_of
from tracker.sweep.study import SweepSettings

# Runner keys that change how many optimizer steps a trial makes, or on how many rows each.
STEP_KEYS = ("batch_size", "gradient_accumulation_steps", "num_epochs", "max_steps")


def trial_experiment(experiment: Experiment, registry: Any, values: Mapping[str, Any], edits: Any) -> Experiment:
    """The experiment a trial with `values` runs, checked as `xp run --set ...` would check it."""
    from tracker.errors import ExperimentError
    from tracker.spec.check import check_experiment
    from tracker.spec.parse import parse_override, read_experiment

    overrides = [*edits.overrides, *(parse_override(override_text(key, value)) for key, value in values.items())]
    raw, problems = read_experiment(experiment.path, overrides, edits.unsets)
    checked = None
    if raw is not None:
        raw = replace(raw, data={name: value for name, value in raw.data.items() if name != "sweep"})
        checked, check_problems = check_experiment(raw, registry, edits.allow_code)
        problems += check_problems
    if checked is None or problems:
        raise ExperimentError(problems)
    return checked


def plan_text(experiment: Experiment, registry: Any, settings: SweepSettings, edits: Any, train_rows: int) -> str:
    from tracker.tables import render_table

    space = experiment.space
    lines = [
        f"study      {settings.study} in {mask_uri(settings.storage)}",
        f"method     {settings.method}, {settings.trials} trials, {settings.parallel} at once, "
        f"pruner {settings.pruner}; {settings.direction} {settings.metric.replace('eval_', 'eval/', 1)}",
        f"data       {train_rows} training rows",
        "space",
    ]
    lines += [f"  {dimension.key:<28} {dimension.values.describe()}" + _only_with(dimension) for dimension in space]
    if settings.method == "grid":
        rows = []
        for number, point in enumerate(grid_points(space)[: settings.trials]):
            keys = settings_of(space, point)
            batch, trial_steps = _steps(trial_experiment(experiment, registry, keys, edits), registry, train_rows)
            values = ", ".join(override_text(k, v) for k, v in keys.items())
            rows.append([str(number), values, str(batch), str(trial_steps)])
        table = render_table(["trial", "values", "effective batch", "training steps"], rows)
    else:
        plans = [
            _steps(trial_experiment(experiment, registry, corner, edits), registry, train_rows)
            for corner in _corners(space)
        ]
        batches, steps = sorted({b for b, _ in plans}), sorted({s for _, s in plans})
        table = (
            f"each trial: effective batch {_span(batches)}, training steps {_span(steps)} (over the space's extremes)\n"
        )
    return "\n".join(lines) + "\n" + table


def _steps(experiment: Experiment, registry: Any, train_rows: int) -> tuple[int, int]:
    spec = experiment.components["runner"]
    runner = registry.find("runner", spec.use).factory(**spec.options)
    return runner.batch_size * runner.gradient_accumulation_steps, runner.num_training_steps(train_rows)


def _corners(space: tuple[Dimension, ...]) -> list[dict[str, Any]]:
    """The combinations of the extreme values of the keys that change a trial's steps (every
    table of keys that vary together, when one of its keys does)."""
    axes: list[list[tuple[tuple[str, Any], ...]]] = []
    for dimension in space:
        if dimension.tables is not None:
            if any(_changes_steps(key) for table in dimension.tables for key, _ in table):
                axes.append(list(dimension.tables))
        elif _changes_steps(dimension.key) and dimension.only_with is None:
            values = dimension.values
            ends = (min(values.values), max(values.values)) if isinstance(values, Choice) else (values.low, values.high)
            axes.append([((dimension.key, end),) for end in dict.fromkeys(ends)])
    return [dict(pair for pairs in combination for pair in pairs) for combination in itertools.product(*axes)] or [{}]


def _changes_steps(key: str) -> bool:
    section, _, name = key.partition(".")
    return section == "runner" and name in STEP_KEYS


def _span(values: list[int]) -> str:
    return str(values[0]) if len(values) == 1 else f"{values[0]} to {values[-1]}"


def _only_with(dimension: Dimension) -> str:
    if dimension.only_with is None:
        return ""
    return f"  (with {dimension.path[0]}.use = {' or '.join(dimension.only_with)})"

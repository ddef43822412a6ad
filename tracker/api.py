"""The Python API, for notebooks and scripts: `tracker.load(path)` and `tracker.run(...)`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from tracker.errors import ExperimentError, Problem
from tracker.experiment import Experiment
from tracker.registry import Registry, load_registry
from tracker.spec.check import check_experiment
from tracker.spec.parse import Override, Unset, parse_override, parse_unset, read_experiment


def load_experiments(
    paths: Iterable[str | Path],
    overrides: Sequence[Override],
    registry: Registry,
    unsets: Sequence[Unset] = (),
    allow_code: bool = False,
) -> tuple[list[Experiment], list[Problem]]:
    """Parse and check every file; the problems of all files together."""
    experiments, problems = [], []
    for path in paths:
        raw, read_problems = read_experiment(Path(path), overrides, unsets)
        problems += read_problems
        if raw is None:
            continue
        experiment, check_problems = check_experiment(raw, registry, allow_code)
        problems += check_problems
        if experiment is not None and not read_problems:
            experiments.append(experiment)
    return experiments, problems


def load(
    path: str | Path,
    overrides: Iterable[str] = (),
    registry: Registry | None = None,
    unset: Iterable[str] = (),
    allow_code: bool = False,
) -> Experiment:
    """Read and check one experiment file; `overrides` are `"section.key=value"` strings and
    `unset` `"section.key"` strings. `allow_code=True` is the `--allow-code` of the command line.

    Raises `ExperimentError` listing every problem when the file is not valid.
    """
    experiments, problems = load_experiments(
        [path],
        [parse_override(text) for text in overrides],
        registry or load_registry(),
        [parse_unset(text) for text in unset],
        allow_code,
    )
    if problems:
        raise ExperimentError(problems)
    return experiments[0]


def run(
    experiment: Experiment | str | Path,
    overrides: Iterable[str] = (),
    registry: Registry | None = None,
    allow_code: bool = False,
):
    """Run one experiment (a checked `Experiment` or a file path) with MLflow tracking; returns
    the runner's `RunResult`. Raises `ExperimentError` for bad input, like `load`."""
    from tracker.recipe import run_tracked

    registry = registry or load_registry()
    if not isinstance(experiment, Experiment):
        experiment = load(experiment, overrides, registry, allow_code=allow_code)
    return run_tracked(experiment, registry)

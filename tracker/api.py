"""The Python API, for notebooks and scripts: `tracker.load(path)` and `tracker.run(...)`."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

from tracker.config import Override, parse_override, read_experiment
from tracker.errors import ExperimentError, Problem
from tracker.experiment import Experiment
from tracker.registry import Registry, load_registry
from tracker.validate import check_experiment


def load_experiments(paths: Iterable[str | Path], overrides: Sequence[Override], registry: Registry
                     ) -> tuple[list[Experiment], list[Problem]]:
    """Parse and check every file; the problems of all files together."""
    experiments, problems = [], []
    for path in paths:
        raw, read_problems = read_experiment(Path(path), overrides)
        if raw is None:
            problems += read_problems
            continue
        experiment, check_problems = check_experiment(raw, registry)
        problems += check_problems
        if experiment is not None:
            experiments.append(experiment)
    return experiments, problems


def load(path: str | Path, overrides: Iterable[str] = (), registry: Registry | None = None) -> Experiment:
    """Read and check one experiment file; `overrides` are `"section.key=value"` strings.

    Raises `ExperimentError` listing every problem when the file is not valid.
    """
    parsed = [parse_override(text) for text in overrides]
    experiments, problems = load_experiments([path], parsed, registry or load_registry())
    if problems:
        raise ExperimentError(problems)
    return experiments[0]


def run(experiment: Experiment | str | Path, overrides: Iterable[str] = (), registry: Registry | None = None):
    """Run one experiment (a checked `Experiment` or a file path) with MLflow tracking; returns
    the runner's `RunResult`. Raises `ExperimentError` for bad input, like `load`."""
    from tracker.recipe import run_experiment
    from tracker.tracking import start_run_with

    registry = registry or load_registry()
    if not isinstance(experiment, Experiment):
        experiment = load(experiment, overrides, registry)
    return run_experiment(experiment, registry, start_run=start_run_with(registry))

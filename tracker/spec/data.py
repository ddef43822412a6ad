"""Checks that need the loaded data: each component's declared data rules, run after the dataset
is loaded and before the model is built or an MLflow run exists (`xp run`, `xp validate --data`)."""

from __future__ import annotations

from typing import Any

from tracker.errors import Problem
from tracker.experiment import Experiment
from tracker.registry import Registry
from tracker.spec.keys import run_rules


def data_problems(experiment: Experiment, registry: Registry, task: Any) -> list[Problem]:
    """Every problem the components' data rules find with `task` (a `TaskData`)."""
    problems = []
    for spec in (*experiment.components.values(), *experiment.metrics):
        rules = registry.find(spec.kind, spec.use).spec.data_rules
        for key, message in run_rules(rules, spec.options, task):
            problems.append(Problem(str(experiment.path), spec.section, key, message))
    return problems

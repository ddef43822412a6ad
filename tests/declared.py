"""Asking a factory's declaration what it thinks of some options: the checks `xp validate` runs
(types, bounds, rules between keys) and, given a task, the checks `xp run` runs on the data."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tracker.spec.keys import run_rules, spec_of


def problems_of(factory: Callable, /, **options: Any) -> dict[str | None, str]:
    """key -> message for every problem the declaration finds in `options`."""
    _, problems = spec_of(factory).check(options)
    return dict(problems)


def data_problems_of(factory: Callable, task: Any, /, **options: Any) -> dict[str | None, str]:
    """key -> message for every problem the factory's data rules find with `task`."""
    spec = spec_of(factory)
    resolved, problems = spec.check(options)
    assert not problems, problems
    return dict(run_rules(spec.data_rules, resolved, task))

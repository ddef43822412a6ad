"""Running several experiments in a row: one failing does not stop the others."""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from tracker.components import RunResult
from tracker.errors import ExperimentError, Problem
from tracker.experiment import Experiment
from tracker.registry import Registry


@dataclass
class Outcome:
    """How one experiment of `xp run` ended."""

    experiment: Experiment
    status: str  # "finished", "invalid" (bad input found while building) or "failed"
    seconds: float
    result: RunResult | None = None
    problems: Sequence[Problem] = ()
    error: str = ""

    @property
    def main_metric(self) -> tuple[str, float] | None:
        """The first configured metric on the validation split, else the validation loss."""
        if self.result is None:
            return None
        metrics = self.result.eval_metrics
        for spec in self.experiment.metrics:
            for name, value in metrics.items():
                if name.startswith(f"eval_{spec.use}") or (spec.use == "glue" and name != "eval_loss"):
                    return name, value
        named = [(k, v) for k, v in metrics.items() if k != "eval_loss"]
        return named[0] if named else (("eval_loss", metrics["eval_loss"]) if "eval_loss" in metrics else None)


def run_one(experiment: Experiment, registry: Registry, execute: Callable[..., RunResult],
            report: Callable[[str], Any]) -> Outcome:
    started = time.perf_counter()
    try:
        result = execute(experiment, registry)
    except ExperimentError as error:
        for problem in error.problems:
            report(experiment.redactor.text(str(problem)))
        return Outcome(experiment, "invalid", time.perf_counter() - started, problems=error.problems,
                       error=str(error.problems[0].message) if error.problems else "")
    except Exception as error:  # one crashing experiment must not stop the others
        shown = experiment.redactor.text  # a traceback can quote a URI or a token
        report(shown(traceback.format_exc()))
        report(shown(f"{experiment.path}: failed: {type(error).__name__}: {error}"))
        return Outcome(experiment, "failed", time.perf_counter() - started,
                       error=shown(f"{type(error).__name__}: {error}"))
    return Outcome(experiment, "finished", time.perf_counter() - started, result=result)


def summary_table(outcomes: Sequence[Outcome]) -> str:
    """experiment | runner | status | main metric | duration, one line each."""
    rows = [("experiment", "runner", "status", "main metric", "duration")]
    for outcome in outcomes:
        metric = outcome.main_metric
        shown = f"{metric[0]} {metric[1]:.4f}" if metric else (outcome.error[:60] or "-")
        rows.append((str(outcome.experiment.path), outcome.experiment.components["runner"].use, outcome.status,
                     shown, f"{outcome.seconds:.1f}s"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)

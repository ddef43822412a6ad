"""Running several experiments in a row: one failing does not stop the others."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tracker.components import RunResult
from tracker.errors import ExperimentError, Problem
from tracker.experiment import Experiment
from tracker.metric_names import evaluation_name, is_score, stored_name
from tracker.registry import Registry
from tracker.tracking.run import RunNotRecorded


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
        """The score the run ranks its checkpoints by (`metric_for_best`, when a score and not the
        loss it defaults to), else the validation split's first score (runners compute the metrics
        in the order they are configured), else its loss."""
        if self.result is None:
            return None
        metrics = self.result.eval_metrics
        ranked_by = evaluation_name(self.experiment.components["runner"].options.get("metric_for_best") or "loss")
        if is_score(ranked_by) and ranked_by in metrics:
            return ranked_by, metrics[ranked_by]
        scores = [(name, value) for name, value in metrics.items() if is_score(name)]
        return scores[0] if scores else (("eval_loss", metrics["eval_loss"]) if "eval_loss" in metrics else None)


def run_one(
    experiment: Experiment, registry: Registry, execute: Callable[..., RunResult], report: Callable[[str], Any]
) -> Outcome:
    started = time.perf_counter()
    try:
        result = execute(experiment, registry)
    except ExperimentError as error:
        for problem in error.problems:
            report(experiment.redactor.text(str(problem)))
        return Outcome(
            experiment,
            "invalid",
            time.perf_counter() - started,
            problems=error.problems,
            error=str(error.problems[0].message) if error.problems else "",
        )
    except Exception as error:  # one crashing experiment must not stop the others
        shown = experiment.redactor.text  # a traceback can quote a URI or a token
        # A full disk, an unwritable folder, a store that refused the run's record: no bug, its line says it all.
        if not isinstance(error, (OSError, RunNotRecorded)):
            report(shown(traceback.format_exc()))
        report(shown(f"{experiment.path}: failed: {type(error).__name__}: {error}"))
        return Outcome(
            experiment, "failed", time.perf_counter() - started, error=shown(f"{type(error).__name__}: {error}")
        )
    return Outcome(experiment, "finished", time.perf_counter() - started, result=result)


def run_summary(outcome: Outcome) -> str:
    """Where the run is and how to look at it: a few aligned lines after each experiment."""
    result = outcome.result
    lines = [("status", f"{outcome.status} in {outcome.seconds:.1f}s")]
    if result is not None:
        metric = outcome.main_metric
        if metric is not None:
            lines.append(("result", f"{stored_name(metric[0])} {metric[1]:.4f} after {result.steps} steps"))
        if result.diagnosis is not None:
            diagnosis = result.diagnosis
            lines.append(("curves", f"{diagnosis.verdict.replace('_', ' ')}: {diagnosis.reason}"))
            if diagnosis.suggestion:
                lines.append(("suggestion", diagnosis.suggestion))
        tracked = result.tracked
        if tracked is not None:
            lines += [
                ("run", f"{tracked.run_name} (id {tracked.run_id})"),
                ("experiment", f"{tracked.experiment_name} (id {tracked.experiment_id})"),
                ("tracking", tracked.tracking_uri),
                ("open the UI", f"{tracked.ui_command}, then {tracked.run_url}"),
            ]
        if result.model_uri:
            registered = f" (registered as {result.registered_model})" if result.registered_model else ""
            lines.append(("model", result.model_uri + registered))
        if result.output_dir is not None and result.output_dir.exists():
            lines.append(("outputs", str(result.output_dir)))
    elif outcome.error:
        lines.append(("error", outcome.error))
    width = max(len(label) for label, _ in lines) + 2
    return "\n".join(f"{label:<{width}}{text}" for label, text in lines)


def summary_table(outcomes: Sequence[Outcome]) -> str:
    """experiment | runner | status | main metric | duration | run id, a row each."""
    from tracker.tables import render_table

    rows = []
    for outcome in outcomes:
        metric = outcome.main_metric
        shown = f"{stored_name(metric[0])} {metric[1]:.4f}" if metric else (outcome.error[:60] or "-")
        run_id = outcome.result.run_id if outcome.result is not None and outcome.result.run_id else "-"
        rows.append(
            [
                str(outcome.experiment.path),
                outcome.experiment.components["runner"].use,
                outcome.status,
                shown,
                f"{outcome.seconds:.1f}s",
                run_id[:12],
            ]
        )
    return render_table(["experiment", "runner", "status", "main metric", "duration", "run id"], rows)

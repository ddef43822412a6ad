"""One trial of a sweep, in a process of its own (`python -m tracker.sweep.trial`), so a trial
that crashes, runs out of memory or is killed takes nothing else with it.

The sweep sends the trial's order as one JSON document on stdin (never on the command line: the
overrides may hold secrets); the trial runs the experiment with its values as `--set` overrides,
in an MLflow run nested under the study's, reports its metric to the pruner after each
evaluation, and writes how it ended to the result file the order names.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from tracker.errors import EXIT_INTERRUPTED
from tracker.garbage_collection import collect_nothing_at_exit


class Pruning:
    """Parts.should_stop for a trial: reports the study's metric to Optuna after each evaluation
    and asks its pruner. Evaluations are numbered 1, 2, ...: trials that evaluate at different
    steps (other batch sizes) are compared evaluation for evaluation."""

    def __init__(self, order: Mapping[str, Any], evaluated: int = 0):
        """`evaluated`: the evaluations a continued run made before its checkpoint."""
        import optuna

        from tracker.sweep.study import SweepSettings, make_pruner, open_storage

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        settings = SweepSettings(**order["settings"])
        study = optuna.load_study(
            storage=open_storage(settings.storage), study_name=settings.study, pruner=make_pruner(settings)
        )
        self.trial = optuna.trial.Trial(study, order["trial_id"])
        self.metric, self.evaluations = settings.metric, evaluated

    def __call__(self, step: int, metrics: Mapping[str, float]) -> bool:
        self.evaluations += 1
        value = metrics.get(self.metric)
        if value is None:
            return False
        self.trial.report(float(value), self.evaluations)
        return self.trial.should_prune()


def run_trial(order: Mapping[str, Any]) -> dict[str, Any]:
    """Run the trial the order describes; how it ended, for the sweep."""
    from tracker.console import Console
    from tracker.errors import ExperimentError
    from tracker.recipe import run_tracked
    from tracker.registry import load_registry
    from tracker.spec.check import check_experiment
    from tracker.spec.parse import parse_override, parse_unset, read_experiment
    from tracker.tracking.run import RunLabels

    registry = load_registry()
    overrides = [parse_override(text) for text in order["overrides"]]
    raw, problems = read_experiment(Path(order["file"]), overrides, [parse_unset(text) for text in order["unsets"]])
    experiment = None
    if raw is not None:  # the trial is the experiment its values make; [sweep] was checked by the sweep
        raw = replace(raw, data={name: value for name, value in raw.data.items() if name != "sweep"})
        experiment, check_problems = check_experiment(raw, registry, order["allow_code"])
        problems += check_problems
    if experiment is None or problems:
        return {"state": "FAIL", "reason": "; ".join(str(problem) for problem in problems)}
    console = Console(order["verbosity"])
    labels = RunLabels(order["run_name"], order["tags"])
    resume = _checkpoint_to_continue(order, experiment, registry)
    if resume is not None:
        console.say("continues", f"run {resume.run_id} from its checkpoint at step {resume.checkpoint.info.step}")
    evaluated = _evaluations_before(resume, order["settings"]["metric"]) if resume else 0
    should_stop = Pruning(order, evaluated) if order["settings"]["pruner"] != "none" else None
    try:
        result = run_tracked(experiment, registry, console, resume, labels, should_stop)
    except ExperimentError as error:
        return {"state": "FAIL", "reason": experiment.redactor.text("; ".join(str(p) for p in error.problems))}
    except KeyboardInterrupt:
        return {"state": "INTERRUPTED", "reason": "stopped with its sweep"}
    except Exception as error:
        return {"state": "FAIL", "reason": experiment.redactor.text(f"{type(error).__name__}: {error}")}
    metric = order["settings"]["metric"]
    value = result.eval_metrics.get(metric)
    ended = {"run_id": result.run_id, "steps": result.steps}
    if result.cut_short:
        return {**ended, "state": "PRUNED", "value": value}
    if value is None:
        return {**ended, "state": "FAIL", "reason": f"the run computed no {metric}"}
    return {**ended, "state": "COMPLETE", "value": float(value)}


def _checkpoint_to_continue(order: Mapping[str, Any], experiment: Any, registry: Any) -> Any:
    """Where the interrupted trial's run this one continues left off (tracker.resume.Resume), the
    same settings checked; None when there is none, or it saved no checkpoint: a new run."""
    if order.get("continues") is None:
        return None
    from tracker.errors import ExperimentError
    from tracker.resume.command import NothingToResume, ResumeError, find_resumable
    from tracker.spec.parse import parse_override, parse_unset
    from tracker.stores import StoreError
    from tracker.tracking import tracking_uri

    # The trial's own overrides, given again: a value that is a secret was stored masked.
    overrides = [parse_override(text) for text in order["overrides"]]
    unsets = [parse_unset(text) for text in order["unsets"]]
    uri = tracking_uri(experiment.settings["tracking"])
    try:
        _, where = find_resumable(order["continues"], uri, overrides, unsets, order["allow_code"], registry)
    except (NothingToResume, ResumeError, StoreError, ExperimentError):
        return None
    return where


def _evaluations_before(resume: Any, metric: str) -> int:
    """How many times the continued run evaluated up to its checkpoint: its next evaluation is
    the pruner's next step."""
    from tracker.stores import open_store

    key = metric.replace("eval_", "eval/", 1)
    history = open_store(resume.store).get_metric_history(resume.run_id, key)
    return sum(1 for point in history if point.step <= resume.checkpoint.info.step)


def main() -> int:
    from tracker.executors import stop_with_parent
    from tracker.hub import offline_unless_the_hub_answers

    offline_unless_the_hub_answers()  # a Ray task's process: the command's answer stayed on its machine
    order = json.loads(sys.stdin.read())
    stop_with_parent(order)
    try:
        ended = run_trial(order)
    except Exception as error:
        ended = {"state": "FAIL", "reason": f"{type(error).__name__}: {error}"}
    Path(order["result"]).write_text(json.dumps(ended), encoding="utf-8")
    return EXIT_INTERRUPTED if ended["state"] == "INTERRUPTED" else 0 if ended["state"] != "FAIL" else 1


if __name__ == "__main__":
    collect_nothing_at_exit()
    sys.exit(main())

"""Hyperparameter studies: `xp sweep FILE` runs the trials of the file's [sweep] with Optuna, each
an MLflow run nested under the study's run.

- `space`: [sweep.space] read and checked against the experiment schema (at `xp validate` too);
- `study`: the Optuna study (a real database), which trials count, the next trial to run;
- `parent`: the study's MLflow run, its summary, table and plots;
- `trial`: one trial, in a process of its own;
- `driver`: runs trials `parallel` at a time, keeps Optuna and MLflow in step, stops cleanly;
- `plan`: `xp sweep --dry-run`.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

from tracker.console import Console
from tracker.errors import EXIT_INTERRUPTED, ExperimentError, Problem
from tracker.experiment import Experiment


def sweep_settings_of(experiment: Experiment) -> Any:
    """The resolved [sweep] of a checked experiment; ExperimentError when it has none, or when it
    cannot be tracked (trials are MLflow runs under the study's run)."""
    from tracker.sweep.study import sweep_settings
    from tracker.tracking import tracking_uri

    file = str(experiment.path)
    if experiment.sweep is None:
        raise ExperimentError(
            [
                Problem(
                    file,
                    "sweep",
                    None,
                    'no [sweep] section: add one, e.g. [sweep] method = "grid" '
                    'and [sweep.space] "optimizer.lr" = [2e-5, 5e-5]',
                )
            ]
        )
    if not experiment.settings["tracking"]["enabled"]:
        raise ExperimentError(
            [
                Problem(
                    file,
                    "tracking",
                    "enabled",
                    "a sweep logs every trial as an MLflow run nested under the study's run: set enabled = true",
                )
            ]
        )
    return sweep_settings(experiment, tracking_uri(experiment.settings["tracking"]))


def storage_of(experiment: Experiment) -> str | None:
    """Where the study of the experiment's [sweep] lives, or None without one."""
    from tracker.sweep.study import default_storage
    from tracker.tracking import tracking_uri

    if experiment.sweep is None:
        return None
    return experiment.sweep["storage"] or default_storage(tracking_uri(experiment.settings["tracking"]))


def dry_run(experiment: Experiment, registry: Any, edits: Any) -> str:
    from tracker.recipe import load_data
    from tracker.sweep.plan import plan_text

    settings = sweep_settings_of(experiment)
    data = load_data(experiment, registry)
    return plan_text(experiment, registry, settings, edits, len(data.splits["train"]))


def run_sweep(experiment: Experiment, registry: Any, edits: Any, console: Console, executor: Any) -> int:
    """Run what is left of the study, each trial a job of `executor` (tracker.cli_options.
    ExecutorChoice); the exit code (0, 1 when every trial of this sweep failed, 130 when stopped).
    ExperimentError for bad input, before any trial."""
    with console.libraries_quiet():
        return _run_sweep(experiment, registry, edits, console, executor)


def _run_sweep(experiment: Experiment, registry: Any, edits: Any, console: Console, executor: Any) -> int:
    from tracker.recipe import check_machine
    from tracker.stores import open_store_for_runs, patient_uri
    from tracker.sweep.driver import Sweep, counts_text, retire_stale_trials, trials_table
    from tracker.sweep.parent import ParentRun
    from tracker.sweep.study import Study
    from tracker.tracking import tracking_uri
    from tracker.tracking.uris import tracked_run

    settings = sweep_settings_of(experiment)
    check_machine(experiment, settings.storage)  # the stores answer, the hardware exists: before any trial
    uri = tracking_uri(experiment.settings["tracking"])
    study = Study(settings, experiment.space)
    wrong = study.belongs()
    if wrong:
        raise ExperimentError([Problem(str(experiment.path), "sweep", "study", wrong)])
    stale = study.stale_trials()
    console.say(
        "sweep",
        f"{settings.study}: {settings.method}, {settings.trials} trials, {settings.parallel} at once, "
        f"pruner {settings.pruner}; {settings.direction} {settings.metric}",
    )
    client = open_store_for_runs(patient_uri(uri))
    if not stale and study.remaining() == 0:
        done = study.counted()
        console.write(
            f"nothing to run: the study {settings.study} has all its {settings.trials} trials ({counts_text(done)})"
        )
        if (
            study.parent_run_id
            and client.get_run(study.parent_run_id).info.status != "FINISHED"
            and all(trial.state.is_finished() for trial in done)
        ):  # its sweep stopped right after the last trial
            parent = ParentRun.open(client, experiment, settings, study)
            _end_complete(parent, parent.summarize(study, settings))
        sys.stdout.write(trials_table(done, settings))
        return 0
    # A cluster that does not answer ends the sweep here, before the study's run exists.
    with contextlib.closing(executor.open_or_exit()) as jobs:
        parent = ParentRun.open(client, experiment, settings, study)
        parent_run = client.get_run(parent.run_id)
        tracked = tracked_run(parent.run_id, parent_run.info.run_name, experiment.name, parent.experiment_id, uri)
        console.say("study run", f"{tracked.run_name} (id {tracked.run_id})")
        retire_stale_trials(study, parent, console.say)
        already = len(study.finished())
        if already:
            console.say("continuing", f"{already} of {settings.trials} trials done; {study.remaining()} to run")
        outcome = Sweep(experiment, registry, settings, study, parent, edits, console, jobs).run()

    best = parent.summarize(study, settings)
    running = [t for t in study.trials() if t.state.name == "RUNNING"]
    complete = study.remaining() == 0 and not running
    if complete:
        _end_complete(parent, best)
    elif outcome.interrupted and not running:
        parent.end("KILLED", "the sweep was stopped; `xp sweep` again continues it")
    else:  # another process still runs trials of this study: it ends the study's run
        parent.heartbeat.stop()
    sys.stdout.write(trials_table(study.trials(), settings))
    if best is not None:
        console.write(
            f"best       trial {best.number}: {settings.metric} {best.value:.4f} "
            f"({', '.join(f'{k}={v}' for k, v in best.params.items())})"
        )
    console.write(
        f"study run  {tracked.run_name} (id {tracked.run_id}); open the UI: {tracked.ui_command}, "
        f"then {tracked.run_url}"
    )
    if outcome.interrupted:
        console.write(f"stopped    {study.remaining()} trials left; continue with the same `xp sweep` command")
        return EXIT_INTERRUPTED
    finished = outcome.finished
    return 1 if finished and all(f.state in ("FAIL", "INVALID") for f in finished) else 0


def _end_complete(parent: Any, best: Any) -> None:
    if best is not None:
        parent.log_best_params(best)
    parent.end("FINISHED")

"""The MLflow side of a sweep: one parent run per study, under which every trial's run nests
(`mlflow.parentRunId`), holding the study's settings and space, and in the end the best trial,
a table of all trials and Optuna's plots.

The parent run is made once, by the process that created the study, and its id kept in the
study: a sweep run again, or a second process on the same study, finds the same parent.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import socket
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tracker.experiment import Experiment
from tracker.heartbeat import PROCESS_TAG, Heartbeat
from tracker.sweep.study import INTERRUPTED, RUN_ID, Study, SweepSettings, state_of

ROLE_TAG = "xp.sweep"  # "parent" on the study's run, "trial" on each trial's run
STUDY_TAG = "xp.sweep.study"
TRIAL_TAG = "xp.sweep.trial"  # the trial's number in the study
STATE_TAG = "xp.sweep.state"  # the trial's Optuna state: COMPLETE, PRUNED, FAIL
PARENT_WAIT_SECONDS = 30.0  # how long a second process waits for the first to make the parent run


def trial_tags(settings: SweepSettings, parent_run_id: str, number: int) -> dict[str, str]:
    """The tags that nest a trial's run under its study's run."""
    return {"mlflow.parentRunId": parent_run_id, ROLE_TAG: "trial", STUDY_TAG: settings.study, TRIAL_TAG: str(number)}


class ParentRun:
    """The study's MLflow run, as one `xp sweep` process holds it."""

    def __init__(self, client: Any, run_id: str, experiment_id: str):
        self.client, self.run_id, self.experiment_id = client, run_id, experiment_id
        self.heartbeat = Heartbeat(client, run_id).start()

    @classmethod
    def open(cls, client: Any, experiment: Experiment, settings: SweepSettings, study: Study) -> ParentRun:
        """The study's parent run, made if this process created the study, set RUNNING again."""
        from tracker.tracking.store_writer import experiment_named

        run_id = study.parent_run_id
        deadline = time.monotonic() + PARENT_WAIT_SECONDS
        while run_id is None and not study.created and time.monotonic() < deadline:
            time.sleep(0.5)  # the process that created the study is making it
            run_id = study.parent_run_id
        if run_id is None:
            run_id = _create(client, experiment_named(client, experiment.name), experiment, settings, study)
            study.set_parent_run_id(run_id)
        run = client.get_run(run_id)
        if run.info.status != "RUNNING":
            client.update_run(run_id, status="RUNNING")
        client.set_tag(run_id, PROCESS_TAG, f"{socket.gethostname()}:{os.getpid()}")
        with contextlib.suppress(Exception):  # the reason of an earlier stop no longer holds
            client.delete_tag(run_id, "xp.error")
        return cls(client, run_id, run.info.experiment_id)

    def find_trial_run(self, study_name: str, number: int) -> Any | None:
        from tracker.stores import quoted, search_runs

        runs = search_runs(
            self.client,
            [self.experiment_id],
            f"tags.`{STUDY_TAG}` = '{quoted(study_name)}' and tags.`{TRIAL_TAG}` = '{number}'",
            newest_first=True,
        )
        return next(iter(runs), None)

    def summarize(self, study: Study, settings: SweepSettings) -> Any:
        """The trials table, the plots, the best trial's values and metric; the best trial."""
        trials = study.trials()
        counted = study.counted(trials)
        done = [t for t in counted if t.state.is_finished()]
        states = {state: sum(1 for t in done if t.state.name == state) for state in ("COMPLETE", "PRUNED", "FAIL")}
        self.client.set_tag(self.run_id, "xp.sweep.trials", ", ".join(f"{n} {s.lower()}" for s, n in states.items()))
        complete = [t for t in done if t.state.name == "COMPLETE" and t.value is not None]
        best = study.study.best_trial if complete else None
        with tempfile.TemporaryDirectory(prefix="xp-sweep-") as scratch:
            folder = Path(scratch)
            _write_table(folder / "trials.csv", trials, settings)
            self.client.log_artifact(self.run_id, str(folder / "trials.csv"))
            for path in _plots(study.study, folder, settings):
                self.client.log_artifact(self.run_id, str(path), "plots")
        if best is not None:
            self.client.log_metric(
                self.run_id, f"best/{settings.metric.removeprefix('eval_')}", best.value, step=len(done)
            )
            self.client.set_tag(self.run_id, "xp.sweep.best_trial", str(best.number))
            run_id = best.user_attrs.get(RUN_ID)
            if run_id:
                self.client.set_tag(self.run_id, "xp.sweep.best_run", run_id)
            for key, value in best.params.items():
                self.client.set_tag(self.run_id, f"best.{key}", str(value))
        return best

    def log_best_params(self, best: Any) -> None:
        """The best trial's values as params, once the study is complete (params cannot change:
        a study continued with more trials keeps the first, its tags say the newest)."""
        from mlflow.entities import Param

        with contextlib.suppress(Exception):
            self.client.log_batch(
                self.run_id, params=[Param(f"best.{key}", str(value)) for key, value in best.params.items()]
            )

    def end(self, status: str, error: str | None = None) -> None:
        self.heartbeat.stop()
        if error:
            self.client.set_tag(self.run_id, "xp.error", error)
        self.client.set_terminated(self.run_id, status=status)


def _create(client: Any, experiment_id: str, experiment: Experiment, settings: SweepSettings, study: Study) -> str:
    from mlflow.entities import Param

    space = {d.key: d.values.describe() for d in study.space}
    note = "Sweep of " + "; ".join(f"{key}: {text}" for key, text in space.items())
    tags = {
        ROLE_TAG: "parent",
        STUDY_TAG: settings.study,
        "mlflow.source.name": str(experiment.path.resolve()),
        "xp.file": str(experiment.path),
        "mlflow.note.content": note,
        "xp.sweep.method": settings.method,
    }
    run = client.create_run(experiment_id, run_name=settings.study, tags=tags)
    run_id = run.info.run_id
    params = {f"sweep.{key}": value for key, value in settings.shown().items()}
    params.update({f"space.{key}": text for key, text in space.items()})
    client.log_batch(run_id, params=[Param(key, str(value)[:6000]) for key, value in params.items()])
    with tempfile.TemporaryDirectory(prefix="xp-sweep-") as scratch:
        folder = Path(scratch)
        (folder / experiment.path.name).write_text(experiment.shown_text, encoding="utf-8")
        client.log_artifact(run_id, str(folder / experiment.path.name), "config")
        (folder / "space.json").write_text(
            json.dumps({"settings": settings.shown(), "space": space}, indent=2), encoding="utf-8"
        )
        client.log_artifact(run_id, str(folder / "space.json"), "sweep")
    return run_id


def _write_table(path: Path, trials: Sequence[Any], settings: SweepSettings) -> None:
    keys = list(dict.fromkeys(key for trial in trials for key in trial.params))
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["trial", "state", settings.metric, *keys, "seconds", "run_id", "note"])
        for trial in sorted(trials, key=lambda t: t.number):
            state = state_of(trial)
            seconds = (
                f"{(trial.datetime_complete - trial.datetime_start).total_seconds():.1f}"
                if trial.datetime_complete and trial.datetime_start
                else ""
            )
            note = trial.user_attrs.get(INTERRUPTED) or trial.user_attrs.get("xp.error", "")
            writer.writerow(
                [
                    trial.number,
                    state,
                    "" if trial.value is None else trial.value,
                    *(trial.params.get(key, "") for key in keys),
                    seconds,
                    trial.user_attrs.get(RUN_ID, ""),
                    note,
                ]
            )


def _plots(study: Any, folder: Path, settings: SweepSettings) -> list[Path]:
    """Optuna's optimization history, parameter importances and parallel coordinates, as PNG; a
    plot the trials cannot make yet (one complete trial, one value) is left out."""
    import warnings

    import matplotlib
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # "no complete trials" is why a plot is left out
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure
    from optuna.visualization import matplotlib as plots

    made = []
    for name, draw in (
        ("optimization_history", plots.plot_optimization_history),
        ("param_importances", plots.plot_param_importances),
        ("parallel_coordinate", plots.plot_parallel_coordinate),
    ):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                axes = draw(study, target_name=settings.metric)
        except Exception:
            plt.close("all")
            continue
        figure = (axes.flat[0] if hasattr(axes, "flat") else axes).figure
        assert isinstance(figure, Figure)  # Optuna draws on a figure of its own, not on a subfigure
        figure.set_size_inches(9, 5.5)
        figure.tight_layout()
        path = folder / f"{name}.png"
        figure.savefig(path, dpi=100)
        plt.close(figure)
        made.append(path)
    return made


def trial_states(trials: Sequence[Any]) -> Mapping[str, int]:
    counts: dict[str, int] = {}
    for trial in trials:
        state = state_of(trial)
        counts[state] = counts.get(state, 0) + 1
    return counts

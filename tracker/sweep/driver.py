"""`xp sweep`: runs a study's remaining trials, `parallel` at a time, each in its own process
(tracker.sweep.trial), and keeps Optuna and MLflow in step.

Before any trial: trials left running by a sweep that died are failed as interrupted (and their
values queued again), their runs ended KILLED. Ctrl-C or SIGTERM stops the running trials (their
runs end KILLED), fails them as interrupted, and ends the study's run KILLED: `xp sweep` again
continues with what is left. A trial that fails for a reason of its own is recorded with the
reason, and the study goes on.
"""

from __future__ import annotations

import json
import signal
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tracker.console import Console
from tracker.executors.runs import resources_of
from tracker.experiment import Experiment
from tracker.sweep.parent import STATE_TAG, TRIAL_TAG, ParentRun, trial_states, trial_tags
from tracker.sweep.space import override_text
from tracker.sweep.study import HEARTBEAT_SECONDS, INVALID, RUN_ID, Claimed, Study, SweepSettings, state_of

STOP_GRACE_SECONDS = 60.0  # how long stopped trials get to end their runs before they are killed


@dataclass
class Finished:
    """How one trial ended, as this sweep saw it."""

    number: int
    values: dict[str, Any]
    state: str  # COMPLETE, PRUNED, FAIL, INTERRUPTED, INVALID (its values make an invalid experiment)
    value: float | None = None
    reason: str = ""
    seconds: float = 0.0
    run_id: str | None = None


@dataclass
class SweepOutcome:
    finished: list[Finished] = field(default_factory=list)
    interrupted: bool = False
    best: Any = None  # the study's best FrozenTrial
    complete: bool = False  # the study has all its trials


class Sweep:
    def __init__(
        self,
        experiment: Experiment,
        registry: Any,
        settings: SweepSettings,
        study: Study,
        parent: ParentRun,
        edits: Any,
        console: Console,
        executor: Any,
    ):
        self.experiment, self.registry, self.settings, self.study = experiment, registry, settings, study
        self.parent, self.edits, self.console, self.executor = parent, edits, console, executor
        self.outcome = SweepOutcome()
        self.stopping = threading.Event()
        self.failure: BaseException | None = None  # a worker's own failure (the store, the study): the sweep stops
        self.jobs: dict[int, Any] = {}  # trial number -> its job (tracker.executors.Handle)
        self.lock = threading.Lock()
        self.scratch = Path(tempfile.mkdtemp(prefix="xp-sweep-"))
        self.logs = experiment.output_dir / settings.study

    def run(self) -> SweepOutcome:
        workers = [
            threading.Thread(target=self.work, name=f"xp-sweep-{index}", daemon=True)
            for index in range(self.settings.parallel)
        ]
        previous = {signum: signal.signal(signum, self.stop) for signum in (signal.SIGINT, signal.SIGTERM)}
        try:
            for worker in workers:
                worker.start()
            while any(worker.is_alive() for worker in workers):
                for worker in workers:
                    worker.join(timeout=0.2)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        if self.failure is not None:
            raise self.failure
        return self.outcome

    def stop(self, signum: int, frame: Any) -> None:
        """Ctrl-C or SIGTERM: running trials get SIGTERM (their runs end KILLED); a second one
        kills them."""
        with self.lock:
            second = self.stopping.is_set()
            self.stopping.set()
            self.outcome.interrupted = True
            for job in self.jobs.values():
                job.stop(kill=second)
        self.console.say(
            "stopping",
            "the running trials end their runs KILLED; `xp sweep` again continues the study"
            if not second
            else "killing the running trials",
        )

    def work(self) -> None:
        try:
            while not self.stopping.is_set():
                claimed = self.study.claim()
                if claimed is None:
                    return
                finished = self.run_trial(claimed)
                self.record(claimed, finished)
        except BaseException as failure:
            with self.lock:
                self.failure = self.failure or failure
                self.stopping.set()

    def run_trial(self, claimed: Claimed) -> Finished:
        values = ", ".join(override_text(key, value) for key, value in claimed.values.items())
        continuing = " (continues the run of the interrupted trial with these values)" if claimed.continues else ""
        self.console.say(f"trial {claimed.number}", (values or "(the experiment as written)") + continuing)
        invalid = self.invalid(claimed)
        if invalid:
            return Finished(claimed.number, claimed.values, "INVALID", reason=invalid)
        result_path = self.scratch / f"trial-{claimed.number}.json"
        order = {
            "file": str(self.experiment.path),
            "allow_code": self.edits.allow_code,
            "overrides": [o.text for o in self.edits.overrides]
            + [override_text(key, value) for key, value in claimed.values.items()],
            "unsets": [u.text for u in self.edits.unsets],
            "settings": asdict(self.settings),
            "trial_id": claimed.trial_id,
            "continues": claimed.continues,
            "run_name": f"{self.settings.study}-trial-{claimed.number}",
            "tags": trial_tags(self.settings, self.parent.run_id, claimed.number),
            "result": str(result_path),
            "verbosity": self.console.verbosity if self.settings.parallel == 1 else 0,
        }
        log = None
        # Trials side by side, or elsewhere: a console file each.
        if self.settings.parallel > 1 or not self.executor.shares_console:
            self.logs.mkdir(parents=True, exist_ok=True)
            log = str((self.logs / f"trial-{claimed.number}.log").resolve())
        started = time.monotonic()
        with self.lock:
            if self.stopping.is_set():
                return Finished(claimed.number, claimed.values, "INTERRUPTED", reason="stopped before it started")
            cpus, gpus = resources_of(self.experiment)
            job = self.executor.start("tracker.sweep.trial", order, log, cpus=cpus, gpus=gpus)
            self.jobs[claimed.number] = job
        while not job.wait(HEARTBEAT_SECONDS):
            self.study.beat(claimed)
        with self.lock:
            del self.jobs[claimed.number]
        seconds = time.monotonic() - started
        ended = json.loads(result_path.read_text()) if result_path.exists() else {}
        state = ended.get("state") or ("INTERRUPTED" if self.stopping.is_set() else "FAIL")
        reason = ended.get("reason") or ("" if state != "FAIL" else _death(job.returncode))
        return Finished(claimed.number, claimed.values, state, ended.get("value"), reason, seconds, ended.get("run_id"))

    def invalid(self, claimed: Claimed) -> str | None:
        """Why the experiment the trial's values make fails the checks (a sample no key alone rules
        out: a grid's points were all checked with the file, a sample's only now), or None."""
        from tracker.errors import ExperimentError
        from tracker.sweep.plan import trial_experiment

        try:
            trial_experiment(self.experiment, self.registry, claimed.values, self.edits)
        except ExperimentError as error:
            located = (f"[{p.section}] {p.key}: {p.message}" if p.key else p.message for p in error.problems)
            return self.experiment.redactor.text("; ".join(located))
        return None

    def record(self, claimed: Claimed, finished: Finished) -> None:
        """Tell Optuna and tag the trial's run; say how it ended."""
        run_id = finished.run_id
        if run_id is None:
            found = self.parent.find_trial_run(self.settings.study, claimed.number)
            run_id = found.info.run_id if found is not None else None
        finished.run_id = run_id
        if finished.state == "INTERRUPTED":
            self.study.interrupt(_frozen(self.study, claimed), finished.reason or "stopped with its sweep", run_id)
            self.end_stranded_run(run_id, "KILLED", "the sweep was stopped")
        else:
            attrs = {RUN_ID: run_id} if run_id else {}
            if finished.reason:
                attrs["xp.error"] = finished.reason
            if finished.state == "INVALID":  # a failure to Optuna, told apart by xp
                attrs[INVALID] = finished.reason
            state = "FAIL" if finished.state == "INVALID" else finished.state
            self.study.tell(claimed, state, finished.value, attrs)
            if finished.state == "FAIL":
                self.end_stranded_run(run_id, "FAILED", finished.reason)
        if run_id:
            self.parent.client.set_tag(run_id, STATE_TAG, finished.state)
            self.parent.client.set_tag(run_id, TRIAL_TAG, str(claimed.number))  # a continued run: its trial now
        with self.lock:
            self.outcome.finished.append(finished)
        self.console.say(f"trial {claimed.number}", describe(finished, self.settings))

    def end_stranded_run(self, run_id: str | None, status: str, reason: str) -> None:
        """A trial process that died before ending its run leaves it RUNNING: end it."""
        if run_id is None:
            return
        run = self.parent.client.get_run(run_id)
        if run.info.status == "RUNNING":
            self.parent.client.set_tag(run_id, "xp.error", reason)
            self.parent.client.set_terminated(run_id, status=status)


def retire_stale_trials(study: Study, parent: ParentRun, say: Any) -> None:
    """Trials left running by a sweep that is gone: failed as interrupted, values queued again,
    their runs ended KILLED."""
    for trial in study.stale_trials():
        found = parent.find_trial_run(study.settings.study, trial.number)
        study.interrupt(trial, "its sweep stopped while it ran", found.info.run_id if found is not None else None)
        if found is not None and found.info.status == "RUNNING":
            parent.client.set_tag(found.info.run_id, "xp.error", "its sweep stopped while it ran")
            parent.client.set_terminated(found.info.run_id, status="KILLED")
        if found is not None:
            parent.client.set_tag(found.info.run_id, STATE_TAG, "INTERRUPTED")
        say("recovered", f"trial {trial.number} was left running by a sweep that stopped: it runs again")


def describe(finished: Finished, settings: SweepSettings) -> str:
    metric = settings.metric.replace("eval_", "eval/", 1)
    if finished.state == "COMPLETE":
        return f"complete: {metric} {finished.value:.4f} in {finished.seconds:.1f}s"
    if finished.state == "PRUNED":
        return f"pruned after {finished.seconds:.1f}s" + (
            f" ({metric} {finished.value:.4f})" if finished.value is not None else ""
        )
    if finished.state == "INTERRUPTED":
        return "interrupted: runs again when the sweep continues"
    if finished.state == "INVALID":
        return f"invalid: its values make an experiment that fails the checks: {finished.reason}"
    return f"failed: {finished.reason}"


def trials_table(trials: Sequence[Any], settings: SweepSettings) -> str:
    from tracker.tables import render_table

    rows = []
    for trial in sorted(trials, key=lambda t: t.number):
        state = state_of(trial)
        value = "" if trial.value is None else f"{trial.value:.4f}"
        values = ", ".join(override_text(key, value) for key, value in trial.params.items())
        rows.append([str(trial.number), state.lower(), value, values, trial.user_attrs.get(RUN_ID, "-")[:12]])
    return render_table(["trial", "state", settings.metric.replace("eval_", "eval/", 1), "values", "run id"], rows)


def counts_text(trials: Sequence[Any]) -> str:
    return ", ".join(f"{count} {state.lower()}" for state, count in sorted(trial_states(trials).items()))


def _frozen(study: Study, claimed: Claimed) -> Any:
    return next(t for t in study.trials() if t.number == claimed.number)


def _death(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        name = signal.Signals(-returncode).name
        hint = " (out of memory?)" if name == "SIGKILL" else ""
        return f"the trial process was killed by {name}{hint}"
    return f"the trial process exited with code {returncode} without a result"

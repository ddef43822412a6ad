"""`xp run --executor ray`: every experiment at once as a job of the executor, which schedules
them on the cluster's CPUs and GPUs; each run's summary as it ends, then the same table as a local
`xp run`. Ctrl-C stops them all: jobs not started never start, running ones end their runs KILLED."""

from __future__ import annotations

import json
import signal
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tracker.components import RunResult, TrackedRun
from tracker.experiment import Experiment
from tracker.session import Outcome

POLL_SECONDS = 0.5


def resources_of(experiment: Experiment) -> tuple[float | None, float | None]:
    """CPUs and GPUs a run asks the cluster for, from its [hardware]: `cpu_threads` CPUs (else the
    executor's default), a GPU unless it trains on the CPU."""
    hardware = experiment.settings["hardware"]
    gpus = 1.0 if hardware["device"] in ("cuda",) else None
    return hardware["cpu_threads"], gpus


def run_all(
    executor: Any, experiments: Sequence[Experiment], edits: Any, verbosity: int, report: Callable[[str], None]
) -> tuple[list[Outcome], bool]:
    """The outcome of each experiment, in their order, and whether they were stopped."""
    scratch = Path(tempfile.mkdtemp(prefix="xp-jobs-"))
    jobs = []
    for index, experiment in enumerate(experiments):
        result = scratch / f"{index}.json"
        order = {
            "file": str(experiment.path.resolve()),
            "overrides": [o.text for o in edits.overrides],
            "unsets": [u.text for u in edits.unsets],
            "allow_code": edits.allow_code,
            "verbosity": verbosity,
            "result": str(result),
        }
        cpus, gpus = resources_of(experiment)
        started = executor.start(
            "tracker.executors.worker", order, log=str(scratch / f"{index}.log"), cpus=cpus, gpus=gpus
        )
        jobs.append((experiment, started, result, scratch / f"{index}.log", time.perf_counter()))
    report(f"started {len(jobs)} experiment(s) on the executor; their consoles: {scratch}/<n>.log")
    signals: list[int] = []  # Ctrl-C and SIGTERM as they come: the first stops the jobs, a second kills them
    previous = {
        signum: signal.signal(signum, lambda signum, frame: signals.append(signum))
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    outcomes: dict[int, Outcome] = {}
    handled = 0
    try:
        while len(outcomes) < len(jobs):
            if len(signals) > handled:
                report(
                    "stopping: jobs not started never start, running ones end their runs KILLED"
                    if not handled
                    else "killing the running jobs"
                )
                for index, (_, handle, *_) in enumerate(jobs):
                    if index not in outcomes:
                        handle.stop(kill=handled > 0)
                handled = len(signals)
            for index, (experiment, handle, result, _, started) in enumerate(jobs):
                if index not in outcomes and handle.wait(POLL_SECONDS / len(jobs)):
                    outcomes[index] = _outcome(experiment, result, handle.returncode, time.perf_counter() - started)
                    summary = json.loads(result.read_text()).get("summary") if result.exists() else None
                    report(summary or f"{experiment.path}: {outcomes[index].status}: {outcomes[index].error}")
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        executor.close()
    return [outcomes[index] for index in range(len(jobs))], bool(signals)


def _outcome(experiment: Experiment, result_path: Path, returncode: int | None, seconds: float) -> Outcome:
    if not result_path.exists():
        if returncode is not None and returncode < 0:
            return Outcome(experiment, "killed", seconds, error="stopped before its run started")
        return Outcome(experiment, "failed", seconds, error=f"the job ended without a result (exit {returncode})")
    ended = json.loads(result_path.read_text())
    tracked = TrackedRun(**ended["tracked"]) if ended.get("tracked") else None
    result = (
        RunResult(eval_metrics=ended.get("eval_metrics") or {}, tracked=tracked)
        if ended["status"] == "finished"
        else None
    )
    return Outcome(experiment, ended["status"], ended["seconds"] or seconds, result, error=ended.get("error") or "")

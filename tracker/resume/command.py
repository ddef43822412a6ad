"""`xp resume RUN`: which stopped run, from which of its checkpoints, and its experiment built
again exactly as it ran: the same file, the same command-line overrides, the same resolved config."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tracker.errors import ExperimentError
from tracker.heartbeat import PROCESS_TAG, is_stale, last_beat
from tracker.redact import REDACTED
from tracker.resume.checkpoints import CHECKPOINTS_TAG, CheckpointInfo, Resume, latest_checkpoint
from tracker.stores import SHORT_ID, StoreError, experiment_ids, open_store, runs_selected


class ResumeError(Exception):
    """The run cannot be resumed: why, and what to do instead (exit code 2)."""


class NothingToResume(Exception):
    """The run ended well: there is nothing left to do (exit code 0)."""


def find_resumable(
    selector: str, store: str, overrides: Sequence[Any], unsets: Sequence[Any], allow_code: bool, registry: Any
) -> tuple[Any, Resume]:
    """The experiment of the stopped run named by `selector` (run id, unique id prefix or run
    name), rebuilt, and where to resume it from. `overrides` may give again the values of
    overrides the run was started with that were secrets (never stored)."""
    client = open_store(store)
    run = _find_run(client, selector)
    shown = f"run {run.info.run_name} ({run.info.run_id[:SHORT_ID]})"
    if run.info.status == "FINISHED":
        ended = time.strftime("%Y-%m-%d %H:%M", time.localtime((run.info.end_time or 0) / 1000))
        raise NothingToResume(f"{shown} FINISHED at {ended}: nothing to resume")
    alive = _still_alive(run)
    if alive:
        raise ResumeError(
            f"{shown} is still running ({alive}); stop it first, or, if its process is gone, "
            "wait until `xp runs` shows it stale"
        )
    folder = run.data.tags.get(CHECKPOINTS_TAG)
    if not folder:
        raise ResumeError(
            f"{shown} saved no checkpoints (its experiment has no [checkpoint] every_steps or "
            f"at_evaluation): it can only run again from the start, with `xp run`"
        )
    checkpoint = latest_checkpoint(Path(folder))
    if checkpoint is None:
        raise ResumeError(
            f"{shown} stopped before its first checkpoint (none in {folder}): "
            "it can only run again from the start, with `xp run`"
        )
    if checkpoint.info.run_id not in (None, run.info.run_id):  # None: saved while the store was away
        raise ResumeError(f"{shown}: the checkpoint in {checkpoint.folder} belongs to run {checkpoint.info.run_id}")
    experiment = rebuild_experiment(checkpoint.info, overrides, unsets, allow_code, registry)
    return experiment, Resume(run.info.run_id, store, checkpoint)


def rebuild_experiment(
    info: CheckpointInfo, overrides: Sequence[Any], unsets: Sequence[Any], allow_code: bool, registry: Any
) -> Any:
    """The experiment the checkpoint was saved by: its file with the run's overrides (those given
    now replace them key by key); refused when the resolved config is not the same."""
    from tracker.api import load_experiments
    from tracker.spec.parse import parse_override, parse_unset

    given = {override.path for override in overrides} | {unset.path for unset in unsets}
    stored_overrides = [parse_override(text) for text in info.overrides if not text.startswith("--unset ")]
    stored_unsets = [
        parse_unset(text.removeprefix("--unset ")) for text in info.overrides if text.startswith("--unset ")
    ]
    kept_overrides = [o for o in stored_overrides if o.path not in given]
    secret = [o.text.partition("=")[0] for o in kept_overrides if REDACTED in o.text]
    if secret:
        keys = ", ".join(secret)
        raise ResumeError(
            f"the run was started with secret values for {keys}, which were not stored; "
            f"give them again: xp resume RUN {' '.join(f'--set {key}=...' for key in secret)}"
        )
    file = Path(info.experiment_file)
    if not file.is_file():
        raise ResumeError(f"the run's experiment file {file} is gone; resuming needs it, unchanged")
    experiments, problems = load_experiments(
        [file],
        [*kept_overrides, *overrides],
        registry,
        [*(u for u in stored_unsets if u.path not in given), *unsets],
        allow_code,
    )
    if problems:
        raise ExperimentError(problems)
    [experiment] = experiments
    if experiment.config_digest != info.config_digest:
        raise ResumeError(
            f"{file} (with the run's overrides: {' '.join(info.overrides) or 'none'}) no longer "
            "resolves to the settings the run was started with; resuming needs the same settings. "
            "Put the file back as it was, or start a new run with `xp run`"
        )
    return experiment


def _find_run(client: Any, selector: str) -> Any:
    """The run `selector` names (tracker.stores.runs_selected): one, or the user says which."""
    try:
        runs = runs_selected(client, experiment_ids(client), selector)
    except StoreError as ambiguous:
        raise ResumeError(str(ambiguous)) from None
    if not runs:
        raise ResumeError(f"{selector}: no run with this id, id prefix or name")
    if len(runs) > 1:
        listed = ", ".join(f"{run.info.run_id[:SHORT_ID]} ({run.info.status})" for run in runs[:5])
        raise ResumeError(f"{len(runs)} runs are named {selector}: {listed}; give the run id")
    return client.get_run(runs[0].info.run_id)


def _still_alive(run: Any) -> str | None:
    """How a RUNNING run shows it is alive; None when it is not RUNNING or its process is gone."""
    now = time.time()
    if run.info.status != "RUNNING" or is_stale(run, now):
        return None
    host, _, pid = run.data.tags.get(PROCESS_TAG, "").rpartition(":")
    if host == socket.gethostname() and pid.isdigit() and not _process_exists(int(pid)):
        return None
    where = f"process {pid} on {host}, " if host else ""
    return f"{where}last heartbeat {now - last_beat(run):.0f}s ago"


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True

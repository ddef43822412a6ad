"""`xp runs`: the runs of a store as a table, runs whose process died without ending them flagged
as stale, and ending those as FAILED with the reason."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tracker.heartbeat import is_stale, last_beat
from tracker.stores import SHORT_ID, StoreError, all_experiments, search_runs

# eval/ metrics that time the evaluation rather than judge the model.
_TIMINGS = ("runtime", "per_second")


@dataclass(frozen=True)
class Listed:
    run: Any
    stale: bool


def list_runs(
    client: Any, experiment_names: Sequence[str], stale_after: float, now: float | None = None, limit: int | None = None
) -> list[Listed]:
    """The runs of the named experiments (every experiment when none is named), newest first."""
    now = time.time() if now is None else now
    experiments = list(all_experiments(client))
    if experiment_names:
        known = {experiment.name: experiment for experiment in experiments}
        missing = [name for name in experiment_names if name not in known]
        if missing:
            raise StoreError(
                f"no experiment named {', '.join(missing)}; there are: {', '.join(sorted(known)) or '(none)'}"
            )
        experiments = [known[name] for name in experiment_names]
    found = search_runs(client, [experiment.experiment_id for experiment in experiments], newest_first=True)
    listed = []
    for run in found:
        listed.append(Listed(run, is_stale(run, now, stale_after)))
        if limit is not None and len(listed) >= limit:
            break
    return listed


def end_stale_runs(client: Any, listed: Sequence[Listed]) -> list[Any]:
    """End every stale run as FAILED, at its last sign of life, saying why; the runs ended."""
    ended = []
    for entry in listed:
        if not entry.stale:
            continue
        run, beat = entry.run, last_beat(entry.run)
        client.set_tag(
            run.info.run_id,
            "xp.error",
            f"stale: no heartbeat since {_when(beat)}; its process ended without ending the run "
            "(killed, out of memory, or the machine stopped). Ended by `xp runs --end-stale`.",
        )
        client.set_terminated(run.info.run_id, "FAILED", end_time=int(beat * 1000))
        ended.append(run)
    return ended


def runs_table(listed: Sequence[Listed], now: float | None = None) -> str:
    from tracker.tables import render_table

    now = time.time() if now is None else now
    rows = []
    for entry in listed:
        run = entry.run
        status = (
            f"{run.info.status} (stale: silent {_duration(now - last_beat(run))})" if entry.stale else run.info.status
        )
        end = run.info.end_time / 1000 if run.info.end_time else now
        rows.append(
            [
                run.info.run_name or "-",
                run.info.run_id[:SHORT_ID],
                status,
                main_metric(run),
                _when(run.info.start_time / 1000),
                _duration(end - run.info.start_time / 1000),
                run.data.params.get("runner.use", "-"),
            ]
        )
    return render_table(["run", "id", "status", "main metric", "started", "duration", "runner"], rows)


def main_metric(run: Any) -> str:
    """The run's last value of its first evaluation metric other than the loss, else of the loss."""
    metrics = run.data.metrics
    judged = [key for key in sorted(metrics) if key.startswith(("eval/", "eval_")) and not key.endswith(_TIMINGS)]
    chosen = next((key for key in judged if key not in ("eval/loss", "eval_loss")), judged[0] if judged else None)
    return f"{chosen} {metrics[chosen]:.4f}" if chosen else "-"


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


def _duration(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"

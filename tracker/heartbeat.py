"""A run's heartbeat: while it runs, the time is written to its `xp.heartbeat` tag every
INTERVAL_SECONDS, so a run whose process died without a word (SIGKILL, out of memory, power
loss) is told apart from one still training: RUNNING, and no beat for far longer than that."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

TAG = "xp.heartbeat"  # seconds since the epoch, as text
PROCESS_TAG = "xp.process"  # host:pid of the process running the run: on this host, a dead pid is a dead run
INTERVAL_SECONDS = 30.0
# A run is stale when its last beat is older than this: ten beats missed, so a slow store or a
# long pause (a checkpoint written to a slow disk) is not mistaken for a death.
STALE_AFTER_SECONDS = 10 * INTERVAL_SECONDS


class Heartbeat:
    """Beats on a daemon thread from `start()` to `stop()`; a beat the store refuses is skipped, as
    training must not stop for the tracking store."""

    def __init__(self, client: Any, run_id: str, interval: float = INTERVAL_SECONDS):
        self.client, self.run_id, self.interval = client, run_id, interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"xp-heartbeat-{run_id[:8]}", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=self.interval)

    def _beat(self) -> None:
        while not self._stopped.is_set():
            with contextlib.suppress(Exception):
                self.client.set_tag(self.run_id, TAG, f"{time.time():.0f}")
            self._stopped.wait(self.interval)


def last_beat(run: Any) -> float:
    """When the run last showed it was alive: its last beat, else its start (runs from before
    heartbeats, or killed before the first beat), in seconds since the epoch."""
    beat = run.data.tags.get(TAG)
    try:
        return float(beat)
    except (TypeError, ValueError):
        return run.info.start_time / 1000


def is_stale(run: Any, now: float, stale_after: float = STALE_AFTER_SECONDS) -> bool:
    """RUNNING, but silent for longer than `stale_after` seconds: its process is gone."""
    return run.info.status == "RUNNING" and now - last_beat(run) > stale_after

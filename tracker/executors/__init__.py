"""Where experiments and sweep trials run: processes of this machine (`local`), or tasks on a Ray
cluster (`ray_tasks`), both started the same way: a module of xp (`python -m tracker.executors.worker`
for an experiment, `python -m tracker.sweep.trial` for a trial) reading its order, one JSON
document, on stdin and writing how it ended to a result file. A `Handle` follows one of them."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Mapping
from typing import Any, Protocol

PARENT = "parent_pid"  # the order's key: the pid of the process that started the job


class Handle(Protocol):
    """One started job."""

    def wait(self, timeout: float) -> bool:
        """True once the job ended; waits at most `timeout` seconds."""

    def stop(self, kill: bool = False) -> None:
        """Ask the job to stop as on Ctrl-C (its run ends KILLED); `kill`: at once."""

    @property
    def returncode(self) -> int | None:
        """The job's exit code (negative: the signal that ended it), None while it runs."""


class Executor(Protocol):
    # Whether a job may print to this console (log None): it runs here, as a child of this process.
    shares_console: bool

    def start(
        self,
        module: str,
        order: Mapping[str, Any],
        log: str | None = None,
        cpus: float | None = None,
        gpus: float | None = None,
    ) -> Handle:
        """Run `python -m module` with `order` on stdin, its console to the file `log` (None: this
        console), asking a scheduler for `cpus` and `gpus` (None: the executor's default)."""

    def close(self) -> None: ...


def executor_named(
    name: str, address: str | None = None, cpus: float | None = None, gpus: float | None = None
) -> Executor:
    """ "local" or "ray" (connected to `address`, or a local Ray started now)."""
    if name == "ray":
        from tracker.executors.ray_tasks import RayExecutor

        return RayExecutor(address, cpus, gpus)
    from tracker.executors.local import LocalExecutor

    return LocalExecutor()


def stop_with_parent(order: Mapping[str, Any]) -> None:
    """A job whose starter died (SIGKILL, a lost Ray worker) stops as on SIGTERM: its run ends
    KILLED instead of training on for nobody."""
    parent = order.get(PARENT)
    if parent is None:
        return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="xp-parent-watch", daemon=True).start()

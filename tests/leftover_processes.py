"""A test that fails or times out must not leave its processes running.

Many tests start real processes (`xp run`, `mlflow server`, a Ray head, Chromium). When one of
them fails or its `wait(timeout=...)` expires, the processes it started would run on and slow
or break the tests after it (a leftover `xp run` holding both CPUs made the next test time out
too). This autouse fixture ends, after each test, every process that test started and left
running: SIGTERM first, so an `xp run` can end its MLflow run, then SIGKILL.

Processes started by wider-scoped fixtures (a session's PostgreSQL or mlflow server) are set
up before the snapshot is taken and are left to those fixtures.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psutil
import pytest

GRACE_SECONDS = 10  # what an `xp run` needs to end its run KILLED after SIGTERM


def descendants() -> dict[tuple[int, float], psutil.Process]:
    """This process's descendants, keyed by pid and start time (a pid can be reused)."""
    found = {}
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            found[child.pid, child.create_time()] = child
    return found


def end(processes: list[psutil.Process]) -> None:
    """Terminate, wait, then kill what is still there."""
    running = []
    for process in processes:
        try:
            process.terminate()
            running.append(process)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(running, timeout=GRACE_SECONDS)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(alive, timeout=GRACE_SECONDS)


@pytest.fixture(autouse=True)
def end_processes_left_by_the_test() -> Iterator[None]:
    before = descendants()
    yield
    left = [process for key, process in descendants().items() if key not in before]
    if left:
        end(left)

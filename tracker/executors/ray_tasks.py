"""Jobs as Ray tasks: each one runs its xp module as a process on whichever node Ray schedules it,
with the CPUs and GPUs it asks for. The experiment files, data and store must be reachable at the
same paths from every node (one machine, or a shared filesystem); the job runs in the folder
`xp` ran in.

Ray is an optional extra (`pip install "xp-tracker[ray]"`); it is imported only here.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Mapping
from typing import Any

INSTALL = 'the ray executor needs Ray: pip install "xp-tracker[ray]"'
STOP_GRACE_SECONDS = 60.0  # a stopped job's time to end its run KILLED before it is killed


class RayUnavailable(Exception):
    """Ray is not installed, or its cluster cannot be reached."""


def _run_module(module: str, order: Mapping[str, Any], cwd: str, log: str | None) -> int:
    """The task: `python -m module` with `order` on stdin; its exit code. Cancelled (Ctrl-C on the
    driver), it passes SIGTERM on and waits for the job to end its run."""
    import json
    import subprocess
    import sys

    output = open(log, "w", encoding="utf-8") if log else None  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", module],
        stdin=subprocess.PIPE,
        cwd=cwd,
        stdout=output,
        stderr=subprocess.STDOUT if output else None,
        start_new_session=True,
    )
    assert process.stdin is not None  # stdin=PIPE
    process.stdin.write(json.dumps({**order, "parent_pid": os.getpid()}).encode())  # tracker.executors.PARENT
    process.stdin.close()
    try:
        while True:  # short waits: ray.cancel raises KeyboardInterrupt here only between Python steps
            try:
                return process.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                continue
    except BaseException:  # ray.cancel: stop the job as Ctrl-C would
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
        raise
    finally:
        if output is not None:
            output.close()


class RayHandle:
    def __init__(self, ray: Any, ref: Any):
        self.ray, self.ref, self.ended = ray, ref, False
        self.code: int | None = None

    def wait(self, timeout: float) -> bool:
        done, _ = self.ray.wait([self.ref], timeout=timeout)
        if not done:
            return False
        if not self.ended:
            self.ended = True
            try:
                self.code = self.ray.get(self.ref)
            except Exception:
                self.code = -int(signal.SIGTERM)
        return True

    def stop(self, kill: bool = False) -> None:
        self.ray.cancel(self.ref, force=kill)

    @property
    def returncode(self) -> int | None:
        return self.code


class RayExecutor:
    shares_console = False  # a task's output would come back through Ray's log stream, interleaved

    def __init__(self, address: str | None, cpus: float | None, gpus: float | None):
        try:
            import ray
        except ImportError:
            raise RayUnavailable(INSTALL) from None
        self.ray = ray
        try:
            if not ray.is_initialized():
                # address None: a Ray of this machine, started for this command and gone after it
                ray.init(
                    address=address,
                    include_dashboard=False,
                    logging_level=logging.WARNING,
                    log_to_driver=True,
                    configure_logging=True,
                )
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise RayUnavailable(f"cannot reach the Ray cluster at {address}: {error}") from None
        self.cpus, self.gpus = cpus, gpus  # from the command line: they win over each run's own
        self.task = ray.remote(_run_module)

    def start(
        self,
        module: str,
        order: Mapping[str, Any],
        log: str | None = None,
        cpus: float | None = None,
        gpus: float | None = None,
    ) -> RayHandle:
        options = {
            "num_cpus": next(c for c in (self.cpus, cpus, 1) if c is not None),
            "num_gpus": next(g for g in (self.gpus, gpus, 0) if g is not None),
            "max_retries": 0,
        }  # a failed run is reported, never run again behind the user's back
        return RayHandle(self.ray, self.task.options(**options).remote(module, dict(order), os.getcwd(), log))

    def close(self) -> None:
        self.ray.shutdown()

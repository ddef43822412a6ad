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
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import Any

INSTALL = 'the ray executor needs Ray: pip install "xp-tracker[ray]"'
STOP_GRACE_SECONDS = 60.0  # a stopped job's time to end its run KILLED before it is killed
ANSWER_SECONDS = 20.0  # how long a cluster gets to answer before the command gives up on it


class RayUnavailable(Exception):
    """Ray is not installed, or its cluster cannot be reached."""


def _run_module(module: str, order: Mapping[str, Any], cwd: str, log: str | None) -> int:
    """The task: `python -m module` with `order` on stdin; its exit code. Cancelled (Ctrl-C on the
    driver), it passes SIGTERM on and waits for the job to end its run."""
    import json
    import subprocess
    import sys

    # ray.cancel stops this task with _thread.interrupt_main(), which does nothing while SIGINT is
    # ignored, as it is in workers of a head started in the background (`ray start ... &` from a
    # shell): the task would outlive its cancel and the driver would wait for it for good.
    try:
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    except ValueError:  # not the worker's main thread: Ray's cancel does not reach it either way
        previous = None
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
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


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


def _wait_for_answer(address: str | None) -> None:
    """Return once the cluster at `address` answers; RayUnavailable if it does not within
    ANSWER_SECONDS. ray.init alone would wait for good where nothing answers, deaf to Ctrl-C (it
    waits in Ray's C++ client): so the head's port is tried here, then its GCS from a process that
    can be ended."""
    deadline = time.monotonic() + ANSWER_SECONDS
    client = address is not None and address.startswith("ray://")
    head = address.removeprefix("ray://") if client and address else _head_of(address)
    if head is None:  # a Ray started on this machine for this command
        return
    shown = address or head  # as the user wrote it: Ray turns 127.0.0.1 into this machine's address
    host, _, port = head.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=min(5.0, ANSWER_SECONDS)).close()
    except (OSError, ValueError) as error:
        reason = "no answer" if isinstance(error, TimeoutError) else getattr(error, "strerror", None) or error
        raise RayUnavailable(f"cannot reach the Ray cluster at {shown}: {reason}") from None
    if client:  # the Ray Client server: ray.init's own connection gives up after its retries
        return
    # Ray's client logs each failed try to this console from C++: the question goes to a process
    # of its own, whose output is kept, and which is ended when the time is up or on Ctrl-C.
    asking = subprocess.Popen(
        [sys.executable, "-c", "import sys; from ray._raylet import GcsClient; GcsClient(address=sys.argv[1])", head],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, said = asking.communicate(timeout=max(deadline - time.monotonic(), 1.0))
    except subprocess.TimeoutExpired:
        raise RayUnavailable(
            f"cannot reach the Ray cluster at {shown}: its port is open, but no Ray head answered within "
            f"{ANSWER_SECONDS:.0f} s (is it the head's GCS port, 6379 unless `ray start --port` said otherwise?)"
        ) from None
    finally:
        if asking.poll() is None:
            asking.kill()
            asking.wait()
    if asking.returncode != 0:
        last = said.strip().splitlines()[-1] if said.strip() else f"exit code {asking.returncode}"
        raise RayUnavailable(f"cannot reach the Ray cluster at {shown}: {last}")


def _head_of(address: str | None) -> str | None:
    """HOST:PORT of the cluster's head as ray.init finds it (RAY_ADDRESS, "auto": the cluster this
    machine started last); None: ray.init starts a Ray here."""
    address = address or os.environ.get("RAY_ADDRESS") or None  # ray.init reads it too
    if address is None:
        return None
    try:
        from ray._private.services import canonicalize_bootstrap_address
    except ImportError:  # a Ray that moved it: ray.init finds the head alone
        return None if address in ("auto", "local") else address
    try:
        return canonicalize_bootstrap_address(address)
    except (ConnectionError, ValueError) as error:
        raise RayUnavailable(f"cannot reach the Ray cluster at {address}: {error}") from None


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
                _wait_for_answer(address)
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

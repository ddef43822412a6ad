"""The training process's end of its tracking process (tracker.tracking.service): records go down
a pipe that never blocks training, answers come back on a thread of their own.

Writing a record is a JSON line and a non-blocking write: a few microseconds. Should the pipe be
full (the tracking process busy), the bytes wait in memory and go with the next record.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tracker.tracking.spool import decode, encode

# MLflow's REST client retries a request for minutes by default; the tracking process tries
# again itself, spooling meanwhile, and says so.
SERVICE_ENVIRONMENT = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


class ServiceGone(Exception):
    """The tracking process ended before answering."""


class TrackingChannel:
    """Starts the tracking process of one run and talks to it."""

    def __init__(self, uri: str, spool: Path, verbose: bool = False, system_metrics: bool = False):
        """`verbose`: the process's own output (MLflow's logs) goes to this console, not to its log
        file; `system_metrics`: the run will sample them."""
        self.spool = spool
        log, log_path = tempfile.mkstemp(prefix="xp-tracking-", suffix=".log")
        self.log_path = Path(log_path)
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tracker.tracking.service",
                    "--uri",
                    uri,
                    "--spool",
                    str(spool),
                    "--parent",
                    str(os.getpid()),
                    *(["--system-metrics"] if system_metrics else []),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=None if verbose else log,
                env={**os.environ, **SERVICE_ENVIRONMENT},
                start_new_session=True,
            )  # Ctrl-C in the terminal is for the training process alone
        finally:
            os.close(log)  # the process writes to a copy of its own
        # Both are pipes (subprocess.PIPE above), never None.
        assert self.process.stdin is not None and self.process.stdout is not None
        self.records, self.replies = self.process.stdin, self.process.stdout
        self.pipe = self.records.fileno()
        os.set_blocking(self.pipe, False)
        self.unsent = bytearray()
        self.seq = 0
        self.answers: dict[str, Any] = {}
        self.notes: list[dict[str, Any]] = []  # answers to show a person: outages, refusals
        self.changed = threading.Condition()
        threading.Thread(target=self._listen, name="xp-tracking-answers", daemon=True).start()

    def send(self, kind: str, **fields: Any) -> int:
        """Queue a record for the tracking process; its sequence number."""
        self.seq += 1
        self.unsent += encode({"seq": self.seq, "kind": kind, **fields})
        self._write()
        return self.seq

    def _write(self) -> None:
        while self.unsent:
            try:
                written = os.write(self.pipe, self.unsent)
            except BlockingIOError:  # the pipe is full: these bytes go with the next record
                return
            except (BrokenPipeError, OSError):  # the tracking process is gone; its end is reported
                self.unsent.clear()
                return
            del self.unsent[:written]

    def push(self) -> None:
        """Write whatever waits, even if that means waiting for the pipe."""
        os.set_blocking(self.pipe, True)
        try:
            self._write()
        finally:
            os.set_blocking(self.pipe, False)

    def wait_for(self, ready: Callable[[dict[str, Any]], Any], timeout: float | None = None) -> Any:
        """The first true `ready(answers)`; ServiceGone when the process ended first, None when
        `timeout` seconds passed."""
        self.push()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.changed:
            while True:
                found = ready(self.answers)
                if found:
                    return found
                if self.answers.get("closed"):
                    raise ServiceGone(self.failure())
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self.changed.wait(remaining if remaining is not None else 1.0)

    def close(self, grace: float, stops: Any = None, waiting: Callable[[], None] | None = None) -> bool:
        """No more records; wait for the process to send everything and exit. False when it did
        not: it is told to keep the rest on disk.

        Without `stops`, `grace` seconds bound the whole wait (a run that never started). With
        `stops` (the run's stop signals, tracker.interrupts), the run's end is being stored: the
        wait lasts while the store takes records, however many stop signals come, so a stopped
        run never stays RUNNING because a second Ctrl-C cut its end short. Only a store that is
        away is given up on: after `grace` seconds away, or at a stop signal that comes while
        it is; `waiting()` is called once when that wait begins (to say so)."""
        self.push()
        self.records.close()
        started = time.monotonic()
        away_since: float | None = None  # when the store was seen away, during this wait
        stops_then = 0  # the stop signals that had come by then: only later ones stop the wait
        while self.process.poll() is None:
            now = time.monotonic()
            if stops is None:
                if now - started >= grace:
                    break
            elif self.answers.get("away"):
                if away_since is None:
                    away_since, stops_then = now, len(stops.came)
                    if waiting is not None:
                        waiting()
                if now - away_since >= grace or len(stops.came) > stops_then:
                    break
            else:  # the store answers: its records, the end among them, are on their way into it
                away_since = None
            time.sleep(0.05)
        done = self.process.poll() is not None
        if not done:
            self.process.terminate()
            self.process.wait()
        self.replies.close()
        if done and self.process.returncode == 0:  # its log is kept when something went wrong
            self.log_path.unlink()
        return done

    def failure(self) -> str:
        """Why the process ended early, from its own log."""
        text = self.log_path.read_text(errors="replace").strip().splitlines()
        return text[-1] if text else f"the tracking process ended (exit code {self.process.poll()})"

    def _listen(self) -> None:
        for line in self.replies:
            try:
                answer = decode(line)
            except ValueError:  # not an answer: nothing but answers should come, but never stop listening
                continue
            with self.changed:
                if "durable" in answer:
                    self.answers["durable"] = max(self.answers.get("durable", 0), answer["durable"])
                else:
                    self.answers.update(answer)
                if "store_error" in answer or "store_back" in answer:
                    self.answers["away"] = "store_error" in answer
                if {"store_error", "refused", "spool_error", "store_back"} & answer.keys():
                    self.notes.append(answer)
                self.changed.notify_all()
        with self.changed:
            self.answers["closed"] = True
            self.changed.notify_all()

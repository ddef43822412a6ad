"""The tracking process of one run: everything MLflow does for a run happens here, beside the
training process, never in it.

The training process starts it as soon as the experiment is checked (`python -m
tracker.tracking.service`), so importing MLflow and opening the store overlap with loading data
and model, and sends it records down a pipe (tracker.tracking.channel): it never waits for the
store. Records are applied in order (tracker.tracking.store_writer). When the store cannot take
them, training goes on: records pile up in a spool on disk under the run's output folder
(tracker.tracking.spool) and are sent, in order, once the store is back. When the training
process ends its run, or dies without a word (the pipe closes with no end record), the run is
ended; if the store is still away then, the spool stays for `xp sync`.

Answers go back to the training process as JSON lines on stdout: the run once created, a
`durable` for each flush record (every record before it is stored, or spooled with fsync), the
logged model, store outages and their end.
"""

from __future__ import annotations

import argparse
import collections
import os
import queue
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO

from tracker.garbage_collection import collect_nothing_at_exit, collector_paused
from tracker.redact import mask_uri
from tracker.tracking.spool import Spool, decode, encode
from tracker.tracking.store_writer import StoreUnavailable, StoreWriter, group, send_spool

IDLE_SECONDS = 0.25  # how often an idle service looks for new records
# Metrics are written at most once this often, however often a runner logs: one write a second
# keeps the store (and this process's share of the CPU) small when a run logs every step.
WRITE_INTERVAL_SECONDS = 1.0
RETRY_SECONDS = (1, 2, 5, 10)  # waits between attempts while the store is away, then every 10 s
# After its run's process is gone, how long a service keeps trying a store that is away before
# leaving the spool to `xp sync`.
GIVE_UP_SECONDS = 600
# Added to the training process's niceness: the kernel favours training, yet this process keeps
# a share (its heartbeat must beat while training takes every core).
NICENESS = 10
_CLOSED = object()


def died_without_ending(parent: int) -> str:
    return (
        f"the xp process (pid {parent}) stopped without ending its run: killed (SIGKILL), out of memory, "
        "or its machine stopped"
    )


class Answers:
    """JSON lines to the training process; a closed pipe (it is gone) is no error."""

    def __init__(self, stream: BinaryIO):
        self.stream, self.lock = stream, threading.Lock()

    def __call__(self, answer: dict[str, Any]) -> None:
        with self.lock:
            try:
                self.stream.write(encode(answer))
                self.stream.flush()
            except (BrokenPipeError, ValueError, OSError):
                pass


class Service:
    def __init__(
        self, uri: str, spool: Spool, answer: Answers, parent: int, scratch: Path, system_metrics: bool = False
    ):
        self.uri, self.spool, self.answer, self.parent, self.scratch = uri, spool, answer, parent, scratch
        self.system_metrics = system_metrics  # the run will sample them: warm up for it
        self.pending: collections.deque[dict[str, Any]] = collections.deque()  # in memory, not yet stored
        self.spooling = False  # the store is away: new records go to the spool
        self.writer: StoreWriter | None = None
        self.failures = 0
        self.next_try = 0.0
        self.last_write = -WRITE_INTERVAL_SECONDS
        self.outage: str | None = None
        self.closed_at: float | None = None  # when the training process closed the pipe
        self.started = False  # a run's start record came

    def run(self, inbox: queue.Queue, stop: threading.Event) -> int:
        with collector_paused() as start_up:
            self.warm_up()
            start_up.over()
            return self._serve(inbox, stop)

    def _serve(self, inbox: queue.Queue, stop: threading.Event) -> int:
        while True:
            self.take(_drain(inbox, max(0.0, min(IDLE_SECONDS, self.next_send() - time.monotonic()))))
            if self.closed_at is None and os.getppid() != self.parent:  # the pipe may outlive it (forked workers)
                self.take([_CLOSED])
            if stop.is_set():  # told to go: what the store does not have yet stays on disk
                self.go_spooling()
                return 0
            if time.monotonic() >= self.next_send():
                self.send()
            if self.closed_at is not None:
                if not self.pending and not self.spooling:
                    return 0
                if time.monotonic() - self.closed_at > GIVE_UP_SECONDS:
                    return 0  # the spool stays for `xp sync`

    def warm_up(self) -> None:
        """Open the store and load what the run's first records need, before they come: this runs
        while the training process loads data and model, not when it starts training."""
        try:
            self.writer = StoreWriter(_open_store(self.uri), self.uri, self.answer, self.scratch)
        except Exception:
            return
        self.writer.warm_up(self.system_metrics)

    def next_send(self) -> float:
        """When to write next: at once for anything but metrics (a flush, an evaluation's curves,
        the end), metrics at most once a WRITE_INTERVAL_SECONDS; never before the next retry."""
        if not self.pending and not self.spooling:
            return float("inf")
        urgent = (
            self.spooling
            or self.closed_at is not None
            or any(
                record["kind"] != "metrics" or any(point[0] == "eval/loss" for point in record["metrics"])
                for record in self.pending
            )
        )
        return max(self.next_try, self.last_write + (0.0 if urgent else WRITE_INTERVAL_SECONDS))

    def take(self, records: list[Any]) -> None:
        for record in records:
            if record is _CLOSED:
                self.closed_at = time.monotonic()
                if not self.started:  # no run was started (a bad experiment, a stop before training)
                    continue
                if not self._ended_by_a_record():
                    record = {"seq": -1, "kind": "end", "status": "FAILED", "error": died_without_ending(self.parent)}
                else:
                    continue
            self.started = self.started or record["kind"] == "start"
            if self.spooling and not self.pending:
                try:
                    self.spool.append([record])
                except OSError:  # the spool's disk is full too: memory it is, in order after the spool
                    self.pending.append(record)
                    continue
                if record["kind"] == "flush":  # fsync'd: as durable as in the store
                    self.answer({"durable": record["seq"]})
            else:
                self.pending.append(record)

    def _ended_by_a_record(self) -> bool:
        if self.writer is not None and self.writer.ended:
            return True
        return any(record["kind"] == "end" for record in self.pending) or self._spool_has_end()

    def _spool_has_end(self) -> bool:
        return self.spooling and any(record["kind"] == "end" for _, record in self.spool.unsent())

    def send(self) -> None:
        """Everything the store does not have, spool first, in order; on failure, spool the rest."""
        self.last_write = time.monotonic()
        try:
            if self.writer is None:
                self.writer = StoreWriter(_open_store(self.uri), self.uri, self.answer, self.scratch)
            if self.spooling:
                self._send_spool(self.writer)
            while self.pending:
                records = group(self.pending)
                self.writer.apply(records)
                for _ in records:
                    self.pending.popleft()
        except StoreUnavailable as error:
            self._away(str(error))
            return
        except Exception as error:
            self._away(f"{type(error).__name__}: {error}")
            return
        if self.outage is not None:
            self.outage, self.failures = None, 0
            self.answer({"store_back": True})

    def _send_spool(self, writer: StoreWriter) -> None:
        send_spool(self.spool, writer, lambda: self.spool.save_state(self.state()))
        self.spool.remove()
        self.spooling = False

    def _away(self, reason: str) -> None:
        self.go_spooling()
        self.failures += 1
        self.next_try = time.monotonic() + RETRY_SECONDS[min(self.failures, len(RETRY_SECONDS)) - 1]
        if self.outage != reason:
            self.outage = reason
            self.answer({"store_error": mask_uri(reason), "spool": str(self.spool.folder)})

    def go_spooling(self) -> None:
        """From now on records go to the spool, those in memory first."""
        writer = self.writer
        if not self.pending and (self.spooling or writer is None or writer.run is None or writer.ended):
            # Nothing to keep (no record yet: the store may be open, but no run was started, as
            # when the run's data check failed; or the run's end stored), or all kept already.
            return
        try:
            self.spool.claim()
            self.spool.save_state(self.state())
            self.spool.append(list(self.pending))
        except OSError as error:  # a full disk: they stay in memory, and the store is tried again
            self.answer({"spool_error": f"{type(error).__name__}: {error}"})
            return
        for record in self.pending:
            if record["kind"] == "flush":
                self.answer({"durable": record["seq"]})
        self.pending.clear()
        self.spooling = True

    def state(self) -> dict[str, Any]:
        """What `xp sync` needs to go on where this process stopped."""
        writer = self.writer
        return {
            "uri": mask_uri(self.uri),
            "parent": self.parent,
            "run": writer.run if writer else None,
            "logged_until": writer.logged_until if writer else {},
            "refusals": writer.refusals if writer else [],
        }


def _open_store(uri: str) -> Any:
    from tracker.stores import open_store_for_runs, patient_uri

    return open_store_for_runs(patient_uri(uri))


def _drain(inbox: queue.Queue, wait: float) -> list[Any]:
    """What came down the pipe: waits up to `wait` seconds for the first record."""
    records = []
    try:
        records.append(inbox.get(timeout=wait) if wait else inbox.get_nowait())
        while True:
            records.append(inbox.get_nowait())
    except queue.Empty:
        return records


def _read(stream: BinaryIO, inbox: queue.Queue) -> None:
    for line in stream:
        if line.endswith(b"\n"):
            record = _record_in(line)
            if record is not None:
                inbox.put(record)
    inbox.put(_CLOSED)


def _record_in(line: bytes) -> dict[str, Any] | None:
    """The record a line holds, if any. A Ctrl-C can land in the training process after bytes
    went down the pipe but before they left its buffer (tracker.tracking.channel): they are written
    again, and a record the pipe took only part of runs into their copy on one line, whose last
    record is whole and kept. A line that does not parse never stops the reading: the run's end
    comes after it."""
    try:
        return decode(line)
    except ValueError:
        pass
    try:
        return decode(line[line.rfind(b'{"seq":') :])
    except ValueError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tracker.tracking.service")
    parser.add_argument("--uri", required=True)
    parser.add_argument("--spool", required=True, type=Path)
    parser.add_argument("--parent", required=True, type=int)
    parser.add_argument("--system-metrics", action="store_true")
    args = parser.parse_args(argv)
    # Training comes first.
    os.nice(NICENESS)
    stop = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the training process's to handle
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    # Answers alone go to the training process: what libraries print (MLflow's "View run at ...")
    # goes to this process's log instead.
    answers = Answers(os.fdopen(os.dup(sys.stdout.fileno()), "wb"))
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    inbox: queue.Queue = queue.Queue()
    threading.Thread(target=_read, args=(sys.stdin.buffer, inbox), name="xp-records", daemon=True).start()
    with tempfile.TemporaryDirectory(prefix="xp-tracking-") as scratch:
        service = Service(args.uri, Spool(args.spool), answers, args.parent, Path(scratch), args.system_metrics)
        code = service.run(inbox, stop)
        if service.writer is not None:
            service.writer.stop_helpers()
    return code


if __name__ == "__main__":
    collect_nothing_at_exit()
    sys.exit(main())

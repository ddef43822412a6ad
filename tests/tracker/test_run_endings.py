"""However a tracked run stops, it ends in the store: Ctrl-C pressed again and again while it is
being ended, or a disk that fills up, never leave it RUNNING. Real processes, real signals, a real
full filesystem; and, in a fraction of a second each, the rules by which the training process
waits for its tracking process to store the run's end."""

from __future__ import annotations

import contextlib
import io
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.mlflow_helpers import QUICKSTART, as_set_options, quickstart_overrides, sqlite_store, xp_command
from tests.tracker.test_tracking import training_has_logged


def only_run(store: str):
    from mlflow import MlflowClient

    client = MlflowClient(store)
    [run] = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return client, run


def test_ctrl_c_again_and_again_while_stopping_still_ends_the_run_killed(tiny_checkpoint, tmp_path):
    store = sqlite_store(tmp_path)
    overrides = quickstart_overrides(
        tiny_checkpoint, tmp_path, store, "runner.max_steps=100000", 'runner.eval_strategy="no"'
    )
    log = (tmp_path / "xp.log").open("w")
    process = subprocess.Popen(
        xp_command("run", str(QUICKSTART), *as_set_options(overrides)),
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while not training_has_logged(tmp_path / "mlflow.db"):
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "xp.log").read_text()[-3000:]
            time.sleep(0.2)
        presses = 0
        while process.poll() is None and presses < 500:  # a person leaning on Ctrl-C
            process.send_signal(signal.SIGINT)
            presses += 1
            time.sleep(0.01)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
    output = (tmp_path / "xp.log").read_text()
    client, run = only_run(store)
    assert presses > 1, "the run ended before the second Ctrl-C: the test proved nothing"
    assert run.info.status == "KILLED", output[-3000:]
    assert client.get_metric_history(run.info.run_id, "train/loss"), "what it logged is kept"
    assert "console.log" in [a.path for a in client.list_artifacts(run.info.run_id)], "the ending was completed"
    assert "ending the run in the store first" in output


class Presses:
    """The run's stop signals as tracker.interrupts.Stops counts them; `press_later` leans on Ctrl-C."""

    def __init__(self, before: int = 0):
        self.came = [signal.SIGINT] * before

    def press_later(self, after: float, times: int = 20) -> threading.Thread:
        def press() -> None:
            time.sleep(after)
            for _ in range(times):
                self.came.append(signal.SIGINT)
                time.sleep(0.01)

        thread = threading.Thread(target=press, daemon=True)
        thread.start()
        return thread


def channel_to(seconds: float, tmp_path: Path, **answers):
    """A TrackingChannel whose tracking process is a stand-in that takes `seconds` to store the
    run's end and exit; `answers` as if it had sent them."""
    from tracker.tracking.channel import TrackingChannel

    channel = TrackingChannel.__new__(TrackingChannel)
    read, write = os.pipe()
    channel.process = subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({seconds})"])
    channel.records, channel.replies, channel.pipe = os.fdopen(write, "wb"), os.fdopen(read, "rb"), write
    channel.unsent, channel.answers = bytearray(), dict(answers)
    channel.log_path = tmp_path / "tracking.log"
    channel.log_path.write_text("")
    return channel


def timed_close(channel, *args) -> tuple[bool, float]:
    started = time.monotonic()
    try:
        return channel.close(*args), time.monotonic() - started
    finally:
        if channel.process.poll() is None:
            channel.process.kill()
            channel.process.wait()


def test_while_the_store_answers_more_ctrl_c_only_wait_for_the_end_to_be_stored(tmp_path):
    # The race that left runs RUNNING: a second Ctrl-C cut the wait short, and the tracking process,
    # told to stop, spooled the end it was about to store. Grace 0 (`wait_for_store = 0`) did so always.
    presses = Presses(before=30)
    presses.press_later(0.1)
    stored, seconds = timed_close(channel_to(1.5, tmp_path), 0.0, presses)
    assert stored
    assert seconds >= 1.4


def test_a_store_that_is_away_is_waited_for_until_a_later_ctrl_c(tmp_path):
    said = []
    presses = Presses(before=30)  # those pressed before the wait for the store began do not end it
    presses.press_later(1.0, times=1)
    stored, seconds = timed_close(channel_to(60, tmp_path, away=True), 120.0, presses, lambda: said.append(1))
    assert not stored
    assert 0.9 < seconds < 20
    assert said == [1], "the wait for the store is announced once"


def test_a_store_that_is_away_is_waited_for_grace_seconds(tmp_path):
    stored, seconds = timed_close(channel_to(60, tmp_path, away=True), 1.0, Presses(before=2))
    assert not stored
    assert 0.9 < seconds < 20


def test_a_run_that_never_started_waits_grace_seconds_at_most(tmp_path):
    stored, seconds = timed_close(channel_to(60, tmp_path), 1.0)
    assert not stored
    assert 0.9 < seconds < 20


def test_a_record_written_twice_by_an_interrupted_write_is_read_once_and_reading_goes_on():
    from tracker.tracking.service import _CLOSED, _read
    from tracker.tracking.spool import encode

    first, end = encode({"seq": 1, "kind": "metrics", "metrics": []}), encode({"seq": 2, "kind": "end"})
    # Ctrl-C between writing the first bytes and forgetting them: they go down the pipe again.
    stream = io.BytesIO(first[:9] + first + b"not a record\n" + end)
    inbox: queue.Queue = queue.Queue()
    _read(stream, inbox)
    read = [inbox.get_nowait() for _ in range(inbox.qsize())]
    assert read == [{"seq": 1, "kind": "metrics", "metrics": []}, {"seq": 2, "kind": "end"}, _CLOSED]


@contextlib.contextmanager
def full_filesystem(folder: Path):
    """`folder` as a 1 MiB tmpfs filled to the last byte; skips where mounting is not allowed."""
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        with contextlib.suppress(OSError), open(folder / "filler", "wb") as filler:
            while True:
                filler.write(b"\0" * 4096)
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_full_disk_fails_the_run_with_the_reason(tiny_checkpoint, tmp_path):
    # The store's database is elsewhere; its artifacts (./mlruns) and the outputs are on the full disk.
    store = sqlite_store(tmp_path)
    with full_filesystem(tmp_path / f"full-{uuid.uuid4().hex[:6]}") as full:
        overrides = quickstart_overrides(tiny_checkpoint, full, store)
        done = subprocess.run(
            xp_command("run", str(QUICKSTART), *as_set_options(overrides)),
            cwd=full,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert "No space left on device" in done.stderr
    _, run = only_run(store)
    assert run.info.status == "FAILED"
    assert "No space left on device" in run.data.tags["xp.error"]

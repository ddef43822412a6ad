"""However a tracked run stops, it ends in the store: Ctrl-C pressed again and again while it is
being ended, or a disk that fills up, never leave it RUNNING. Real processes, real signals, a real
full filesystem."""

from __future__ import annotations

import contextlib
import signal
import subprocess
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

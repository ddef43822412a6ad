"""A tracking server that goes away never stops or loses a run: training goes on, what it logs
waits on disk under the run's output folder, and reaches the store in order, each point once,
when the server is back: during the run, or later through `xp sync`. A real `mlflow server`
process, stopped and started again on the same port in the middle of real `xp run`s."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from tests.mlflow_helpers import QUICKSTART, as_set_options, free_port, quickstart_overrides, sqlite_store, xp_command
from tests.tracker.test_tracking import training_has_logged

STEPS, EVAL_STEPS = 1500, 500


@contextmanager
def server_on(store: str, port: int, folder: Path):
    """A real `mlflow server` on `store` at `port`, stopped (all its workers) when the block ends."""
    log = (folder / f"server-{time.monotonic_ns()}.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            store,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        cwd=folder,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except (urllib.error.URLError, OSError):
                assert server.poll() is None and time.monotonic() < deadline, Path(log.name).read_text()[-2000:]
                time.sleep(0.3)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(server.pid, signal.SIGKILL)  # the store goes away at once, as a crash would take it
        server.wait()
        log.close()


def start_run(folder: Path, checkpoint: Path, base: str, *more: str) -> subprocess.Popen:
    overrides = quickstart_overrides(
        checkpoint,
        folder,
        None,
        f"runner.max_steps={STEPS}",
        'runner.eval_strategy="steps"',
        f"runner.eval_steps={EVAL_STEPS}",
        f'tracking.uri="{base}"',
        *more,
    )
    log = (folder / "xp.log").open("w")
    return subprocess.Popen(
        xp_command("run", str(QUICKSTART), *as_set_options(overrides)), cwd=folder, stdout=log, stderr=subprocess.STDOUT
    )


def wait_for_training(process: subprocess.Popen, folder: Path) -> None:
    deadline = time.monotonic() + 180
    while not training_has_logged(folder / "mlflow.db"):
        assert process.poll() is None and time.monotonic() < deadline, (folder / "xp.log").read_text()[-3000:]
        time.sleep(0.1)


def every_point_once(base: str):
    """The run in the server at `base`, after checking that it has every metric point once."""
    from mlflow import MlflowClient

    client = MlflowClient(base)
    [run] = client.search_runs(["1"])
    losses = client.get_metric_history(run.info.run_id, "train/loss")
    evals = client.get_metric_history(run.info.run_id, "eval/loss")
    assert sorted(point.step for point in losses) == list(range(1, STEPS + 1)), "every step once, none lost"
    assert sorted(point.step for point in evals) == list(range(EVAL_STEPS, STEPS + 1, EVAL_STEPS))
    return client, run


def test_a_server_down_in_the_middle_of_training_loses_and_repeats_nothing(tmp_path, tiny_checkpoint):
    store, port = sqlite_store(tmp_path), free_port()
    with server_on(store, port, tmp_path) as base:
        process = start_run(tmp_path, tiny_checkpoint, base)
        wait_for_training(process, tmp_path)
    down_at = time.monotonic()
    time.sleep(3)
    assert process.poll() is None, "training stopped with the store"
    with server_on(store, port, tmp_path) as base:
        process.wait(timeout=300)
        output = (tmp_path / "xp.log").read_text()
        assert process.returncode == 0, output[-3000:]
        client, run = every_point_once(base)
        assert run.info.status == "FINISHED"
        artifacts = {artifact.path for artifact in client.list_artifacts(run.info.run_id)}
        assert {"config", "console.log", "curves"} <= artifacts
    assert time.monotonic() - down_at > 3
    assert not list(tmp_path.glob("outputs/*/tracking-spool/*")), "the spool is sent, then removed"


def test_a_server_still_down_at_the_end_leaves_a_spool_that_xp_sync_sends(tmp_path, tiny_checkpoint):
    store, port = sqlite_store(tmp_path), free_port()
    with server_on(store, port, tmp_path) as base:
        process = start_run(tmp_path, tiny_checkpoint, base, "tracking.wait_for_store=2")
        wait_for_training(process, tmp_path)
    process.wait(timeout=300)
    output = (tmp_path / "xp.log").read_text()
    assert process.returncode == 0, output[-3000:]
    [spool] = tmp_path.glob("outputs/*/tracking-spool/*")
    assert f"`xp sync {spool}` sends it" in output

    with server_on(store, port, tmp_path) as base:
        synced = subprocess.run(xp_command("sync"), cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert synced.returncode == 0, synced.stderr
        assert f"from {spool}" in synced.stderr
        _, run = every_point_once(base)
        assert run.info.status == "FINISHED"
        again = subprocess.run(xp_command("sync"), cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert again.returncode == 2 and "every run's records are stored" in again.stderr
        every_point_once(base)

"""A run whose processes all die without a word (the machine stops: SIGKILL to the training
process and its tracking process alike) stays RUNNING in the store; its heartbeat stops, so
`xp runs` flags it stale and `xp runs --end-stale` ends it as FAILED, saying why. When only the
training process dies, its tracking process ends the run FAILED at once, saying why."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from tests.mlflow_helpers import QUICKSTART, as_set_options, quickstart_overrides, sqlite_store, xp_command
from tracker.heartbeat import TAG


def xp(folder, *args):
    return subprocess.run(xp_command(*args), cwd=folder, capture_output=True, text=True, timeout=120)


def kill_without_a_word(process: subprocess.Popen, with_tracking_process: bool) -> None:
    """SIGKILL to `process`, and first to its tracking process too when asked: a machine that stops."""
    import psutil

    if with_tracking_process:
        for child in psutil.Process(process.pid).children(recursive=True):
            child.kill()
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def killed_and_finished(tmp_path_factory, tiny_checkpoint):
    """One run that finished, and one whose processes were all killed with SIGKILL in the middle
    of training."""
    from mlflow import MlflowClient

    folder = tmp_path_factory.mktemp("stale")
    store = sqlite_store(folder)
    finished = xp(
        folder, "run", "-q", str(QUICKSTART), *as_set_options(quickstart_overrides(tiny_checkpoint, folder, store))
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    long_run = quickstart_overrides(tiny_checkpoint, folder, store, "runner.max_steps=100000")
    process = subprocess.Popen(
        xp_command("run", "-q", str(QUICKSTART), *as_set_options(long_run)),
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = MlflowClient(store)
    deadline = time.monotonic() + 120
    killed = None
    while killed is None and time.monotonic() < deadline and process.poll() is None:
        running = [
            run
            for run in client.search_runs(["0", *[e.experiment_id for e in client.search_experiments()]])
            if run.info.status == "RUNNING"
        ]
        if running and client.get_metric_history(running[0].info.run_id, "train/loss"):
            killed = running[0]
        time.sleep(0.2)
    kill_without_a_word(process, with_tracking_process=True)
    assert killed is not None, "the long run never started training"
    time.sleep(2)  # longer than the --stale-after below since its last heartbeat
    return folder, store, client, killed.info.run_id


def test_a_running_run_beats(killed_and_finished):
    _, _, client, run_id = killed_and_finished
    assert float(client.get_run(run_id).data.tags[TAG]) > 0


def test_a_killed_run_is_listed_as_stale(killed_and_finished):
    folder, store, _, run_id = killed_and_finished
    done = xp(folder, "runs", "--uri", store, "--stale-after", "1")
    assert done.returncode == 0, done.stderr
    header, _, *rows = done.stdout.splitlines()
    assert header.split()[:3] == ["run", "id", "status"]
    by_id = {row.split()[1]: row for row in rows}
    assert "RUNNING (stale: silent" in by_id[run_id[:12]]
    [other] = [row for key, row in by_id.items() if key != run_id[:12]]
    assert "FINISHED" in other and "stale" not in other and "eval/accuracy" in other
    assert "1 stale run(s): `xp runs --end-stale` ends them as FAILED" in done.stderr
    # With the default threshold (ten missed beats) a run silent for seconds is not stale.
    assert "stale" not in xp(folder, "runs", "--uri", store).stdout


def test_end_stale_ends_it_failed_with_the_reason_and_nothing_else(killed_and_finished):
    folder, store, client, run_id = killed_and_finished
    statuses_before = {run.info.run_id: run.info.status for run in client.search_runs(["0", "1"])}
    done = xp(folder, "runs", "--uri", store, "--stale-after", "1", "--end-stale")
    assert done.returncode == 0, done.stderr
    assert f"({run_id[:12]}) as FAILED: no heartbeat" in done.stderr
    run = client.get_run(run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["xp.error"].startswith("stale: no heartbeat since ")
    assert run.info.end_time == int(float(run.data.tags[TAG]) * 1000)  # ended at its last sign of life
    others = {key: status for key, status in statuses_before.items() if key != run_id}
    assert {r.info.run_id: r.info.status for r in client.search_runs(["0", "1"]) if r.info.run_id != run_id} == others
    again = xp(folder, "runs", "--uri", store, "--stale-after", "1")
    assert "stale" not in again.stdout + again.stderr


def test_unknown_experiment_is_a_clear_error(killed_and_finished):
    folder, store, _, _ = killed_and_finished
    done = xp(folder, "runs", "nope", "--uri", store)
    assert (
        done.returncode == 2
        and done.stderr.strip() == "error: no experiment named nope; there are: Default, quickstart"
    )


def test_a_training_process_killed_alone_is_ended_failed_by_its_tracking_process(tiny_checkpoint, tmp_path):
    from mlflow import MlflowClient

    from tests.tracker.test_tracking import training_has_logged

    store = sqlite_store(tmp_path)
    long_run = quickstart_overrides(tiny_checkpoint, tmp_path, store, "runner.max_steps=100000")
    process = subprocess.Popen(
        xp_command("run", "-q", str(QUICKSTART), *as_set_options(long_run)),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not training_has_logged(tmp_path / "mlflow.db"):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    kill_without_a_word(process, with_tracking_process=False)
    client = MlflowClient(store)
    deadline = time.monotonic() + 60
    while (run := client.search_runs(["1"])[0]).info.status == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert run.info.status == "FAILED"
    assert f"the xp process (pid {process.pid}) stopped without ending its run" in run.data.tags["xp.error"]
    assert client.get_metric_history(run.info.run_id, "train/loss"), "what it logged is kept"

"""`xp resume`: a run stopped by SIGTERM or SIGKILL continues from its newest checkpoint in the
same MLflow run, and on the CPU the loop and Accelerate runners log exactly the losses the run
would have logged had it never stopped, a run training a LoRA adapter too. Real `xp` processes,
real signals, a real SQLite store."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.mlflow_helpers import QUICKSTART, as_set_options, quickstart_overrides, sqlite_store, xp_command
from tests.tracker.test_tracking import training_has_logged

STEPS = 120  # the tiny BERT on 32 rows: 4 batches an epoch, so 30 epochs and their shuffles
CHECKPOINTED = (
    "checkpoint.every_steps=7",
    'runner.eval_strategy="steps"',
    "runner.eval_steps=25",
    f"runner.max_steps={STEPS}",
)


def xp(folder: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(xp_command(*args), cwd=folder, capture_output=True, text=True, timeout=timeout)


def run_file(folder: Path, store: str, checkpoint: Path, *more: str) -> list[str]:
    return ["run", "-q", str(QUICKSTART), *as_set_options(quickstart_overrides(checkpoint, folder, store, *more))]


def saved_checkpoints(folder: Path) -> list[Path]:
    return sorted(folder.glob("outputs/*/checkpoints/*/*/xp-checkpoint.json"))


def stopped_after_a_checkpoint(folder: Path, arguments: list[str], stop: signal.Signals) -> str:
    """Start `xp` with `arguments`, send `stop` once it has saved a checkpoint; its output."""
    log_path = folder / f"stopped-{stop.name}.log"
    earlier = {path.parent.parent for path in saved_checkpoints(folder)}  # other runs' checkpoint folders
    with log_path.open("w") as log:
        process = subprocess.Popen(xp_command(*arguments), cwd=folder, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 180
            while not {path.parent.parent for path in saved_checkpoints(folder)} - earlier:
                assert process.poll() is None, f"ended before its first checkpoint:\n{log_path.read_text()[-3000:]}"
                assert time.monotonic() < deadline, "no checkpoint within 3 minutes"
                time.sleep(0.05)
            process.send_signal(stop)
            process.wait(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    return log_path.read_text()


def history(client, run_id: str, key: str) -> list[tuple[int, float]]:
    points = sorted(client.get_metric_history(run_id, key), key=lambda point: (point.step, point.timestamp))
    return [(point.step, point.value) for point in points]


def the_run(client, *, other_than: str | None = None):
    runs = [
        run
        for experiment in client.search_experiments()
        for run in client.search_runs([experiment.experiment_id])
        if run.info.run_id != other_than
    ]
    [run] = runs
    return run


@pytest.mark.parametrize(
    "runner_settings",
    [('runner.use="loop"',), ('runner.use="accelerate"',), ('runner.use="loop"', 'adapter.use="lora"')],
    ids=["loop", "accelerate", "loop-lora"],
)
def test_a_run_stopped_by_sigterm_resumes_with_the_loss_sequence_it_would_have_had(
    tmp_path, tiny_checkpoint, runner_settings
):
    from mlflow import MlflowClient

    store = sqlite_store(tmp_path)
    settings = (*CHECKPOINTED, *runner_settings)
    uninterrupted = xp(tmp_path, *run_file(tmp_path, store, tiny_checkpoint, *settings))
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]
    client = MlflowClient(store)
    reference = the_run(client)

    output = stopped_after_a_checkpoint(tmp_path, run_file(tmp_path, store, tiny_checkpoint, *settings), signal.SIGTERM)
    stopped = the_run(client, other_than=reference.info.run_id)
    run_id = stopped.info.run_id
    assert stopped.info.status == "KILLED", output[-3000:]
    logged_before = history(client, run_id, "train/loss")
    assert logged_before and logged_before[-1][0] < STEPS, "the run was not stopped in the middle of training"
    assert f"xp resume {run_id[:12]}" in output, "the stopped run says how to resume it"

    resumed = xp(tmp_path, "resume", run_id[:8], "--uri", store, "-q")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["xp.attempt"] == "2"
    for key in ("train/loss", "train/learning_rate", "eval/loss", "eval/accuracy"):
        assert history(client, run_id, key) == history(client, reference.info.run_id, key), key
    assert [step for step, _ in history(client, run_id, "train/loss")] == list(range(1, STEPS + 1))
    assert {"console.log", "console-2.log"} <= {artifact.path for artifact in client.list_artifacts(run_id)}


@pytest.mark.parametrize("adapter", [(), ('adapter.use="lora"',)], ids=["whole", "lora"])
def test_a_trainer_run_killed_without_notice_resumes_in_the_same_run_with_every_step_once(
    tmp_path, tiny_checkpoint, adapter
):
    from mlflow import MlflowClient

    store = sqlite_store(tmp_path)
    arguments = run_file(
        tmp_path, store, tiny_checkpoint, *CHECKPOINTED, 'runner.use="trainer"', "checkpoint.keep=1", *adapter
    )
    stopped_after_a_checkpoint(tmp_path, arguments, signal.SIGKILL)
    client = MlflowClient(store)
    deadline = time.monotonic() + 60
    while (killed := the_run(client)).info.status == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert killed.info.status == "FAILED"  # ended by its tracking process, which saw it die

    resumed = xp(tmp_path, "resume", killed.info.run_name, "--uri", store, "-q")  # by name, right away
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    run = the_run(client)
    assert run.info.run_id == killed.info.run_id and run.info.status == "FINISHED"
    assert [step for step, _ in history(client, run.info.run_id, "train/loss")] == list(range(1, STEPS + 1))
    assert [step for step, _ in history(client, run.info.run_id, "eval/loss")] == [25, 50, 75, 100, 120]
    [kept] = saved_checkpoints(tmp_path)  # keep = 1
    assert kept.parent.name == f"checkpoint-{STEPS // 7 * 7}"


def test_resuming_a_finished_run_says_so_and_does_nothing(tmp_path, tiny_checkpoint):
    from mlflow import MlflowClient

    store = sqlite_store(tmp_path)
    done = xp(tmp_path, *run_file(tmp_path, store, tiny_checkpoint, "checkpoint.every_steps=2"))
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient(store)
    before = the_run(client)

    again = xp(tmp_path, "resume", before.info.run_id, "--uri", store)
    assert again.returncode == 0, again.stderr
    assert f"run {before.info.run_name} ({before.info.run_id[:12]}) FINISHED" in again.stderr
    assert "nothing to resume" in again.stderr
    after = the_run(client)
    assert (after.info.status, after.info.end_time) == ("FINISHED", before.info.end_time)
    assert "xp.attempt" not in after.data.tags


def test_a_run_without_checkpoints_cannot_be_resumed_and_says_why(tmp_path, tiny_checkpoint):
    store = sqlite_store(tmp_path)
    arguments = run_file(tmp_path, store, tiny_checkpoint, "runner.max_steps=100000", 'runner.eval_strategy="no"')
    process = subprocess.Popen(
        xp_command(*arguments), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while not training_has_logged(tmp_path / "mlflow.db") and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)

    output = xp(tmp_path, "resume", "quickstart-", "--uri", store)  # no run is named that, nor has that prefix
    assert output.returncode == 2 and "no run with this id, id prefix or name" in output.stderr
    from mlflow import MlflowClient

    run = the_run(MlflowClient(store))
    output = xp(tmp_path, "resume", run.info.run_id, "--uri", store)
    assert output.returncode == 2
    assert "saved no checkpoints" in output.stderr and "[checkpoint]" in output.stderr
    assert "Traceback" not in output.stderr


def test_resume_refuses_a_live_run_and_an_experiment_file_changed_since(tmp_path, tiny_checkpoint):
    from mlflow import MlflowClient

    store = sqlite_store(tmp_path)
    experiment = tmp_path / "quickstart.toml"
    experiment.write_text(QUICKSTART.read_text().replace("experiments/data", str(QUICKSTART.parent / "data")))
    arguments = [
        "run",
        "-q",
        str(experiment),
        *as_set_options(
            quickstart_overrides(
                tiny_checkpoint, tmp_path, store, "runner.max_steps=100000", "checkpoint.every_steps=5"
            )
        ),
    ]
    log = (tmp_path / "live.log").open("w")
    process = subprocess.Popen(xp_command(*arguments), cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while not saved_checkpoints(tmp_path):
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "live.log").read_text()[-3000:]
            time.sleep(0.1)
        run_id = the_run(MlflowClient(store)).info.run_id
        live = xp(tmp_path, "resume", run_id, "--uri", store)
        assert live.returncode == 2, live.stderr
        assert "is still running" in live.stderr and f"process {process.pid}" in live.stderr
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        log.close()

    experiment.write_text(experiment.read_text().replace("lr = 1e-4", "lr = 2e-4"))
    changed = xp(tmp_path, "resume", run_id, "--uri", store)
    assert changed.returncode == 2
    assert "no longer resolves to the settings the run was started with" in changed.stderr
    assert the_run(MlflowClient(store)).info.status == "KILLED"  # untouched

"""`--executor ray`: experiments and sweep trials as tasks on a real Ray cluster, a head started with
`ray start --head` on this machine, reached by its address as a remote cluster would be.

Ray is an optional extra, installed with the test extra; without it these tests are skipped,
except in CI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.experiment_files import write_experiment
from tests.mlflow_helpers import DATA, free_port, runs_in, xp_command

if not os.environ.get("CI"):
    pytest.importorskip("ray", reason='Ray is an optional extra: pip install "xp-tracker[ray]"')

# Ray's token authentication, as a cluster should run: the head and every client (xp) read the
# same token, ~/.ray/auth_token here.
RAY_ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token"}


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory) -> Iterator[str]:
    """A Ray head with 2 CPUs on a free port; its address."""
    folder = tmp_path_factory.mktemp("ray")
    port = free_port()
    ray = [sys.executable, "-m", "ray.scripts.scripts"]
    if not (Path.home() / ".ray" / "auth_token").exists():  # never replace a token someone uses
        subprocess.run([*ray, "get-auth-token", "--generate"], capture_output=True, timeout=60, env=RAY_ENV)
    subprocess.run(
        [
            *ray,
            "start",
            "--head",
            "--port",
            str(port),
            "--num-cpus",
            "2",
            "--include-dashboard=false",
            "--temp-dir",
            str(folder),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=180,
        env=RAY_ENV,
        # As from a shell's `ray start ... &`: the cluster's workers inherit SIGINT ignored, which
        # Ray's own cancel (an interrupt of the task's main thread) does not get through unaided.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([*ray, "stop", "--force"], capture_output=True, timeout=120, env=RAY_ENV)


def experiment(folder: Path, checkpoint: Path, name: str, epochs: int = 2, **sections) -> Path:
    return write_experiment(
        folder / f"{name}.toml",
        checkpoint,
        {"train": str(DATA / "train.csv"), "validation": str(DATA / "validation.csv")},
        experiment={"name": "on-ray"},
        dataset={"max_rows": {"train": 32, "eval": 16}},
        runner={"num_epochs": epochs, "metric_for_best": "f1"},
        tracking={"enabled": True, "uri": f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}", "system_metrics": False},
        **sections,
    )


def runs_of(folder: Path) -> list:
    return runs_in(f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}")


def xp(folder: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(xp_command(*args), cwd=folder, capture_output=True, text=True, timeout=timeout, env=RAY_ENV)


def test_two_experiments_run_as_ray_tasks_with_the_same_summary_as_local_runs(tmp_path, tiny_checkpoint, ray_head):
    files = [
        experiment(tmp_path, tiny_checkpoint, name, optimizer={"lr": lr})
        for name, lr in (("first", 1e-4), ("second", 1e-3))
    ]

    done = xp(tmp_path, "run", *map(str, files), "--executor", "ray", "--address", ray_head)

    assert done.returncode == 0, done.stderr[-3000:]
    runs = runs_of(tmp_path)
    assert sorted(run.data.params["optimizer.lr"] for run in runs) == ["0.0001", "0.001"]
    assert {run.info.status for run in runs} == {"FINISHED"}
    table = [line.split() for line in done.stdout.splitlines()[2:]]
    assert [(row[0], row[2]) for row in table] == [(str(files[0]), "finished"), (str(files[1]), "finished")]
    assert {row[-1] for row in table} == {run.info.run_id[:12] for run in runs}
    assert done.stderr.count("open the UI") == 2  # each run's summary, as a local run prints it


def test_a_sweep_runs_its_trials_as_ray_tasks(tmp_path, tiny_checkpoint, ray_head):
    import optuna

    file = experiment(
        tmp_path,
        tiny_checkpoint,
        "sweep",
        sweep={"method": "grid", "study": "on-ray", "parallel": 2, "space": {"optimizer.lr": [1e-4, 1e-3]}},
    )

    done = xp(tmp_path, "sweep", str(file), "--executor", "ray", "--address", ray_head)

    assert done.returncode == 0, done.stderr[-3000:]
    study = optuna.load_study(study_name="on-ray", storage=f"sqlite:///{tmp_path / 'mlruns' / 'optuna.db'}")
    assert [trial.state.name for trial in study.trials] == ["COMPLETE", "COMPLETE"]
    runs = runs_of(tmp_path)
    [parent] = [run for run in runs if run.data.tags.get("xp.sweep") == "parent"]
    assert parent.info.status == "FINISHED"
    assert sorted(run.data.tags.get("mlflow.parentRunId", "") for run in runs) == [
        "",
        parent.info.run_id,
        parent.info.run_id,
    ]


def test_ctrl_c_cancels_the_waiting_tasks_and_ends_the_running_runs_killed(tmp_path, tiny_checkpoint, ray_head):
    # Each run asks for both CPUs of the cluster: one runs, the others wait for it.
    files = [experiment(tmp_path, tiny_checkpoint, name, epochs=200) for name in ("one", "two", "three")]
    log = (tmp_path / "xp.log").open("w")
    process = subprocess.Popen(
        xp_command("run", *map(str, files), "--executor", "ray", "--address", ray_head, "--cpus", "2"),
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=RAY_ENV,
    )
    try:
        deadline = time.monotonic() + 240
        while not (
            (tmp_path / "mlruns" / "mlflow.db").exists()
            and any(run.data.metrics.get("train/loss") is not None for run in runs_of(tmp_path))
        ):
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "xp.log").read_text()[-3000:]
            time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=180)
    finally:
        if process.poll() is None:
            process.kill()
        log.close()

    output = (tmp_path / "xp.log").read_text()
    assert code == 130, output[-3000:]
    [run] = runs_of(tmp_path)  # the two waiting tasks never started
    assert run.info.status == "KILLED"
    assert output.count("killed") >= 3  # every experiment's row in the table says so


def sweep_experiment(folder: Path, checkpoint: Path) -> Path:
    return experiment(
        folder,
        checkpoint,
        "sweep",
        sweep={"method": "grid", "study": "unreached", "space": {"optimizer.lr": [1e-4, 1e-3]}},
    )


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_an_address_where_nothing_listens_ends_the_command_at_once_with_no_run(tmp_path, tiny_checkpoint, command):
    file = sweep_experiment(tmp_path, tiny_checkpoint)
    address = f"127.0.0.1:{free_port()}"  # nothing listens there

    started = time.monotonic()
    done = xp(tmp_path, command, str(file), "--executor", "ray", "--address", address, timeout=120)

    assert done.returncode == 2, done.stderr[-3000:]
    assert time.monotonic() - started < 60  # today's Ray would wait for good; a loaded machine starts slowly
    assert (
        done.stderr.strip().splitlines()[-1] == f"error: cannot reach the Ray cluster at {address}: Connection refused"
    )
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "mlruns" / "mlflow.db").exists() or not runs_of(tmp_path)


def test_an_address_that_is_not_a_ray_head_fails_within_the_limit_with_no_run(tmp_path, tiny_checkpoint, deaf_port):
    from tracker.executors.ray_tasks import ANSWER_SECONDS

    address, _ = deaf_port
    file = sweep_experiment(tmp_path, tiny_checkpoint)

    started = time.monotonic()
    done = xp(tmp_path, "sweep", str(file), "--executor", "ray", "--address", address, timeout=120)

    assert done.returncode == 2, done.stderr[-3000:]
    assert ANSWER_SECONDS <= time.monotonic() - started < ANSWER_SECONDS + 40  # not for good, as ray.init would
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: cannot reach the Ray cluster at {address}: its port is open, but no Ray head")
    assert "Traceback" not in done.stderr and "rpc_client" not in done.stderr  # Ray's own complaints kept out
    assert not (tmp_path / "mlruns" / "mlflow.db").exists() or not runs_of(tmp_path)


def test_ctrl_c_while_waiting_for_the_cluster_stops_at_once(tmp_path, tiny_checkpoint, deaf_port):
    address, listener = deaf_port
    file = sweep_experiment(tmp_path, tiny_checkpoint)
    process = subprocess.Popen(
        xp_command("sweep", str(file), "--executor", "ray", "--address", address),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=RAY_ENV,
    )
    try:
        connections = [listener.accept()[0] for _ in range(2)]  # the port tried, then Ray's client asking
        process.send_signal(signal.SIGINT)
        stopped = time.monotonic()
        _, stderr = process.communicate(timeout=30)
        waited = time.monotonic() - stopped
    finally:
        if process.poll() is None:
            process.kill()
    for connection in connections:
        connection.close()

    assert process.returncode == 130, stderr[-3000:]
    assert waited < 15  # at once, not after the cluster's time is up
    assert stderr.strip().splitlines()[-1] == f"stopped    before the Ray cluster at {address} answered"
    assert "Traceback" not in stderr
    assert not (tmp_path / "mlruns" / "mlflow.db").exists() or not runs_of(tmp_path)


def test_without_ray_the_executor_says_how_to_install_it(tmp_path, tiny_checkpoint):
    hidden = tmp_path / "no-ray"
    (hidden / "ray").mkdir(parents=True)
    (hidden / "ray" / "__init__.py").write_text("raise ImportError(\"No module named 'ray'\")\n")
    file = experiment(tmp_path, tiny_checkpoint, "one")

    done = subprocess.run(
        xp_command("run", str(file), "--executor", "ray"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(hidden)},
    )

    assert done.returncode == 2
    assert 'the ray executor needs Ray: pip install "xp-tracker[ray]"' in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "mlruns").exists()

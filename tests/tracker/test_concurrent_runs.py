"""Runs started at the same moment share one store, even one that does not exist yet: MLflow
creates and migrates a SQLite store on first use without a lock, so xp opens it under one."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.mlflow_helpers import MAX_STEPS, QUICKSTART, as_set_options, quickstart_overrides, xp_command

RUNS = 4
LEARNING_RATES = [f"{index + 1}e-4" for index in range(RUNS)]


def test_runs_started_together_on_a_new_store_all_finish_with_every_point(tmp_path, tiny_checkpoint):
    from mlflow import MlflowClient

    assert not (tmp_path / "mlruns").exists()  # the default store, not there yet
    environment = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
    processes = []
    for lr in LEARNING_RATES:
        overrides = quickstart_overrides(tiny_checkpoint, tmp_path, None, f"optimizer.lr={lr}")
        log = (tmp_path / f"run-{lr}.log").open("w")
        processes.append(
            (
                subprocess.Popen(
                    xp_command("run", "-q", str(QUICKSTART), *as_set_options(overrides)),
                    cwd=tmp_path,
                    env=environment,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                ),
                log,
            )
        )
    for process, log in processes:
        code = process.wait(timeout=600)
        log.close()
        assert code == 0, Path(log.name).read_text()[-3000:]

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("quickstart")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(float(run.data.params["optimizer.lr"]) for run in runs) == [float(lr) for lr in LEARNING_RATES]
    assert {run.info.status for run in runs} == {"FINISHED"}
    for run in runs:
        # Every logged step exactly once: none lost to a locked database, none written twice.
        losses = client.get_metric_history(run.info.run_id, "train/loss")
        assert sorted(point.step for point in losses) == list(range(1, MAX_STEPS + 1)), run.info.run_name
        # One evaluation at each epoch's end: 32 rows in batches of 16.
        evaluations = client.get_metric_history(run.info.run_id, "eval/loss")
        assert sorted(point.step for point in evaluations) == [2, 4], run.info.run_name

"""`xp run --processes 2`: the accelerate runner on two real CPU processes (torchrun), tracked into
one MLflow run by the first process, with the effective batch and steps of two processes and
each validation row scored exactly once, however the distributed sampler pads the last batch."""

from __future__ import annotations

import csv
import os
import subprocess
from fractions import Fraction

from tests.experiment_files import write_experiment
from tests.mlflow_helpers import DATA, xp_command

VALIDATION_ROWS = 15  # an odd count: two processes' last batches are padded with a repeated row


def xp(folder, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # two processes on two cores
    return subprocess.run(xp_command(*args), cwd=folder, capture_output=True, text=True, timeout=600, env=env)


def experiment(folder, checkpoint, runner: str = "accelerate"):
    with (DATA / "validation.csv").open(encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    validation = folder / "validation.csv"
    with validation.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows[:VALIDATION_ROWS])
    return write_experiment(
        folder / "two.toml",
        checkpoint,
        {"train": str(DATA / "train.csv"), "validation": str(validation)},
        dataset={"max_rows": {"train": 32}},
        runner={"use": runner, "num_epochs": 1, "batch_size": 4},
        tracking={"enabled": True, "uri": f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}", "system_metrics": False},
    )


def test_two_processes_train_into_one_run_and_score_each_validation_row_once(tmp_path, tiny_checkpoint):
    from mlflow import MlflowClient

    done = xp(tmp_path, "run", "--processes", "2", str(experiment(tmp_path, tiny_checkpoint)))

    assert done.returncode == 0, done.stderr[-4000:]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    [run] = client.search_runs([e.experiment_id for e in client.search_experiments()])  # one run, not two
    assert run.info.status == "FINISHED"
    # 32 rows in batches of 4 on each of 2 processes: 8 rows a step, 4 steps
    assert run.data.params["derived.effective_batch_size"] == "8"
    assert [p.step for p in client.get_metric_history(run.info.run_id, "train/loss")] == [1, 2, 3, 4]
    [evaluation] = client.get_metric_history(run.info.run_id, "eval/accuracy")
    assert evaluation.step == 4
    # a count out of 15 rows (both labels are among them, so neither 0 nor 1): a padded, repeated
    # row would make it a count out of 16
    assert Fraction(evaluation.value).limit_denominator(100).denominator in {3, 5, 15}
    assert done.stdout.count("finished") == 1 and done.stderr.count("status ") == 1  # one summary, one table


def test_processes_with_a_single_process_runner_is_refused_before_anything_runs(tmp_path, tiny_checkpoint):
    done = xp(tmp_path, "run", "--processes", "2", str(experiment(tmp_path, tiny_checkpoint, runner="loop")))

    assert done.returncode == 2
    assert 'the loop runner trains on one process; --processes needs use = "accelerate"' in done.stderr
    assert not (tmp_path / "mlruns").exists() and "Traceback" not in done.stderr

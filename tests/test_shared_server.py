"""A shared tracking server as the README sets one up: a real PostgreSQL as MLflow's backend store,
a real `mlflow server` on it serving the artifacts, two `xp run` logging into it at the same
moment, and a sweep whose Optuna study lives in the same PostgreSQL.

Needs Debian's `postgresql` and the `psycopg` driver (the test extra); skipped without them,
except in CI, whose `.ci/run` installs PostgreSQL."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.experiment_files import write_experiment
from tests.mlflow_helpers import (
    DATA,
    MAX_STEPS,
    QUICKSTART,
    as_set_options,
    mlflow_server,
    quickstart_overrides,
    xp_command,
)
from tests.postgres_helpers import postgres_server, require_postgres

LEARNING_RATES = ("1e-4", "3e-4")


@dataclass
class Shared:
    folder: Path
    postgres: str  # postgresql://postgres@127.0.0.1:PORT, no database
    server: str  # the mlflow server's base URL, the tracking URI everybody uses


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Iterator[Shared]:
    require_postgres()
    folder = tmp_path_factory.mktemp("shared-server")
    # The README's command: PostgreSQL for runs, params and metrics; the server stores and
    # serves the artifacts, so clients need no access to its disk.
    with (
        postgres_server(("mlflow", "optuna")) as postgres,
        mlflow_server(
            f"{postgres}/mlflow", folder, 180, "--serve-artifacts", "--artifacts-destination", str(folder / "artifacts")
        ) as base,
    ):
        yield Shared(folder, postgres, base)


def client_of(shared: Shared):
    from mlflow import MlflowClient

    return MlflowClient(shared.server)


def test_two_experiments_at_once_into_a_server_on_postgresql(shared, tiny_checkpoint):
    folder = shared.folder / "two-runs"
    folder.mkdir()
    processes = []
    for lr in LEARNING_RATES:  # both at the same moment, as two people would
        log = (folder / f"xp-{lr}.log").open("w")
        overrides = quickstart_overrides(tiny_checkpoint, folder, shared.server, f"optimizer.lr={lr}")
        processes.append(
            (
                subprocess.Popen(
                    xp_command("run", str(QUICKSTART), *as_set_options(overrides)),
                    cwd=folder,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                ),
                log,
            )
        )
    for process, log in processes:
        assert process.wait(timeout=600) == 0, Path(log.name).read_text()[-3000:]
        log.close()

    client = client_of(shared)
    experiment = client.get_experiment_by_name("quickstart")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(run.data.params["optimizer.lr"] for run in runs) == sorted(str(float(lr)) for lr in LEARNING_RATES)
    for run in runs:
        assert run.info.status == "FINISHED"
        history = client.get_metric_history(run.info.run_id, "train/loss")
        assert sorted(point.step for point in history) == list(range(1, MAX_STEPS + 1))  # each step once
        evaluations = [point.step for point in client.get_metric_history(run.info.run_id, "eval/loss")]
        assert evaluations == [2, MAX_STEPS]  # after each epoch of 32 rows in batches of 16
        assert run.info.artifact_uri.startswith("mlflow-artifacts:")  # served by the server
        assert {"config", "curves", "console.log"} <= {a.path for a in client.list_artifacts(run.info.run_id)}
    # ...and the runs are rows of PostgreSQL, not of some file next to the server
    import sqlalchemy

    with sqlalchemy.create_engine(f"{shared.postgres}/mlflow").connect() as connection:
        stored = connection.execute(sqlalchemy.text("select count(*) from runs where status = 'FINISHED'")).scalar()
    assert stored == len(LEARNING_RATES)


def test_a_sweep_keeps_its_optuna_study_in_the_same_postgresql(shared, tiny_checkpoint):
    import optuna

    folder = shared.folder / "sweep"
    folder.mkdir()
    storage = f"{shared.postgres}/optuna"
    file = write_experiment(
        folder / "sweep.toml",
        tiny_checkpoint,
        {"train": str(DATA / "train.csv"), "validation": str(DATA / "validation.csv")},
        experiment={"name": "shared-sweep"},
        dataset={"max_rows": {"train": 32, "eval": 16}},
        tracking={"enabled": True, "uri": shared.server, "system_metrics": False},
        sweep={"method": "grid", "study": "shared", "storage": storage, "space": {"optimizer.lr": [1e-4, 1e-3]}},
    )

    done = subprocess.run(xp_command("sweep", str(file)), cwd=folder, capture_output=True, text=True, timeout=600)

    assert done.returncode == 0, done.stderr[-3000:]
    study = optuna.load_study(study_name="shared", storage=storage)
    assert [trial.state.name for trial in study.trials] == ["COMPLETE", "COMPLETE"]
    client = client_of(shared)
    runs = client.search_runs([client.get_experiment_by_name("shared-sweep").experiment_id])
    [parent] = [run for run in runs if run.data.tags.get("xp.sweep") == "parent"]
    trials = [run for run in runs if run.data.tags.get("xp.sweep") == "trial"]
    assert parent.info.status == "FINISHED" and study.user_attrs["xp.parent_run_id"] == parent.info.run_id
    assert {run.data.tags["mlflow.parentRunId"] for run in trials} == {parent.info.run_id} and len(trials) == 2
    assert "postgresql://postgres@127.0.0.1" in parent.data.params["sweep.storage"]

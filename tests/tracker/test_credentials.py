"""Credentials are checked before the run: a PostgreSQL tracking store or study database that
refuses the user or the password is told at `xp validate --data` and `xp run` time, within
seconds, with exit code 2 and the password masked, before any MLflow run exists.

A real PostgreSQL cluster whose role `xp` must give its password over TCP (tests/postgres_helpers).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.experiment_files import write_experiment
from tests.mlflow_helpers import DATA, run_quickstart
from tests.postgres_helpers import postgres_server
from tracker.cli import main
from tracker.preflight import check_storage, check_tracking
from tracker.redact import REDACTED

PASSWORD = "right-horse-battery"
WRONG = "wrong-hunter2"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """127.0.0.1:PORT of a cluster with the databases mlflow and optuna, and the role xp."""
    with postgres_server(("mlflow", "optuna"), passwords={"xp": PASSWORD}) as url:
        yield url.rsplit("@", 1)[1]


@pytest.fixture(autouse=True)
def no_password_from_the_environment(monkeypatch):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", "/nonexistent")  # not the ~/.pgpass of whoever runs the tests


def test_a_wrong_password_is_told_within_seconds_with_the_password_masked(server):
    for check, database in ((check_tracking, "mlflow"), (check_storage, "optuna")):
        started = time.monotonic()
        problem = check(f"postgresql://xp:{WRONG}@{server}/{database}")

        assert time.monotonic() - started < 5
        assert problem == (
            f"the database at postgresql://xp:{REDACTED}@{server}/{database} refused user xp: "
            "password authentication failed"
        )


def test_the_right_password_passes_whatever_driver_the_url_names(server):
    for scheme in ("postgresql", "postgresql+psycopg"):
        assert check_tracking(f"{scheme}://xp:{PASSWORD}@{server}/mlflow") is None
        assert check_storage(f"{scheme}://xp:{PASSWORD}@{server}/optuna") is None


def test_no_password_where_one_is_asked_says_where_one_goes(server):
    problem = check_tracking(f"postgresql://xp@{server}/mlflow")

    assert problem == (
        f"the database at postgresql://xp@{server}/mlflow refused user xp: it asks for a password and none "
        "was given (in the URI, PGPASSWORD or ~/.pgpass)"
    )


def test_a_password_from_pgpassword_counts_as_mlflow_would_take_it(server, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", PASSWORD)

    assert check_tracking(f"postgresql://xp@{server}/mlflow") is None


def test_a_database_or_role_that_is_not_there_is_told(server):
    assert check_tracking(f"postgresql://xp:{PASSWORD}@{server}/mlfow") == (
        f'the database at postgresql://xp:{REDACTED}@{server}/mlfow refused the connection: database "mlfow" '
        "does not exist"
    )
    assert check_tracking(f"postgresql://nobody@{server}/mlflow") == (
        f'the database at postgresql://nobody@{server}/mlflow refused the connection: role "nobody" does not exist'
    )


def test_xp_validate_data_reports_a_refused_password_for_the_store_and_the_study(server, tmp_path):
    file = write_experiment(
        tmp_path / "experiment.toml",
        Path("bert-base-uncased"),  # never loaded: the problems come first
        {"train": str(DATA / "train.csv"), "validation": str(DATA / "validation.csv")},
        tracking={"enabled": True, "uri": f"postgresql://xp:{WRONG}@{server}/mlflow"},
        sweep={
            "method": "grid",
            "storage": f"postgresql://xp:{WRONG}@{server}/optuna",
            "space": {"optimizer.lr": [1e-4, 1e-3]},
        },
    )

    started = time.monotonic()
    result = CliRunner().invoke(main, ["validate", "--data", str(file)])

    assert time.monotonic() - started < 10
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"{file}: [tracking] uri: the database at postgresql://xp:{REDACTED}@{server}/mlflow refused user xp: "
        "password authentication failed",
        f"{file}: [sweep] storage: the database at postgresql://xp:{REDACTED}@{server}/optuna refused user xp: "
        "password authentication failed",
        "1 of 1 experiment file(s) invalid; nothing was run.",
    ]
    assert WRONG not in result.output + result.stderr


def test_xp_run_with_a_wrong_password_exits_2_before_any_run(server, tmp_path, tiny_checkpoint):
    import psycopg

    result = run_quickstart(tmp_path, tiny_checkpoint, f"postgresql://xp:{WRONG}@{server}/mlflow")

    assert result.returncode == 2, result.stderr[-3000:]
    assert (
        f"[tracking] uri: the database at postgresql://xp:{REDACTED}@{server}/mlflow refused user xp: "
        "password authentication failed"
    ) in result.stderr
    assert WRONG not in result.stdout + result.stderr
    # Nothing reached the database: MLflow did not even create its tables, let alone a run.
    with psycopg.connect(f"postgresql://postgres@{server}/mlflow") as database:
        tables = database.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
    assert tables == (0,)

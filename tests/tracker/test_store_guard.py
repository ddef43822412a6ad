"""No store is created or written where the user did not ask for one, and every URI is checked
as the experiment file's keys are.

A file that is not an MLflow store, given as `--uri` to a command that reads runs (the
tab-completion slip `--uri mlruns/optuna.db`), as MLFLOW_TRACKING_URI, or as `[tracking] uri` to
`xp run`, is refused with one line and exit code 2, and stays byte for byte as it was; so is a
file that is not an Optuna study given as `[sweep] storage`. A new store is made only by `xp run`
and `xp sweep`, where no file is yet. A scheme MLflow (or Optuna) does not take, or a server that
does not answer, is one line and exit code 2 within seconds, and `xp validate` fails a file that
names one.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.experiment_files import write_experiment
from tests.mlflow_helpers import (
    DATA,
    free_port,
    run_quickstart,
    xp_command,
)
from tracker.cli import main
from tracker.redact import REDACTED


def rows_to_predict(folder: Path) -> str:
    return shutil.copy(DATA / "validation.csv", folder / "rows.csv")


# Each command that reads runs, with its --uri; `folder` holds spools for `xp sync` (none) and
# the rows `xp predict` reads.
READING = {
    "runs": lambda uri, folder: ["runs", "--uri", uri],
    "compare": lambda uri, folder: ["compare", "quickstart", "--uri", uri, "--no-png"],
    "sync": lambda uri, folder: ["sync", str(folder), "--uri", uri],
    "predict": lambda uri, folder: ["predict", "quickstart", "-i", rows_to_predict(folder), "--uri", uri],
    "resume": lambda uri, folder: ["resume", "quickstart", "--uri", uri],
}


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> Path:
    """One file of each kind that is not an MLflow store, and one MLflow store: real ones, made
    by Optuna and MLflow themselves."""
    import optuna

    from tracker.stores import open_store_for_runs

    folder = tmp_path_factory.mktemp("templates")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.create_study(storage=f"sqlite:///{folder / 'optuna.db'}", study_name="a-study")
    (folder / "notes.txt").write_text("my notes, not a database\n")
    (folder / "empty.db").write_bytes(b"")
    with sqlite3.connect(folder / "other.db") as other:
        other.execute("CREATE TABLE customers (name TEXT)")
    open_store_for_runs(f"sqlite:///{folder / 'mlflow.db'}")
    (folder / "mlflow.db.lock").unlink()
    return folder


NOT_STORES = {
    "optuna.db": "an Optuna study database",
    "notes.txt": "not an SQLite database",
    "empty.db": "empty (0 bytes)",
    "other.db": "an SQLite database of something else (tables customers)",
}


def copied(templates: Path, name: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(templates / name, folder / name))


def xp(*args: str, env: dict[str, str] | None = None):
    result = CliRunner().invoke(main, list(args), env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


@pytest.mark.parametrize("command", READING)
@pytest.mark.parametrize("name", NOT_STORES)
def test_a_file_that_is_no_mlflow_store_given_as_uri_is_refused_and_left_as_it_was(
    templates, tmp_path, monkeypatch, command, name
):
    monkeypatch.chdir(tmp_path)
    slip = copied(templates, name, tmp_path / "mlruns")
    before = slip.read_bytes()

    result = xp(*READING[command](f"mlruns/{name}", tmp_path))

    assert result.exit_code == 2
    assert result.stderr == (
        f"error: --uri mlruns/{name}: cannot open the tracking store sqlite:///{slip}: the file is {NOT_STORES[name]}; "
        "it is left untouched (expected an MLflow tracking store)\n"
    )
    assert slip.read_bytes() == before
    assert sorted(path.name for path in slip.parent.iterdir()) == [name]  # no lock, journal or artifacts beside it


def test_mlflow_tracking_uri_naming_an_optuna_study_is_refused_too(templates, tmp_path):
    study = copied(templates, "optuna.db", tmp_path)
    before = study.read_bytes()

    result = xp("runs", env={"MLFLOW_TRACKING_URI": f"sqlite:///{study}"})

    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: MLFLOW_TRACKING_URI=sqlite:///{study}: cannot open the tracking store")
    assert "the file is an Optuna study database" in result.stderr
    assert study.read_bytes() == before


def test_xp_run_refuses_a_tracking_uri_that_is_no_mlflow_store_and_leaves_it_as_it_was(
    templates, tmp_path, tiny_checkpoint
):
    study = copied(templates, "optuna.db", tmp_path / "mlruns")
    before = study.read_bytes()

    result = run_quickstart(tmp_path, tiny_checkpoint, f"sqlite:///{study}")

    assert result.returncode == 2, result.stderr[-3000:]
    assert (
        f"[tracking] uri: cannot open the tracking store sqlite:///{study}: the file is an Optuna study database; "
        "it is left untouched (expected an MLflow tracking store)"
    ) in result.stderr
    assert "Traceback" not in result.stderr
    assert study.read_bytes() == before


def test_xp_sweep_refuses_a_study_storage_that_is_an_mlflow_store_and_leaves_it_as_it_was(
    templates, tmp_path, tiny_checkpoint
):
    mlflow_store = copied(templates, "mlflow.db", tmp_path / "elsewhere")
    before = mlflow_store.read_bytes()
    file = write_experiment(
        tmp_path / "sweep.toml",
        tiny_checkpoint,
        {"train": str(DATA / "train.csv"), "validation": str(DATA / "validation.csv")},
        tracking={"enabled": True, "uri": f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}", "system_metrics": False},
        sweep={"method": "grid", "storage": f"sqlite:///{mlflow_store}", "space": {"optimizer.lr": [1e-4, 1e-3]}},
    )

    result = subprocess.run(xp_command("sweep", str(file)), cwd=tmp_path, capture_output=True, text=True, timeout=300)

    assert result.returncode == 2, result.stderr[-3000:]
    assert (
        f"[sweep] storage: cannot open the study storage sqlite:///{mlflow_store}: the file is an MLflow tracking "
        "store; it is left untouched (expected an Optuna study database)"
    ) in result.stderr
    assert result.stderr.endswith("nothing was run.\n")
    assert mlflow_store.read_bytes() == before


@pytest.mark.parametrize("command", READING)
def test_an_unknown_scheme_in_uri_is_one_line(tmp_path, command):
    result = xp(*READING[command]("mlflw://127.0.0.1:5000", tmp_path))

    assert result.exit_code == 2
    assert result.stderr.startswith(
        'error: --uri mlflw://127.0.0.1:5000: unsupported tracking URI "mlflw://127.0.0.1:5000"'
    )
    assert "expected one of the schemes sqlite, postgresql, mysql, mssql, http, https, databricks" in result.stderr
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize("command", READING)
@pytest.mark.parametrize("scheme", ["http", "postgresql"])
def test_a_server_that_does_not_answer_is_one_line_within_seconds_with_the_password_masked(tmp_path, command, scheme):
    uri = f"{scheme}://xp:hunter2pw@127.0.0.1:{free_port()}/mlflow"  # bound a moment ago, then let go

    started = time.monotonic()
    result = xp(*READING[command](uri, tmp_path))

    assert time.monotonic() - started < 10
    assert result.exit_code == 2
    assert "(connection refused)" in result.stderr and f"xp:{REDACTED}@127.0.0.1" in result.stderr
    assert "hunter2pw" not in result.output + result.stderr
    assert len(result.stderr.splitlines()) == 1


def experiment_file(folder: Path, **changes: dict) -> Path:
    """A tracked experiment; its checkpoint is never loaded here (the problems come first)."""
    return write_experiment(
        folder / "experiment.toml",
        Path("bert-base-uncased"),
        {"train": str(DATA / "train.csv"), "validation": str(DATA / "validation.csv")},
        **{"tracking": {"enabled": True, "uri": f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}"}, **changes},
    )


def test_xp_validate_fails_a_file_whose_tracking_uri_or_study_storage_has_a_scheme_nobody_takes(tmp_path):
    file = experiment_file(
        tmp_path,
        tracking={"enabled": True, "uri": "mlflw://127.0.0.1:5000"},
        sweep={"method": "grid", "storage": "redis://127.0.0.1/0", "space": {"optimizer.lr": [1e-4, 1e-3]}},
    )

    result = xp("validate", str(file))

    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f'{file}: [tracking] uri: unsupported tracking URI "mlflw://127.0.0.1:5000"; expected one of the schemes '
        "sqlite, postgresql, mysql, mssql, http, https, databricks, databricks-uc",
        f'{file}: [sweep] storage: unsupported study storage "redis://127.0.0.1/0"; expected an SQLAlchemy URL '
        "with one of the schemes sqlite, postgresql, mysql (sqlite:///mlruns/optuna.db, postgresql://user@host/optuna)",
        "1 of 1 experiment file(s) invalid; nothing was run.",
    ]


def test_xp_validate_data_fails_a_study_storage_that_does_not_answer_within_seconds(tmp_path):
    port = free_port()
    file = experiment_file(
        tmp_path,
        sweep={
            "method": "grid",
            "storage": f"postgresql://xp:hunter2pw@127.0.0.1:{port}/optuna",
            "space": {"optimizer.lr": [1e-4, 1e-3]},
        },
    )

    started = time.monotonic()
    result = xp("validate", "--data", str(file))

    assert time.monotonic() - started < 10
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == (
        f"{file}: [sweep] storage: cannot reach the study database at "
        f"postgresql://xp:{REDACTED}@127.0.0.1:{port}/optuna (connection refused); "
        "start it, or set [sweep] storage to a reachable database"
    )
    assert "hunter2pw" not in result.stderr


def test_xp_validate_data_fails_a_default_study_storage_that_is_no_optuna_study(templates, tmp_path):
    """The study's default place, optuna.db beside the MLflow store, holds something else."""
    taken = copied(templates, "notes.txt", tmp_path / "mlruns")
    taken = taken.rename(taken.with_name("optuna.db"))
    file = experiment_file(tmp_path, sweep={"method": "grid", "space": {"optimizer.lr": [1e-4, 1e-3]}})

    result = xp("validate", "--data", str(file))

    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == (
        f"{file}: [sweep] storage (default: optuna.db beside the tracking store): cannot open the study storage "
        f"sqlite:///{taken}: the file is not an SQLite database; it is left untouched "
        "(expected an Optuna study database)"
    )
    assert taken.read_text() == "my notes, not a database\n"

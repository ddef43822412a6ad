"""Tracking stores: opening one for runs (a new SQLite store created once, however many runs start
at the same moment), and reading one named on the command line (`xp compare`, `xp predict`): any
spelling of the store, and runs found by id, unique id prefix or name."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

RUN_ID = re.compile(r"[0-9a-f]{32}")
_HEX = re.compile(r"[0-9a-f]+")
SHORT_ID = 12  # xp prints the first 12 digits of a run id
# Runs sharing a SQLite store wait this long for their turn to write (pysqlite's default is 5 s,
# too short for several runs logging every step on a busy machine).
SQLITE_BUSY_TIMEOUT_SECONDS = 60
_LISTED = 10  # candidates listed for an ambiguous id prefix, at most


class StoreError(Exception):
    """A store or a run that is not there: printed as `error: <line>`, exit code 2."""


def open_store_for_runs(uri: str) -> Any:
    """An MlflowClient on `uri` whose store exists and has MLflow's current schema.

    MLflow creates and migrates a SQLite store the first time a process opens it, with no lock:
    runs started at the same moment on a new store collide ("duplicate column", "table
    alembic_version already exists") and can leave it half migrated. Here one process at a time
    opens it, under an exclusive lock on `<database>.lock`; the others then find it ready.
    A StoreError when the file exists but is no MLflow store (an Optuna study, a text file): it
    stays as it is."""
    from mlflow import MlflowClient

    from tracker.preflight import DEFAULT_PORTS, MLFLOW_STORE, check_tracking, not_the_store
    from tracker.redact import mask_uri
    from tracker.spec.paths import uri_scheme

    database = sqlite_database(uri)
    if database is None:  # a server or another database: it migrates itself, or refuses
        # MLflow retries a database that is down or refuses the password for minutes: asked first.
        problem = check_tracking(uri) if uri_scheme(uri) in DEFAULT_PORTS else None
        if problem:
            raise StoreError(problem)
        return MlflowClient(uri)
    database.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(database.with_name(database.name + ".lock")):
        other = not_the_store(database, MLFLOW_STORE, mask_uri(uri), "tracking store") if database.exists() else None
        if other:
            raise StoreError(other)
        client = MlflowClient(uri)
        client.search_experiments(max_results=1)  # MLflow creates and migrates the store on first use
    return client


def patient_uri(uri: str) -> str:
    """`uri` to write through: a SQLite store with SQLITE_BUSY_TIMEOUT_SECONDS as its busy timeout
    (unless the URI sets one), any other store as it is."""
    if sqlite_database(uri) is None or "timeout=" in uri:
        return uri
    return f"{uri}{'&' if '?' in uri else '?'}timeout={SQLITE_BUSY_TIMEOUT_SECONDS}"


def sqlite_database(uri: str) -> Path | None:
    """The database file of a `sqlite:///` URI (relative to the working directory when the URI
    is), or None for any other store."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///") :].split("?", 1)[0])


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    import fcntl

    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or the process dies
        yield


def store_uri(spelling: str | None) -> str:
    """`--uri` as typed, else MLFLOW_TRACKING_URI, else ./mlruns: a folder (its mlflow.db), a .db
    file, or any URI MLflow takes (sqlite:///, http(s)://, ...). A SQLite store must exist and be
    one: reading never creates a store, nor writes into a file of another kind (an Optuna study, a
    text file); a server must answer (MLflow would retry a dead one for minutes) and a database
    take the credentials (tracker.preflight). StoreError, one line, for anything else."""
    from tracker.preflight import check_tracking
    from tracker.redact import mask_uri
    from tracker.tracking import DEFAULT_STORE

    environment = os.environ.get("MLFLOW_TRACKING_URI")
    given = spelling or environment or DEFAULT_STORE
    origin = (
        f"--uri {mask_uri(given)}"
        if spelling
        else f"MLFLOW_TRACKING_URI={mask_uri(given)}"
        if environment
        else f"the default store {DEFAULT_STORE} (give --uri or set MLFLOW_TRACKING_URI)"
    )
    uri = given if "://" in given or given == "databricks" else f"sqlite:///{Path(given).expanduser().resolve()}"
    database = sqlite_database(uri)
    if database is not None:
        folder = database.is_dir()
        if folder:  # a folder means the store inside it, as xp lays it out
            database = database / "mlflow.db"
            uri = f"sqlite:///{database}"
        if not database.is_file():
            where = f"no mlflow.db in the folder {database.parent}" if folder else f"no such file {database}"
            raise StoreError(
                f"{origin}: no tracking store there ({where}); expected a folder holding "
                "mlflow.db, a .db file, sqlite:///PATH or http(s)://HOST"
            )
    problem = check_tracking(uri)
    if problem:
        raise StoreError(f"{origin}: {problem}")
    return uri


def open_store(uri: str) -> Any:
    """An MlflowClient on `uri` (from store_uri), with MLflow's INFO lines about opening and
    migrating the store silenced: the command's output is the point."""
    import logging

    from mlflow import MlflowClient

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return MlflowClient(uri)


@contextlib.contextmanager
def current_tracking_uri(uri: str) -> Iterator[None]:
    """`uri` as MLflow's current tracking URI while the block lasts, then whatever was before.

    For MLflow calls that have no client form, or ignore the `tracking_uri` they are given:
    logging a model, and downloading a Logged Model (`models:/m-...`), which MLflow 3 looks up in
    the current store whatever `download_artifacts(tracking_uri=...)` says."""
    import mlflow

    # Setting the URI also exports it as MLFLOW_TRACKING_URI, and MLflow prefers its own choice
    # to the environment's: a URI that came from the environment is given back to it (None unsets
    # MLflow's choice and the variable; "" would mean ./mlruns), so a later change of the
    # variable still counts.
    environment = os.environ.get("MLFLOW_TRACKING_URI")
    chosen = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        # None unsets it, as MLflow's code does and its annotation (`str | Path`) does not say.
        mlflow.set_tracking_uri(None if chosen == environment else chosen)  # type: ignore[arg-type]
        if environment is not None:
            os.environ["MLFLOW_TRACKING_URI"] = environment


def all_experiments(client: Any) -> Iterator[Any]:
    """Every active experiment, page by page."""
    token = None
    while True:
        page = client.search_experiments(max_results=1000, page_token=token)
        yield from page
        token = page.token
        if not token:
            return


def experiment_ids(client: Any) -> list[str]:
    return [experiment.experiment_id for experiment in all_experiments(client)]


def search_runs(
    client: Any, experiment_ids: list[str], filter_string: str = "", newest_first: bool = False
) -> Iterator[Any]:
    """Every active run of `experiment_ids` that matches, oldest (or newest) first, page by page."""
    order = "DESC" if newest_first else "ASC"
    token = None
    while experiment_ids:
        page = client.search_runs(
            experiment_ids,
            filter_string,
            max_results=1000,
            page_token=token,
            order_by=[f"attributes.start_time {order}"],
        )
        yield from page
        token = page.token
        if not token:
            return


def runs_selected(client: Any, experiment_ids: list[str], selector: str, whole_experiments: bool = False) -> list[Any]:
    """The runs `selector` names, read the same way by every command that takes a run: the run with
    that full id; else every run of that name, newest first; else, with `whole_experiments`, every
    run of the experiment of that name; else the one run whose id starts with it. [] when nothing
    matches; a StoreError when an id prefix matches several runs. What several runs of one name
    mean is the caller's to say."""
    found = _run_with_id(client, selector)
    if found is not None:
        return [found]
    named = _runs_named(client, experiment_ids, selector)
    if named:
        return named
    if whole_experiments:
        experiment = client.get_experiment_by_name(selector)
        if experiment is not None and experiment.lifecycle_stage == "active":
            return list(search_runs(client, [experiment.experiment_id]))
    found = _run_with_prefix(client, experiment_ids, selector)
    return [found] if found is not None else []


def _run_with_id(client: Any, selector: str) -> Any | None:
    """The run whose full id is `selector`, if there is one."""
    from mlflow.exceptions import MlflowException

    if not RUN_ID.fullmatch(selector):
        return None
    try:
        return client.get_run(selector)
    except MlflowException:
        return None  # perhaps a run or experiment named like an id


def _runs_named(client: Any, experiment_ids: list[str], name: str) -> list[Any]:
    """Every run named `name`, newest first."""
    return list(search_runs(client, experiment_ids, f"attributes.run_name = '{quoted(name)}'", newest_first=True))


def _run_with_prefix(client: Any, experiment_ids: list[str], selector: str) -> Any | None:
    """The one run whose id starts with `selector`; None when none does, StoreError when several do."""
    if not _HEX.fullmatch(selector) or len(selector) >= 32:
        return None
    found = list(search_runs(client, experiment_ids, f"attributes.run_id LIKE '{selector}%'"))
    if len(found) > 1:
        listed = ", ".join(f"{run.info.run_id[:SHORT_ID]} ({run.info.run_name})" for run in found[:_LISTED])
        more = f" and {len(found) - _LISTED} more" if len(found) > _LISTED else ""
        raise StoreError(
            f"{selector}: ambiguous run id prefix, matches {len(found)} runs: {listed}{more}; give more characters"
        )
    return found[0] if found else None


def quoted(text: str) -> str:
    """`text` inside a single-quoted string of MLflow's search syntax."""
    return text.replace("\\", "\\\\").replace("'", "\\'")

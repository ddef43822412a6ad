"""Key validators for things on this machine that can be checked without loading anything:
folders xp will write to, tracking URIs and study storages. Whether a store answers, takes the
credentials and is what it is named as is tracker.preflight's, at `xp run` and `xp validate --data`."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from tracker.redact import mask_uri

# What MLflow 3 can track to: its SQLAlchemy stores, a tracking server, Databricks. The file
# store (a plain folder, file:) is refused by MLflow 3, so it is refused here first.
TRACKING_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks", "databricks-uc")
# Where an Optuna study can live: the SQLAlchemy databases Optuna's RDB storage is tested on.
STUDY_SCHEMES = ("sqlite", "postgresql", "mysql")


def writable_folder(path: str) -> str:
    """A folder that exists and is writable, or can be created under one that is."""
    folder = Path(path).expanduser()
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise ValueError(f'cannot write to "{path}": {existing} is a file, not a folder')
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f'cannot write to "{path}": {existing} is not writable')
    return path


def uri_scheme(uri: str) -> str:
    """`postgresql+psycopg://...` -> `postgresql`; MLflow's bare `databricks` is a scheme too."""
    if uri in ("databricks", "databricks-uc"):
        return uri
    return urlsplit(uri).scheme.split("+", 1)[0].lower()


def tracking_uri(uri: str) -> str:
    """A tracking URI MLflow 3 accepts; an SQLite store's folder must be writable."""
    unsupported = unsupported_tracking_scheme(uri)
    if unsupported:
        raise ValueError(unsupported)
    scheme = uri_scheme(uri)
    if scheme == "sqlite":
        _sqlite_file(uri, "mlflow.db")
    elif scheme in ("http", "https") and not urlsplit(uri).hostname:
        raise ValueError(f'"{mask_uri(uri)}": expected a server address, e.g. http://127.0.0.1:5000')
    return uri


def unsupported_tracking_scheme(uri: str) -> str | None:
    """Why MLflow 3 cannot track to `uri`'s scheme, or None: checked in `[tracking] uri`, and in
    `--uri` and MLFLOW_TRACKING_URI, which no file check saw (tracker.preflight)."""
    scheme = uri_scheme(uri)
    if scheme in TRACKING_SCHEMES:
        return None
    hint = ' (MLflow 3 has no file store: use "sqlite:///mlruns/mlflow.db")' if scheme in ("", "file") else ""
    return (
        f'unsupported tracking URI "{mask_uri(uri)}"{hint}; expected one of the schemes {", ".join(TRACKING_SCHEMES)}'
    )


def study_storage(uri: str) -> str:
    """An SQLAlchemy URL Optuna keeps a study in; an SQLite database's folder must be writable."""
    unsupported = unsupported_study_scheme(uri)
    if unsupported:
        raise ValueError(unsupported)
    if uri_scheme(uri) == "sqlite":
        _sqlite_file(uri, "optuna.db")
    return uri


def unsupported_study_scheme(uri: str) -> str | None:
    """Why Optuna cannot keep a study at `uri`'s scheme, or None."""
    if uri_scheme(uri) in STUDY_SCHEMES:
        return None
    return (
        f'unsupported study storage "{mask_uri(uri)}"; expected an SQLAlchemy URL with one of the schemes '
        f"{', '.join(STUDY_SCHEMES)} (sqlite:///mlruns/optuna.db, postgresql://user@host/optuna)"
    )


def _sqlite_file(uri: str, example: str) -> None:
    """An SQLite URL must name a file (not memory, not a folder) in a folder xp can write to."""
    shown = mask_uri(uri)
    database = uri.split(":///", 1)[1].split("?", 1)[0] if ":///" in uri else ""
    if not database or database == ":memory:":
        raise ValueError(f'"{shown}": expected sqlite:///path/to/{example} (a file, so what it holds is kept)')
    if Path(database).is_dir():
        raise ValueError(f'"{shown}" names a folder; expected sqlite:///path/to/{example} (a file)')
    writable_folder(str(Path(database).parent))

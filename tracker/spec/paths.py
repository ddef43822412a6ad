"""Key validators for things on this machine that can be checked without loading anything:
folders xp will write to, and tracking URIs."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from tracker.redact import mask_uri

# What MLflow 3 can track to: its SQLAlchemy stores, a tracking server, Databricks. The file
# store (a plain folder, file:) is refused by MLflow 3, so it is refused here first.
TRACKING_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks", "databricks-uc")


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


def tracking_uri(uri: str) -> str:
    """A tracking URI MLflow 3 accepts; an SQLite store's folder must be writable."""
    scheme = urlsplit(uri).scheme.split("+", 1)[0].lower()  # postgresql+psycopg2 -> postgresql
    shown = mask_uri(uri)
    if scheme not in TRACKING_SCHEMES:
        hint = ' (MLflow 3 has no file store: use "sqlite:///mlruns/mlflow.db")' if scheme in ("", "file") else ""
        raise ValueError(
            f'unsupported tracking URI "{shown}"{hint}; expected one of the schemes {", ".join(TRACKING_SCHEMES)}'
        )
    if scheme == "sqlite":
        database = uri.split(":///", 1)[1] if ":///" in uri else ""
        if not database or database == ":memory:":
            raise ValueError(f'"{shown}": expected sqlite:///path/to/mlflow.db (a file, so runs are kept)')
        if Path(database).is_dir():
            raise ValueError(f'"{shown}" names a folder; expected sqlite:///path/to/mlflow.db (a file)')
        writable_folder(str(Path(database).parent))
    elif scheme in ("http", "https") and not urlsplit(uri).hostname:
        raise ValueError(f'"{shown}": expected a server address, e.g. http://127.0.0.1:5000')
    return uri

"""Before any data or model loads: is the tracking store reachable? An answer within seconds."""
from __future__ import annotations

import socket
import sqlite3
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from tracker.redact import mask_uri

DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}


def check_tracking(uri: str, timeout: float = 3.0) -> str | None:
    """Why the store at `uri` cannot be used right now, or None. The URI is shown masked."""
    parts = urlsplit(uri)
    scheme = parts.scheme.split("+", 1)[0].lower()
    shown = mask_uri(uri)
    hint = "; start it, or set [tracking] uri / MLFLOW_TRACKING_URI to a reachable store"
    if scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout):
                return None
        except urllib.error.HTTPError as error:
            if error.code in (401, 403):
                return (f"the MLflow tracking server at {shown} refused the credentials (HTTP {error.code}); "
                        "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD")
            return f"the MLflow tracking server at {shown} answered HTTP {error.code} to a health check{hint}"
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            return f"cannot reach the MLflow tracking server at {shown} ({mask_uri(str(reason))}){hint}"
    if scheme == "sqlite":
        return _sqlite_problem(uri.split(":///", 1)[-1], shown)
    if scheme in DEFAULT_PORTS:
        try:
            with socket.create_connection((parts.hostname or "localhost", parts.port or DEFAULT_PORTS[scheme]),
                                          timeout=timeout):
                return None
        except OSError as error:
            return f"cannot reach the tracking database at {shown} ({error.strerror or error}){hint}"
    return None


def _sqlite_problem(database: str, shown: str) -> str | None:
    """An existing store file must be an SQLite database (a new one is created by MLflow)."""
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as connection:
            connection.execute("select count(*) from sqlite_master").fetchone()
    except sqlite3.OperationalError as error:
        if "unable to open" in str(error):  # not there yet: MLflow creates it
            return None
        return f"cannot open the tracking store {shown}: {error}"
    except sqlite3.DatabaseError as error:
        return f"cannot open the tracking store {shown}: {error}"
    return None

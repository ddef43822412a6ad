"""Before any data or model loads: is the tracking store reachable? An answer within seconds."""

from __future__ import annotations

import base64
import os
import socket
import sqlite3
import ssl
import urllib.error
import urllib.request
from urllib.parse import unquote, urlsplit, urlunsplit

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
            with urllib.request.urlopen(_health_request(uri), timeout=timeout, context=_tls_context()):
                return None
        except urllib.error.HTTPError as error:
            if error.code in (401, 403):
                return (
                    f"the MLflow tracking server at {shown} refused the credentials (HTTP {error.code}); "
                    "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) "
                    "in the environment"
                )
            return f"the MLflow tracking server at {shown} answered HTTP {error.code} to a health check{hint}"
        except (urllib.error.URLError, OSError) as error:
            reason = _reason(getattr(error, "reason", error))
            return f"cannot reach the MLflow tracking server at {shown} ({reason}){hint}"
    if scheme == "sqlite":
        return _sqlite_problem(uri.split(":///", 1)[-1], shown)
    if scheme in DEFAULT_PORTS:
        try:
            with socket.create_connection(
                (parts.hostname or "localhost", parts.port or DEFAULT_PORTS[scheme]), timeout=timeout
            ):
                return None
        except OSError as error:
            return f"cannot reach the tracking database at {shown} ({_reason(error)}){hint}"
    return None


def _health_request(uri: str) -> urllib.request.Request:
    """GET <uri>/health with the credentials MLflow itself would send. urllib does not take
    `user:password@` from a URL (it would look the whole of it up as a host name)."""
    parts = urlsplit(uri)
    bare = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    request = urllib.request.Request(f"{bare.rstrip('/')}/health")
    user = os.environ.get("MLFLOW_TRACKING_USERNAME") or unquote(parts.username or "")
    password = os.environ.get("MLFLOW_TRACKING_PASSWORD") or unquote(parts.password or "")
    if os.environ.get("MLFLOW_TRACKING_TOKEN"):
        request.add_header("Authorization", f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}")
    elif user or password:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    return request


def _tls_context() -> ssl.SSLContext:
    """Verify the server's certificate as MLflow would, honouring its two TLS settings."""
    context = ssl.create_default_context(cafile=os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or None)
    if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() in ("true", "1"):
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return context


def _reason(error: object) -> str:
    """The cause without the errno: `connection refused`, `timed out`, `name or service not known`."""
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return mask_uri(text[:1].lower() + text[1:])


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

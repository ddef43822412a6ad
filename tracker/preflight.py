"""Before any data or model loads: can the run use what it names? The tracking store and the
study's database answer and take the credentials, an existing file is the store it is named as
(nothing is ever written into a file of another kind), and the folders a command writes to can
really be written. An answer within seconds."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import getpass
import math
import os
import re
import socket
import sqlite3
import ssl
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from tracker.redact import mask_uri
from tracker.spec.paths import unsupported_study_scheme, unsupported_tracking_scheme, uri_scheme
from tracker.stores import SQLITE_BUSY_TIMEOUT_SECONDS, sqlite_database

DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}
# What an existing SQLite file holds, told by its tables: both keep an alembic_version table.
MLFLOW_STORE = "an MLflow tracking store"
OPTUNA_STUDY = "an Optuna study database"
_SIGNATURES = {
    MLFLOW_STORE: {"alembic_version", "experiments", "runs"},
    OPTUNA_STUDY: {"studies", "trials", "version_info"},
}
_HINT = "; start it, or set [tracking] uri / MLFLOW_TRACKING_URI to a reachable store"


def check_tracking(uri: str, timeout: float = 3.0) -> str | None:
    """Why the store at `uri` cannot be used right now, or None. The URI is shown masked. A
    server must answer; a database must take the user and password (PostgreSQL; MySQL and SQL
    Server: their port must answer); an existing SQLite file must be an MLflow store, and the
    folder of a new one writable."""
    unsupported = unsupported_tracking_scheme(uri)
    if unsupported:
        return unsupported
    scheme = uri_scheme(uri)
    shown = mask_uri(uri)
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
            return f"the MLflow tracking server at {shown} answered HTTP {error.code} to a health check{_HINT}"
        except (urllib.error.URLError, OSError) as error:
            reason = _reason(getattr(error, "reason", error))
            return f"cannot reach the MLflow tracking server at {shown} ({reason}){_HINT}"
    if scheme == "sqlite":
        return _sqlite_problem(uri, MLFLOW_STORE, "tracking store")
    if scheme in DEFAULT_PORTS:
        return _database_problem(uri, "tracking database", _HINT, timeout)
    return None  # Databricks: MLflow's own client finds its credentials


def check_storage(uri: str, timeout: float = 3.0) -> str | None:
    """Why the Optuna study database at `uri` cannot be used right now, or None: as
    check_tracking, an existing SQLite file must be an Optuna study database."""
    unsupported = unsupported_study_scheme(uri)
    if unsupported:
        return unsupported
    if uri_scheme(uri) == "sqlite":
        return _sqlite_problem(uri, OPTUNA_STUDY, "study storage")
    return _database_problem(
        uri, "study database", "; start it, or set [sweep] storage to a reachable database", timeout
    )


def sqlite_file(database: Path) -> str:
    """What the existing file `database` holds, read without writing to it: MLFLOW_STORE,
    OPTUNA_STUDY, or what else it is ("empty (0 bytes)", "not an SQLite database", ...)."""
    if database.is_dir():
        return "a folder"
    if database.stat().st_size == 0:
        return "empty (0 bytes)"
    try:
        # mode=ro: opening it can neither create nor change it. A store busy with runs' writes
        # is waited for, as those runs wait (tracker.stores.SQLITE_BUSY_TIMEOUT_SECONDS).
        read_only = f"{database.absolute().as_uri()}?mode=ro"
        with contextlib.closing(sqlite3.connect(read_only, uri=True, timeout=SQLITE_BUSY_TIMEOUT_SECONDS)) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as error:
        return "not an SQLite database" if "not a database" in str(error) else f"unreadable ({error})"
    for kind, signature in _SIGNATURES.items():
        if signature <= tables:
            return kind
    if not tables:
        return "an SQLite database with no tables"
    listed = sorted(tables)
    return f"an SQLite database of something else (tables {', '.join(listed[:5])}{', ...' if len(listed) > 5 else ''})"


def not_the_store(database: Path, kind: str, shown: str, what: str) -> str | None:
    """Why the existing file `database` cannot be opened as `kind` (MLFLOW_STORE, OPTUNA_STUDY):
    a file of another kind is never turned into one."""
    found = sqlite_file(database)
    if found == kind:
        return None
    return f"cannot open the {what} {shown}: the file is {found}; it is left untouched (expected {kind})"


def folder_problem(folder: Path, *, keep: bool = False) -> str | None:
    """Why files cannot be written in `folder`, or None: found by really making it (and its
    missing parents) and a file in it. Permission bits would not do: root passes them everywhere,
    under /proc too. The probe file goes, and so do the folders it made unless `keep` (a command
    about to write there): a run whose check fails leaves nothing half-written."""
    for _ in range(5):  # runs started together on a new folder: another probe may remove it under ours
        made = [] if keep else [parent for parent in (folder, *folder.parents) if not parent.exists()]
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            return f"cannot create the folder {folder}: a file is in the way"
        except OSError as error:
            return f"cannot create the folder {folder} ({_reason(error)})"
        try:
            handle, probe = tempfile.mkstemp(prefix=".xp-write-probe-", dir=folder)
            os.close(handle)
            os.unlink(probe)
        except FileNotFoundError:
            continue
        except OSError as error:
            return f"cannot write files in the folder {folder} ({_reason(error)})"
        finally:
            for created in made:  # deepest first; one that something else filled meanwhile stays
                with contextlib.suppress(OSError):
                    created.rmdir()
        return None
    return f"cannot write files in the folder {folder} (it disappeared each time it was made)"


def output_file_problem(path: Path) -> str | None:
    """Why a command cannot write the file `path` (an -o/--output/--png), or None: checked before
    the work, by folder_problem on its folder, which is created when missing."""
    if path.is_dir():
        return "is a folder; expected a file to write"
    return folder_problem(path.parent, keep=True)


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


def _sqlite_problem(uri: str, kind: str, what: str) -> str | None:
    """An existing file must be `kind`; a new one is created by `xp run`/`xp sweep` in a folder
    they can write to."""
    shown = mask_uri(uri)
    database = sqlite_database(uri)
    if database is None or database.name in ("", ":memory:"):
        return f'"{shown}": expected sqlite:///path/to/the/file.db (a file, so what it holds is kept)'
    if not database.exists():
        problem = folder_problem(database.parent)
        return f"cannot create the {what} {shown}: {problem}" if problem else None
    with _once_created(database):
        return not_the_store(database, kind, shown, what)


@contextlib.contextmanager
def _once_created(database: Path) -> Iterator[None]:
    """Wait while xp creates `database` (under an exclusive lock on `<database>.lock`: tracker.
    stores, tracker.sweep.study), so a half-made store is not taken for another kind of file.
    The lock file is not created here."""
    try:
        lock = open(database.with_name(database.name + ".lock"), "rb")  # noqa: SIM115 - closed below
    except OSError:  # xp never created this file
        yield
        return
    with lock:
        fcntl.flock(lock, fcntl.LOCK_SH)
        yield


def _database_problem(uri: str, what: str, hint: str, timeout: float) -> str | None:
    """The database server's port answers; PostgreSQL's also takes the user and password."""
    parts = urlsplit(uri)
    scheme = uri_scheme(uri)
    shown = mask_uri(uri)
    try:
        with socket.create_connection(
            (parts.hostname or "localhost", parts.port or DEFAULT_PORTS[scheme]), timeout=timeout
        ):
            pass
    except OSError as error:
        return f"cannot reach the {what} at {shown} ({_reason(error)}){hint}"
    return _postgres_login_problem(uri, what, timeout) if scheme == "postgresql" else None


def _postgres_login_problem(uri: str, what: str, timeout: float) -> str | None:
    """Log in as MLflow and Optuna will, with the URI's user and password (else PGUSER,
    PGPASSWORD, ~/.pgpass), so a refused password is told before the run, not after it."""
    shown = mask_uri(uri)
    parts = urlsplit(uri)
    try:
        import psycopg
    except ImportError:
        driver = parts.scheme.partition("+")[2]
        if driver and driver != "psycopg":  # another driver: the port answered, that is all we can tell
            return None
        return (
            f"cannot open the {what} at {shown}: the PostgreSQL driver is missing; pip install 'xp-tracker[postgres]'"
        )
    user = unquote(parts.username or "") or os.environ.get("PGUSER") or getpass.getuser()
    try:
        # libpq waits at least 2 s; the "+driver" of SQLAlchemy's URL is no part of libpq's.
        with psycopg.connect(
            urlunsplit(parts._replace(scheme="postgresql")), connect_timeout=max(2, math.ceil(timeout))
        ):
            return None
    except psycopg.Error as error:
        text = str(error)
    if "password authentication failed" in text:
        return f"the database at {shown} refused user {user}: password authentication failed"
    if "no password supplied" in text:
        return (
            f"the database at {shown} refused user {user}: it asks for a password and none was given "
            "(in the URI, PGPASSWORD or ~/.pgpass)"
        )
    fatal = re.search(r"FATAL:\s+(.+)", text)
    if fatal:  # the server's own answer: no such database, no such role, too many connections
        return f"the database at {shown} refused the connection: {mask_uri(fatal.group(1).strip())}"
    return f"cannot log in to the {what} at {shown} ({mask_uri(text.strip().splitlines()[0])})"

"""A real PostgreSQL server for tests: Debian's `postgresql` package, a throwaway cluster in a
temporary folder on a free port, trusted local connections, stopped at the end.

PostgreSQL refuses to run as root: as root (CI), the cluster belongs to the `postgres` user the
package makes and its programs run as that user. Without the package the tests that need it are
skipped with the reason, except in CI (CI=true), whose `.ci/run` installs it.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.mlflow_helpers import free_port

INSTALL = 'apt-get install -y postgresql (and pip install "psycopg[binary]", the test extra)'


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def require_postgres() -> Path:
    """The folder of PostgreSQL's programs; skips (fails in CI) when there is none."""
    folder = postgres_bin()
    missing = folder is None
    try:
        import psycopg  # noqa: F401 - the PostgreSQL driver SQLAlchemy uses for postgresql:// URLs
    except ImportError:
        missing = True
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but PostgreSQL is missing: {INSTALL}")
        pytest.skip(f"PostgreSQL is not installed here: {INSTALL}; CI runs these tests")
    return folder


@contextmanager
def postgres_server(databases: tuple[str, ...] = ("mlflow",), passwords: dict[str, str] | None = None) -> Iterator[str]:
    """A PostgreSQL cluster with `databases` made; yields the server's URL without a database
    (postgresql://postgres@127.0.0.1:PORT). `passwords`: roles made with these passwords, which
    they must give over TCP (the postgres role needs none). The cluster lives in a folder of its
    own under the system's temporary folder (the postgres user cannot enter a test's tmp_path,
    private to root), removed at the end."""
    programs = require_postgres()
    folder = Path(tempfile.mkdtemp(prefix="xp-postgres-"))
    data, sockets = folder / "data", folder / "sockets"
    for path in (data, sockets):
        path.mkdir()
    as_owner: list[str] = []
    if os.geteuid() == 0:
        as_owner = ["runuser", "-u", "postgres", "--"]
        for path in (folder, data, sockets):
            shutil.chown(path, "postgres")
    run = lambda *command: subprocess.run([*as_owner, *command], check=True, capture_output=True, text=True)  # noqa: E731
    run(str(programs / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    port = free_port()
    log = folder / "postgres.log"
    run(
        str(programs / "pg_ctl"),
        "-D",
        str(data),
        "-l",
        str(log),
        "-w",
        "-t",
        "60",
        "start",
        "-o",
        f"-h 127.0.0.1 -p {port} -k {sockets}",
    )
    try:
        for database in databases:
            run(str(programs / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", database)
        if passwords:
            psql = str(programs / "psql")
            for role, password in passwords.items():
                sql = f"CREATE ROLE {role} LOGIN PASSWORD '{password}'"
                run(psql, "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-c", sql)
            hba = data / "pg_hba.conf"  # the first line that matches decides
            lines = [f"host all {role} 127.0.0.1/32 scram-sha-256" for role in passwords]
            hba.write_text("\n".join(lines) + "\n" + hba.read_text())
            run(str(programs / "pg_ctl"), "-D", str(data), "reload")
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(
            [*as_owner, str(programs / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True
        )
        shutil.rmtree(folder, ignore_errors=True)


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"{what} within {timeout}s")

"""Is the tracking store reachable? Answered within seconds, before any data or model loads, with
any password in the URI masked."""

from __future__ import annotations

import base64
import http.server
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tests.mlflow_helpers import free_port, mlflow_server, sqlite_store
from tracker.preflight import check_tracking
from tracker.redact import REDACTED


def timed(uri: str) -> tuple[str | None, float]:
    started = time.monotonic()
    problem = check_tracking(uri, timeout=3.0)
    return problem, time.monotonic() - started


@contextmanager
def http_server(status: int) -> Iterator[tuple[str, list[str]]]:
    """A real local HTTP server answering `status` to everything; yields its URL and the
    Authorization headers it received."""
    received: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            received.append(self.headers.get("Authorization", ""))
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def test_a_server_that_is_not_running_is_reported_quickly_with_the_password_masked():
    port = free_port()  # bound a moment ago, then let go: nothing listens
    problem, seconds = timed(f"http://xp:hunter2pw@127.0.0.1:{port}")
    assert seconds < 5
    assert problem.startswith(
        f"cannot reach the MLflow tracking server at http://xp:{REDACTED}@127.0.0.1:{port} (connection refused)"
    )
    assert "MLFLOW_TRACKING_URI" in problem and "hunter2pw" not in problem


def test_a_database_that_is_not_running_is_reported_quickly_with_the_password_masked():
    port = free_port()  # bound a moment ago, then let go: nothing listens
    for scheme in ("postgresql", "mysql+pymysql"):
        problem, seconds = timed(f"{scheme}://xp:hunter2pw@127.0.0.1:{port}/mlflow")
        assert seconds < 5
        assert f"{scheme}://xp:{REDACTED}@127.0.0.1:{port}/mlflow (connection refused)" in problem
        assert "hunter2pw" not in problem


def test_a_listening_port_is_not_enough_for_postgresql_which_must_log_in():
    """Something listens, but it never answers as PostgreSQL (tests/tracker/test_credentials.py
    logs in to a real one)."""
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        problem, seconds = timed(f"postgresql://xp:hunter2pw@127.0.0.1:{port}/mlflow")
    assert seconds < 10
    assert problem == (
        f"cannot log in to the tracking database at postgresql://xp:{REDACTED}@127.0.0.1:{port}/mlflow "
        "(connection timeout expired)"
    )


def test_a_real_mlflow_server_answers(tmp_path):
    with mlflow_server(sqlite_store(tmp_path), tmp_path) as base:
        assert check_tracking(base) is None
        assert check_tracking(base + "/") is None


def test_refused_credentials_say_how_to_give_them(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    with http_server(401) as (address, received):
        problem = check_tracking(f"http://xp:hunter2pw@{address}")
    assert f"http://xp:{REDACTED}@{address} refused the credentials (HTTP 401)" in problem
    assert "MLFLOW_TRACKING_USERNAME" in problem and "MLFLOW_TRACKING_PASSWORD" in problem
    assert "hunter2pw" not in problem
    # The credentials of the URI were sent, as MLflow would send them, not looked up as a host name.
    assert received == ["Basic " + base64.b64encode(b"xp:hunter2pw").decode()]


def test_credentials_from_the_environment_are_sent(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "env-user")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "env-pass")
    with http_server(200) as (address, received):
        assert check_tracking(f"http://{address}") is None
    assert received == ["Basic " + base64.b64encode(b"env-user:env-pass").decode()]


def test_a_server_that_answers_an_error_is_reported():
    with http_server(503) as (address, _):
        problem = check_tracking(f"http://{address}/mlflow")
    assert problem.startswith(f"the MLflow tracking server at http://{address}/mlflow answered HTTP 503")


def test_sqlite_stores_need_no_server_and_mlflow_3_has_no_file_store(tmp_path):
    assert check_tracking(sqlite_store(tmp_path)) is None  # MLflow creates it
    assert check_tracking(f"file://{tmp_path}/mlruns").startswith(
        f'unsupported tracking URI "file://{tmp_path}/mlruns" (MLflow 3 has no file store'
    )

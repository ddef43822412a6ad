"""`xp ui` tells the truth and owns its server: a port, host or store it cannot serve is refused
at once in one line; its URL is printed only once the real MLflow UI answers there; and SIGTERM
or SIGHUP (a process manager, a closed terminal) stops every process of that server: `mlflow ui`,
uvicorn and its workers, MLflow's job runner. Real `xp ui` processes, real signals."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.mlflow_helpers import free_port, mlflow_server, xp_command
from tracker.ui_server import GRACE_SECONDS, STARTUP_SECONDS

REFUSED_WITHIN = 60  # seconds: xp's start-up and a store check, never the server's
STOPPED_WITHIN = 2 * GRACE_SECONDS + 15  # SIGTERM, the grace period, SIGKILL, and a busy machine


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A folder holding a new, empty MLflow store (mlflow.db), as xp lays one out."""
    from mlflow import MlflowClient

    folder = tmp_path_factory.mktemp("ui-store")
    MlflowClient(f"sqlite:///{folder / 'mlflow.db'}").search_experiments()  # creates the store
    return folder


def xp_ui(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        xp_command("ui", *args), cwd=cwd, env=env, capture_output=True, text=True, timeout=REFUSED_WITHIN
    )


def assert_one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


# ---- refused at once ---------------------------------------------------------------------------


def test_a_port_in_use_is_refused_at_once_naming_the_port_and_the_way_out(store, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = xp_ui("--uri", str(store), "--port", str(port), cwd=tmp_path)
    assert done.returncode == 2
    line = assert_one_line(done.stderr)
    assert line.startswith(f"error: port {port} is in use on 127.0.0.1") and "--port" in line, line


@pytest.mark.parametrize("port", ["0", "65536"])
def test_a_port_out_of_range_is_bad_input(store, tmp_path, port):
    done = xp_ui("--uri", str(store), "--port", port, cwd=tmp_path)
    assert done.returncode == 2
    assert f"Invalid value for '--port': {port} is not in the range 1<=x<=65535" in done.stderr


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("no-such-host.invalid", "cannot resolve it"),
        ("192.0.2.1", "no network interface of this machine has that address"),  # TEST-NET-1: nobody's
    ],
)
def test_a_host_it_cannot_listen_on_is_bad_input(store, tmp_path, host, why):
    done = xp_ui("--uri", str(store), "--host", host, "--port", str(free_port()), cwd=tmp_path)
    assert done.returncode == 2
    line = assert_one_line(done.stderr)
    assert line.startswith(f"error: --host {host}: {why}") and "expected one of this machine's addresses" in line


@pytest.mark.parametrize("uri", [["--uri", "elsewhere"], []], ids=["--uri a folder", "the default store"])
def test_no_store_there_is_bad_input_and_nothing_is_created(tmp_path, uri):
    (tmp_path / "elsewhere").mkdir()
    environment = {name: value for name, value in os.environ.items() if name != "MLFLOW_TRACKING_URI"}
    done = xp_ui(*uri, "--port", str(free_port()), cwd=tmp_path, env=environment)
    assert done.returncode == 2
    assert "no tracking store there" in assert_one_line(done.stderr)
    assert [path.name for path in tmp_path.rglob("*")] == ["elsewhere"]


def test_a_store_that_is_a_server_already_shows_its_own_ui(store, tmp_path):
    with mlflow_server(f"sqlite:///{store / 'mlflow.db'}", tmp_path, timeout=STARTUP_SECONDS) as base:
        done = xp_ui("--uri", base, cwd=tmp_path)
    assert done.returncode == 0
    line = assert_one_line(done.stderr)
    assert line.startswith(f"MLflow UI: {base}/#/experiments?") and "the store is a server: open it" in line


def test_a_server_that_dies_before_it_answers_is_told_by_its_last_words(store, tmp_path):
    """A store from a newer MLflow (an unknown schema): `mlflow ui` refuses it and exits."""
    newer = tmp_path / "newer"
    newer.mkdir()
    (newer / "mlflow.db").write_bytes((store / "mlflow.db").read_bytes())
    with contextlib.closing(sqlite3.connect(newer / "mlflow.db")) as database, database:
        database.execute("UPDATE alembic_version SET version_num = '0123456789ab'")
    done = subprocess.run(
        xp_command("ui", "--uri", str(newer), "--port", str(free_port())),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=STARTUP_SECONDS,
    )
    assert done.returncode == 1
    progress, failure = done.stderr.strip().splitlines()
    assert progress.startswith("starting the MLflow UI on sqlite:///")
    assert failure.startswith("error: the MLflow UI exited before it answered (exit code 1): ")
    assert "found version 0123456789ab" in failure


# ---- served, then stopped ------------------------------------------------------------------------


@contextlib.contextmanager
def started_ui(store: Path, folder: Path, port: int) -> Iterator[tuple[subprocess.Popen[str], list[str], list]]:
    """`xp ui` on `store`, once it has printed its URL: the process, its stderr lines so far and
    its descendants then (its server). Whatever of them is left at the end is killed."""
    ui = subprocess.Popen(
        xp_command("ui", "--uri", str(store), "--port", str(port)), cwd=folder, stderr=subprocess.PIPE, text=True
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=read_lines, args=(ui.stderr, lines), daemon=True).start()
    seen: list[str] = []
    tree: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + STARTUP_SECONDS + 30
        while not (seen and seen[-1].startswith("MLflow UI: ")):
            assert ui.poll() is None and time.monotonic() < deadline, "".join(seen)
            with contextlib.suppress(queue.Empty):
                seen.append(lines.get(timeout=1))
        # Now, while they are its descendants: once xp ui is gone, orphans are nobody's.
        tree = psutil.Process(ui.pid).children(recursive=True)
        yield ui, seen, tree
    finally:
        ui.kill()
        ui.wait()
        for process in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        psutil.wait_procs(tree, timeout=10)


def read_lines(stream, lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


def command_line(process: psutil.Process) -> str:
    with contextlib.suppress(psutil.Error):
        return " ".join(process.cmdline())
    return f"(pid {process.pid}, gone)"


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_stop_signal_stops_every_process_of_its_server(store, tmp_path, stop):
    port = free_port()
    with started_ui(store, tmp_path, port) as (ui, stderr, server):
        url = f"http://127.0.0.1:{port}/#/experiments?workflowType=machine_learning"
        assert stderr == [
            f"starting the MLflow UI on sqlite:///{store / 'mlflow.db'} ...\n",
            f"MLflow UI: {url}  (store: sqlite:///{store / 'mlflow.db'}; Ctrl-C stops it)\n",
        ]
        with urllib.request.urlopen(url, timeout=5) as answer:  # printed once it answers: it answers at once
            assert answer.status == 200
        assert any("uvicorn" in command_line(process) for process in server)

        ui.send_signal(stop)
        assert ui.wait(timeout=STOPPED_WITHIN) == 0
        _, left = psutil.wait_procs(server, timeout=5)
        assert not left, [command_line(process) for process in left]

"""Shared by the MLflow tests: the quickstart shrunk to a few steps on the tiny BERT, `xp` as a
real process, a real `mlflow server` on a free port, and its REST API.

Registered as a pytest plugin (`pytest_plugins`) by the tests that use `tracked_pair`, so the two
runs and the server are made once per session however many modules ask for them.
Every store lives in a temporary folder and every process runs there: MLflow puts the
artifacts of a SQLite store under ./mlruns of the working directory, never the repository's.
PYTEST_DONT_REWRITE: the test modules import this file before pytest loads it as a plugin.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = REPO_ROOT / "experiments" / "quickstart.toml"  # inside the git repository: git tags
DATA = REPO_ROOT / "experiments" / "data" / "paraphrase"
MAX_STEPS = 4
LEARNING_RATES = ("1e-4", "3e-4")
REGISTERED_MODEL = "quickstart"  # the first run of `tracked_pair` registers its model under this name


def quickstart_overrides(checkpoint: Path, folder: Path, store: str | None = None, *more: str) -> list[str]:
    """`section.key=value` strings: the quickstart on `checkpoint`, 4 logged steps, outputs in `folder`."""
    overrides = [
        f'model.checkpoint="{checkpoint}"',
        f'dataset.data_files={{train = "{DATA / "train.csv"}", validation = "{DATA / "validation.csv"}"}}',
        "dataset.max_rows={train = 32, eval = 16}",
        f"runner.max_steps={MAX_STEPS}",
        "runner.logging_steps=1",
        "runner.progress_bar=false",
        "tracking.system_metrics=false",
        f'experiment.output_dir="{folder / "outputs"}"',
        *more,
    ]
    if store is not None:
        overrides.append(f'tracking.uri="{store}"')
    return overrides


def run_quickstart(
    folder: Path, checkpoint: Path, store: str | None = None, *more: str, timeout: int = 300, quiet: bool = True
) -> subprocess.CompletedProcess:
    """`xp run -q` (`xp run` unless `quiet`) of the quickstart on the tiny checkpoint, in `folder`,
    into `store`, with the overrides `more`; its output captured."""
    overrides = quickstart_overrides(checkpoint, folder, store, *more)
    command = xp_command("run", *(["-q"] if quiet else []), str(QUICKSTART), *as_set_options(overrides))
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=timeout)


def as_set_options(overrides: list[str]) -> list[str]:
    return [part for override in overrides for part in ("--set", override)]


def xp_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "tracker", *args]


def sqlite_store(folder: Path) -> str:
    return f"sqlite:///{folder / 'mlflow.db'}"


def runs_in(store: str) -> list:
    """Every run of every experiment in the MLflow store `store` (a URI)."""
    from tracker.stores import open_store_for_runs

    client = open_store_for_runs(store)
    return client.search_runs([experiment.experiment_id for experiment in client.search_experiments()])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rest(base: str, route: str, body: dict[str, Any] | None = None, **query: Any) -> dict[str, Any]:
    """GET `path` with `query`, or POST `body` as JSON; the decoded JSON answer."""
    url = f"{base}{route}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read() or b"{}")


@contextmanager
def mlflow_server(store: str, cwd: Path, timeout: float = 60, *options: str) -> Iterator[str]:
    """A real `mlflow server` on the store, on a free local port, with more command-line
    `options`; yields its base URL."""
    port = free_port()
    log = (cwd / f"mlflow-server-{port}.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            store,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            *options,
        ],
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                log.flush()
                raise RuntimeError(
                    f"mlflow server did not answer /health within {timeout}s:\n" + Path(log.name).read_text()[-3000:]
                )
            time.sleep(0.5)
        yield base
    finally:
        os.killpg(server.pid, 15)  # its own session: the gunicorn/uvicorn workers go too
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
            server.wait()
        log.close()


@dataclass
class TrackedPair:
    """Two quickstart runs (two learning rates) in one store, each with its Logged Model, the
    first one's also registered as REGISTERED_MODEL; and a server on that store."""

    folder: Path
    store: str
    base: str
    experiment_id: str
    runs: list[dict[str, Any]]  # REST run objects, in LEARNING_RATES order
    models: list[dict[str, Any]]  # REST Logged Model objects, one per run, in the same order

    @property
    def run_names(self) -> list[str]:
        return [run["info"]["run_name"] for run in self.runs]


@pytest.fixture(scope="session")
def tracked_pair(tmp_path_factory, tiny_checkpoint) -> Iterator[TrackedPair]:
    folder = tmp_path_factory.mktemp("tracked-pair")
    store = sqlite_store(folder)
    processes = []
    for lr in LEARNING_RATES:  # both at once: two CPU cores, and most of a run is start-up
        registered = [f'tracking.register_as="{REGISTERED_MODEL}"'] if lr == LEARNING_RATES[0] else []
        overrides = quickstart_overrides(
            tiny_checkpoint, folder, store, f"optimizer.lr={lr}", "runner.save_model=true", *registered
        )
        log = (folder / f"xp-run-{lr}.log").open("w")
        processes.append(
            (
                subprocess.Popen(
                    xp_command("run", str(QUICKSTART), *as_set_options(overrides)),
                    cwd=folder,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                ),
                log,
            )
        )
    for process, log in processes:
        assert process.wait(timeout=300) == 0, Path(log.name).read_text()[-3000:]
        log.close()
    with mlflow_server(store, folder) as base:
        experiment = rest(base, "/api/2.0/mlflow/experiments/get-by-name", experiment_name="quickstart")["experiment"]
        found = rest(base, "/api/2.0/mlflow/runs/search", {"experiment_ids": [experiment["experiment_id"]]})["runs"]
        by_lr = {params(run)["optimizer.lr"]: run for run in found}
        runs = [by_lr[str(float(lr))] for lr in LEARNING_RATES]
        logged = rest(base, "/api/2.0/mlflow/logged-models/search", {"experiment_ids": [experiment["experiment_id"]]})
        by_run = {model["info"]["source_run_id"]: model for model in logged.get("models", [])}
        assert len(by_run) == len(runs), f"save_model=true, but {len(by_run)} Logged Models for {len(runs)} runs"
        models = [by_run[run["info"]["run_id"]] for run in runs]
        yield TrackedPair(folder, store, base, experiment["experiment_id"], runs, models)


def params(run: dict[str, Any]) -> dict[str, str]:
    return {p["key"]: p["value"] for p in run["data"].get("params", [])}


def tags(run: dict[str, Any]) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}

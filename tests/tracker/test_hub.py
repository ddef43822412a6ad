"""The Hugging Face Hub asked once per command: where it does not answer, the libraries read their
cache at once, and a hub dataset or checkpoint missing from it fails in seconds with one clear line
instead of half a minute of retries per file (tracker/hub.py)."""

from __future__ import annotations

import http.server
import os
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from tests.experiment_files import write_experiment
from tests.mlflow_helpers import DATA, free_port, runs_in, xp_command
from tracker.hub import ANSWER_SECONDS, hub_answers


def hub_serving(status: int) -> Iterator[str]:
    """A local HTTP server answering every request with `status`; its URL."""

    class Answer(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def hub_asking_for_a_token() -> Iterator[str]:
    yield from hub_serving(401)  # what huggingface.co says to an anonymous whoami


@pytest.fixture
def hub_down() -> Iterator[str]:
    yield from hub_serving(503)


def test_a_hub_that_answers_even_with_an_error_of_the_asker_is_there(hub_asking_for_a_token):
    assert hub_answers(hub_asking_for_a_token)


def test_a_hub_with_a_server_error_nothing_listening_or_a_port_that_never_answers_is_not(hub_down, deaf_port):
    address, _ = deaf_port
    assert not hub_answers(hub_down)
    assert not hub_answers(f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    assert not hub_answers(f"http://{address}")
    assert time.monotonic() - started < ANSWER_SECONDS + 2


def xp_where_the_hub_never_answers(folder, address: str, *args: str) -> subprocess.CompletedProcess:
    """`xp ARGS` in `folder` on a machine whose hub (HF_ENDPOINT, at `address`) never answers,
    with an empty Hugging Face cache and no offline setting of the user's."""
    env = {key: value for key, value in os.environ.items() if key not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    env |= {"HF_ENDPOINT": f"http://{address}", "HF_HOME": str(folder / "hf-home")}
    return subprocess.run(xp_command(*args), cwd=folder, capture_output=True, text=True, timeout=300, env=env)


def test_a_hub_dataset_out_of_reach_fails_validation_in_seconds_with_one_line(tmp_path, tiny_checkpoint, deaf_port):
    address, _ = deaf_port
    file = write_experiment(
        tmp_path / "glue.toml", tiny_checkpoint, None, dataset={"path": "nyu-mll/glue", "name": "mrpc"}
    )

    started = time.monotonic()
    done = xp_where_the_hub_never_answers(tmp_path, address, "validate", "--data", str(file))

    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.splitlines()[0] == (
        f'{file}: [dataset] path: cannot load "nyu-mll/glue" from the Hugging Face hub: it is not in this '
        f"machine's Hugging Face cache, and the hub (http://{address}) cannot be reached from here. Point at "
        'local files instead: path = "a local folder" in hub layout, or path = "csv" with data_files = '
        '{train = "train.csv", validation = "dev.csv"}'
    )
    assert time.monotonic() - started < 60  # the libraries alone retry for minutes against a port that never answers


def test_a_hub_checkpoint_out_of_reach_ends_the_run_invalid_in_seconds_with_no_run(tmp_path, deaf_port):
    address, _ = deaf_port
    file = write_experiment(
        tmp_path / "hub-model.toml",
        "some-org/some-model",
        {"train": str(DATA / "train.csv"), "validation": str(DATA / "validation.csv")},
        tracking={"enabled": True, "uri": f"sqlite:///{tmp_path / 'mlflow.db'}"},
    )

    started = time.monotonic()
    done = xp_where_the_hub_never_answers(tmp_path, address, "run", str(file))

    assert done.returncode == 2, done.stderr[-3000:]
    assert (
        f'{file}: [model] checkpoint: cannot load a tokenizer from "some-org/some-model": it is not in this '
        f"machine's Hugging Face cache, and the hub (http://{address}) cannot be reached from here."
    ) in done.stderr
    assert "Traceback" not in done.stderr
    assert time.monotonic() - started < 60
    assert not (tmp_path / "mlflow.db").exists() or not runs_in(f"sqlite:///{tmp_path / 'mlflow.db'}")

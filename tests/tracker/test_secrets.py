"""Secrets in the places tests/test_secrets.py does not reach: the git diff of a dirty work tree,
a param too long for MLflow (kept as an artifact), what a runner prints while the console is
copied, and the error of a run that crashes (its `xp.error` tag, the traceback `xp run` prints).

Real in-process runs of the tiny BERT; afterwards every byte the runs left behind is searched.
What counts as a secret, and the `Redactor` itself: tests/tracker/test_redact.py.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.experiment_files import write_experiment
from tracker.api import load
from tracker.hookspecs import hookimpl
from tracker.params import MAX_VALUE_LENGTH
from tracker.recipe import run_tracked
from tracker.redact import REDACTED
from tracker.registry import load_registry
from tracker.session import run_one
from xp_plugins.runner.loop import LoopRunner

TAG_TOKEN = "tag-token-51e0c7"
API_KEY = "api-key-c4a90d"
DB_PASSWORD = "db-pass-2f6b18"
HUB_TOKEN = "hf_" + "Z" * 34  # shaped like a Hugging Face token, under no secret key
SECRETS = (TAG_TOKEN, API_KEY, DB_PASSWORD, HUB_TOKEN)
DB_URI = f"postgresql://xp:{DB_PASSWORD}@db.internal/mlflow"


@dataclass(kw_only=True)
class TalkativeRunner(LoopRunner):
    """The loop runner, printing the file's secrets first (as a careless plugin might)."""

    def run(self, parts, logger):
        print(f"connecting with {TAG_TOKEN} to {DB_URI}")
        print(f"hub token {HUB_TOKEN}", file=sys.stderr)
        return super().run(parts, logger)


@dataclass(kw_only=True)
class LeakingRunner(LoopRunner):
    """Training breaks with the secrets in the error message."""

    def run(self, parts, logger):
        raise RuntimeError(f"login with {API_KEY} to {DB_URI} failed")


class SecretRunners:
    @hookimpl
    def xp_register_runners(self, register):
        register("talkative", TalkativeRunner)
        register("leaking", LeakingRunner)


@pytest.fixture(scope="module")
def registry():
    return load_registry(extra_plugins=[(SecretRunners(), "secret-runners")])


def git(folder: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=folder,
        check=True,
        capture_output=True,
    )


def secret_experiment(folder: Path, checkpoint: Path, runner: str) -> Path:
    """An experiment file committed without secrets, then given them: the work tree is dirty."""
    (folder / "train.csv").write_text("text,label\n" + "".join(f"row {i},{'ab'[i % 2]}\n" for i in range(8)))
    data = str(folder / "train.csv")

    def write(experiment: dict) -> Path:
        return write_experiment(
            folder / "secret.toml",
            checkpoint,
            {"train": data, "validation": data},
            experiment={"output_dir": str(folder / "outputs"), **experiment},
            dataset={"text_columns": ["text"]},
            runner={"use": runner, "max_steps": 2},
            tracking={"enabled": True, "uri": f"sqlite:///{folder}/mlflow.db", "system_metrics": False},
        )

    git(folder, "init", "-q")
    git(folder, "add", write({"tags": {"team": "nlp"}}).name)
    git(folder, "commit", "-q", "-m", "experiment")
    # Longer than an MLflow param may be: the description goes whole to params/experiment.description.txt.
    description = f"mirror of {DB_URI}, seeded by {HUB_TOKEN}. " + "x" * MAX_VALUE_LENGTH
    return write({"tags": {"team": "nlp", "hf_token": TAG_TOKEN}, "description": description})


def track(registry, path: Path, capsys):
    """Run `path` as `xp run` does (one experiment through `run_one`), in its folder; what was reported
    and what reached the terminal."""
    experiment = load(path, [f'experiment.tags.api_key="{API_KEY}"'], registry)
    reported: list[str] = []
    with pytest.MonkeyPatch.context() as patch:  # an SQLite store keeps its artifacts under ./mlruns
        patch.chdir(path.parent)
        outcome = run_one(experiment, registry, run_tracked, reported.append)
    terminal = capsys.readouterr()
    return outcome, "\n".join(reported), terminal.out + terminal.err


def only_run(folder: Path):
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{folder}/mlflow.db")
    [run] = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return client, run


def left_behind(folder: Path) -> list[Path]:
    """Every file xp wrote: the store, its artifacts, the outputs (not the experiment, data or git)."""
    return [
        path
        for path in folder.rglob("*")
        if path.is_file() and ".git" not in path.parts and path.name not in ("secret.toml", "train.csv")
    ]


def assert_no_secret(folder: Path, *texts: str) -> None:
    files = left_behind(folder)
    assert any(path.name == "mlflow.db" for path in files)
    for secret in SECRETS:
        for path in files:
            assert secret.encode() not in path.read_bytes(), (secret, path)
        for text in texts:
            assert secret not in text


def test_a_finished_run_keeps_no_secret_in_diff_long_params_or_console(registry, tiny_checkpoint, tmp_path, capsys):
    outcome, reported, terminal = track(registry, secret_experiment(tmp_path, tiny_checkpoint, "talkative"), capsys)
    assert outcome.status == "finished", reported

    assert_no_secret(tmp_path, reported, terminal)
    client, run = only_run(tmp_path)
    download = Path(client.download_artifacts(run.info.run_id, "", str(tmp_path / "download")))
    diff = (download / "provenance" / "git.diff").read_text()
    assert f'hf_token = "{REDACTED}"' in diff and run.data.tags["xp.git.dirty"] == "true"
    long_param = (download / "params" / "experiment.description.txt").read_text()
    assert long_param.startswith(f"mirror of postgresql://xp:{REDACTED}@db.internal/mlflow, seeded by {REDACTED}.")
    console = (download / "console.log").read_text()
    for shown in (console, terminal):  # the console copy and the terminal alike
        assert f"connecting with {REDACTED} to postgresql://xp:{REDACTED}@db.internal/mlflow" in shown
        assert f"hub token {REDACTED}" in shown


def test_a_crashed_run_keeps_no_secret_in_its_error_or_traceback(registry, tiny_checkpoint, tmp_path, capsys):
    outcome, reported, terminal = track(registry, secret_experiment(tmp_path, tiny_checkpoint, "leaking"), capsys)
    assert outcome.status == "failed"

    assert_no_secret(tmp_path, reported, terminal, outcome.error)
    expected = f"RuntimeError: login with {REDACTED} to postgresql://xp:{REDACTED}@db.internal/mlflow failed"
    _, run = only_run(tmp_path)
    assert run.info.status == "FAILED" and run.data.tags["xp.error"] == expected
    assert "Traceback" in reported and expected in reported and outcome.error == expected

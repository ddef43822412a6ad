"""No secret reaches the MLflow store, its artifacts, the terminal or an error message.

A real short run whose experiment file holds credentials in several places; afterwards every
byte of the SQLite store and of every artifact is searched for them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.experiment_files import write_experiment
from tracker.cli import main
from tracker.redact import REDACTED

TAG_TOKEN = "tag-token-6f1c9a"
API_KEY = "api-key-0b7e55"
DB_PASSWORD = "db-pass-93d2c1"
HUB_TOKEN = "hf_" + "Q" * 34  # shaped like a Hugging Face token, under an ordinary key
SECRETS = (TAG_TOKEN, API_KEY, DB_PASSWORD, HUB_TOKEN)


@pytest.fixture(scope="module")
def tracked(tmp_path_factory, tiny_checkpoint):
    folder = tmp_path_factory.mktemp("secrets")
    (folder / "train.csv").write_text("text,label\n" + "".join(f"row {i},{'ab'[i % 2]}\n" for i in range(8)))
    data = str(folder / "train.csv")
    path = write_experiment(
        folder / "secret.toml",
        tiny_checkpoint,
        {"train": data, "validation": data},
        experiment={
            "output_dir": str(folder / "outputs"),
            "tags": {"hf_token": TAG_TOKEN, "team": "nlp"},
            "description": f"mirror of postgresql://xp:{DB_PASSWORD}@db.internal/mlflow, seeded by {HUB_TOKEN}",
        },
        dataset={"text_columns": ["text"]},
        runner={"max_steps": 2},
        tracking={"enabled": True, "uri": f"sqlite:///{folder}/mlruns/mlflow.db", "system_metrics": False},
    )
    with pytest.MonkeyPatch.context() as patch:  # an SQLite store keeps its artifacts under ./mlruns
        patch.chdir(folder)
        result = CliRunner().invoke(main, ["run", str(path), "--set", f'experiment.tags.api_key="{API_KEY}"'])
    assert result.exit_code == 0, result.output
    return folder, path, result.output


def _files(folder: Path) -> list[Path]:
    return [
        path for path in folder.rglob("*") if path.is_file() and path.suffix != ".csv" and path.name != "secret.toml"
    ]


def test_no_secret_in_the_store_or_any_artifact(tracked):
    folder, _, _ = tracked
    stored = _files(folder / "mlruns")
    assert any(path.name == "mlflow.db" for path in stored)
    assert any(path.name == "resolved.toml" for path in stored) and any(path.name == "console.log" for path in stored)
    for path in stored:
        content = path.read_bytes()
        for secret in SECRETS:
            assert secret.encode() not in content, (secret, path)


def test_secrets_are_replaced_by_the_marker_where_they_were(tracked):
    from mlflow import MlflowClient

    folder, _, _ = tracked
    client = MlflowClient(f"sqlite:///{folder}/mlruns/mlflow.db")
    [run] = client.search_runs([client.get_experiment_by_name("secret").experiment_id])
    assert run.data.tags["hf_token"] == REDACTED and run.data.tags["api_key"] == REDACTED
    assert run.data.tags["team"] == "nlp"
    assert run.data.params["experiment.tags.api_key"] == REDACTED
    assert f"postgresql://xp:{REDACTED}@db.internal/mlflow" in run.data.params["experiment.description"]
    config = Path(client.download_artifacts(run.info.run_id, "config", str(folder / "download")))
    assert f'hf_token = "{REDACTED}"' in (config / "secret.toml").read_text()


def test_no_secret_on_the_terminal(tracked):
    _, _, output = tracked
    for secret in SECRETS:
        assert secret not in output


def test_show_and_error_messages_hide_secrets(tracked):
    _, path, _ = tracked
    shown = CliRunner().invoke(main, ["show", str(path)])
    assert shown.exit_code == 0 and TAG_TOKEN not in shown.output and DB_PASSWORD not in shown.output

    bad = CliRunner().invoke(
        main,
        [
            "validate",
            str(path),
            "--set",
            f'tracking.uri="ftp://xp:{DB_PASSWORD}@host/x"',
            "--set",
            f"experiment.seed={HUB_TOKEN}",
        ],
    )
    assert bad.exit_code == 2
    assert "[tracking] uri" in bad.output and f"ftp://xp:{REDACTED}@host/x" in bad.output
    assert DB_PASSWORD not in bad.output and HUB_TOKEN not in bad.output

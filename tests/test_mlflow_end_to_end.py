"""The issue's end to end: two quickstart variants (two learning rates) tracked into one SQLite
store by `xp run`, then read back through a real `mlflow server`'s REST API, and `xp compare`."""

from __future__ import annotations

import subprocess

from tests.mlflow_helpers import LEARNING_RATES, MAX_STEPS, QUICKSTART, params, rest, tags, xp_command

pytest_plugins = ["tests.mlflow_helpers"]


def test_both_runs_finished_with_flattened_params(tracked_pair):
    assert [run["info"]["status"] for run in tracked_pair.runs] == ["FINISHED", "FINISHED"]
    assert [params(run)["optimizer.lr"] for run in tracked_pair.runs] == [str(float(lr)) for lr in LEARNING_RATES]
    for run in tracked_pair.runs:
        assert params(run)["runner.max_steps"] == str(MAX_STEPS)
        assert params(run)["derived.rows.train"] == "32"
        assert params(run)["model.trainable_parameters"] == params(run)["model.parameters"] == "995628"
    assert len(set(tracked_pair.run_names)) == 2
    assert all(name.startswith("quickstart-") for name in tracked_pair.run_names)


def test_full_loss_history_one_point_per_logged_step(tracked_pair):
    for run in tracked_pair.runs:
        history = rest(
            tracked_pair.base,
            "/api/2.0/mlflow/metrics/get-history",
            run_id=run["info"]["run_id"],
            metric_key="train/loss",
        )["metrics"]
        assert sorted(point["step"] for point in history) == list(range(1, MAX_STEPS + 1))
        evals = rest(
            tracked_pair.base,
            "/api/2.0/mlflow/metrics/get-history",
            run_id=run["info"]["run_id"],
            metric_key="eval/loss",
        )["metrics"]
        assert evals, "no eval/loss point"


def test_curves_and_config_artifacts(tracked_pair):
    def listing(run_id: str, path: str = "") -> set[str]:
        query = {"run_id": run_id, **({"path": path} if path else {})}
        return {f["path"] for f in rest(tracked_pair.base, "/api/2.0/mlflow/artifacts/list", **query).get("files", [])}

    for run in tracked_pair.runs:
        run_id = run["info"]["run_id"]
        assert {"config", "curves", "environment", "console.log"} <= listing(run_id)
        assert {"curves/loss.png", "curves/metrics.png"} <= listing(run_id, "curves")
        assert {"config/quickstart.toml", "config/resolved.toml"} <= listing(run_id, "config")
        assert "environment/requirements.txt" in listing(run_id, "environment")


def test_git_commit_tag(tracked_pair):
    for run in tracked_pair.runs:
        commit = tags(run).get("mlflow.source.git.commit", "")
        assert len(commit) == 40 and int(commit, 16) >= 0, commit
        assert tags(run)["xp.file"] == str(QUICKSTART)


def test_xp_compare_prints_both_runs_and_writes_the_png(tracked_pair):
    png = tracked_pair.folder / "c.png"
    done = subprocess.run(
        xp_command("compare", str(QUICKSTART), "--uri", tracked_pair.store, "--png", str(png)),
        cwd=tracked_pair.folder,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    for name in tracked_pair.run_names:
        assert name in done.stdout
    assert "optimizer.lr" in done.stdout  # the param that differs
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

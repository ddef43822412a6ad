"""MLflow tracking of one run, in-process through `run_tracked(experiment, registry)`
and as a real `xp run` process where the process matters (SIGTERM). Every store is temporary and
every run works in a temporary folder (MLflow puts a SQLite store's artifacts under ./mlruns)."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.mlflow_helpers import MAX_STEPS, QUICKSTART, as_set_options, quickstart_overrides, sqlite_store, xp_command
from tracker.api import load
from tracker.cli import main
from tracker.errors import ExperimentError
from tracker.hookspecs import hookimpl
from tracker.recipe import run_tracked
from tracker.registry import load_registry
from xp_plugins.runner.loop import LoopRunner


def track(registry, checkpoint, folder, *more, store=True):
    """Run the shrunk quickstart in-process in `folder`, tracked into `folder`'s own store."""
    experiment = load(
        QUICKSTART, quickstart_overrides(checkpoint, folder, sqlite_store(folder) if store else None, *more), registry
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        return run_tracked(experiment, registry)


def only_run(store):
    from mlflow import MlflowClient

    client = MlflowClient(store)
    [run] = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return client, run


@pytest.fixture(scope="module")
def finished(registry, tiny_checkpoint, tmp_path_factory):
    """A successful run, its store named by MLFLOW_TRACKING_URI since [tracking] uri is unset."""
    folder = tmp_path_factory.mktemp("finished")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", sqlite_store(folder))
        track(registry, tiny_checkpoint, folder, store=False)
    return (*only_run(sqlite_store(folder)), folder)


def test_mlflow_tracking_uri_is_honoured_when_uri_is_unset(finished):
    _, run, folder = finished
    assert run.data.params.get("tracking.uri") in (None, "")
    assert not (folder / "mlruns" / "mlflow.db").exists() and not (folder / "mlflow.db.default").exists()


def test_successful_run_finishes_with_flattened_params(finished):
    _, run, _ = finished
    assert run.info.status == "FINISHED"
    assert run.info.run_name.startswith("quickstart-")
    params = run.data.params
    assert params["optimizer.lr"] == "0.0001" and params["runner.max_steps"] == str(MAX_STEPS)
    assert params["derived.total_optimizer_steps"] == str(MAX_STEPS)
    assert params["derived.rows.train"] == "32" and params["derived.label_names"] == "[different, paraphrase]"


def test_one_train_loss_point_per_logged_step_and_eval_metrics(finished):
    client, run, _ = finished
    history = client.get_metric_history(run.info.run_id, "train/loss")
    assert sorted(m.step for m in history) == list(range(1, MAX_STEPS + 1))
    # MLflow's `prefix/name` grouping: one chart section per prefix in the UI
    assert {"eval/loss", "eval/accuracy", "eval/f1", "train/learning_rate", "train/grad_norm"} <= set(run.data.metrics)
    assert not [name for name in run.data.metrics if name.startswith(("eval_", "train_"))]


def test_curves_config_environment_and_console_artifacts(finished):
    client, run, _ = finished

    def names(folder=None):
        return {f.path for f in client.list_artifacts(run.info.run_id, folder)}

    assert {"curves/loss.png", "curves/metrics.png"} <= names("curves")
    assert {"config/quickstart.toml", "config/resolved.toml"} <= names("config")
    assert "environment/requirements.txt" in names("environment")
    assert "console.log" in names()
    written = client.download_artifacts(run.info.run_id, "config/quickstart.toml")
    assert Path(written).read_text(encoding="utf-8") == QUICKSTART.read_text(encoding="utf-8")


def test_provenance_tags(finished):
    _, run, _ = finished
    tags = run.data.tags
    for key in ("xp.version", "xp.version.torch", "xp.device", "xp.diagnosis"):
        assert tags.get(key), key
    assert tags["xp.plugin.optimizer"].startswith("adamw (")
    # experiments/quickstart.toml is inside the repository: its commit is recorded
    assert len(tags["mlflow.source.git.commit"]) == 40 and tags["xp.git.commit"] == tags["mlflow.source.git.commit"]


@dataclass(kw_only=True)
class ExplodingRunner(LoopRunner):
    """The loop runner, except that training breaks after the run has started."""

    def run(self, parts, logger):
        logger.log_metrics({"train_loss": 1.0}, 1)
        raise RuntimeError("the runner broke at step 1")


class ExplodingPlugin:
    @hookimpl
    def xp_register_runners(self, register):
        register("exploding", ExplodingRunner)


def test_a_runner_that_raises_ends_the_run_failed(tiny_checkpoint, tmp_path):
    registry = load_registry(extra_plugins=[(ExplodingPlugin(), "exploding")])
    with pytest.raises(RuntimeError, match="broke at step 1"):
        track(registry, tiny_checkpoint, tmp_path, 'runner.use="exploding"')
    client, run = only_run(sqlite_store(tmp_path))
    assert run.info.status == "FAILED"
    assert run.data.tags["xp.error"] == "RuntimeError: the runner broke at step 1"
    assert [m.value for m in client.get_metric_history(run.info.run_id, "train/loss")] == [1.0]


def test_a_store_that_cannot_be_opened_is_reported_before_anything_loads(registry, tiny_checkpoint, tmp_path):
    (tmp_path / "mlflow.db").write_bytes(b"not a database, just bytes" * 100)  # where sqlite_store points

    with pytest.raises(ExperimentError) as caught:
        track(registry, tiny_checkpoint, tmp_path)

    [problem] = caught.value.problems
    assert (problem.section, problem.key) == ("tracking", "uri")
    assert "cannot open the tracking store" in problem.message


def test_metrics_logged_at_every_step_reach_the_store_in_few_writes():
    """However often a runner logs, consecutive metrics records go to the store together."""
    import collections

    from tracker.tracking.store_writer import group

    pending = collections.deque(
        [{"kind": "metrics", "metrics": [["train/loss", 1.0 / step, 0, step]]} for step in range(1, 201)]
        + [{"kind": "tags", "tags": {}}]
    )
    writes = []
    while pending:
        records = group(pending)
        writes.append(records)
        for _ in records:
            pending.popleft()
    assert [len(group) for group in writes] == [200, 1]


def training_has_logged(database) -> bool:
    """A RUNNING run with a train/loss point, read with plain sqlite3: an MlflowClient here would
    race the xp process to create the store's tables."""
    if not database.exists():
        return False
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1) as connection:
            return bool(
                connection.execute(
                    "SELECT 1 FROM runs JOIN metrics ON metrics.run_uuid = runs.run_uuid "
                    "WHERE runs.status = 'RUNNING' AND metrics.key = 'train/loss' LIMIT 1"
                ).fetchall()
            )
    except sqlite3.Error:  # tables not there yet, or locked for a moment
        return False


def test_sigterm_during_training_ends_the_run_killed(tiny_checkpoint, tmp_path):
    from mlflow import MlflowClient

    store = sqlite_store(tmp_path)
    overrides = quickstart_overrides(
        tiny_checkpoint, tmp_path, store, "runner.max_steps=100000", 'runner.eval_strategy="no"'
    )
    log = (tmp_path / "xp.log").open("w")
    process = subprocess.Popen(
        xp_command("run", str(QUICKSTART), *as_set_options(overrides)),
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while True:  # until the run exists and training has logged a step
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "xp.log").read_text()[-3000:]
            if training_has_logged(tmp_path / "mlflow.db"):
                break
            time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
    client = MlflowClient(store)
    statuses = [r.info.status for r in client.search_runs([e.experiment_id for e in client.search_experiments()])]
    assert statuses == ["KILLED"]


def test_the_tracking_process_starts_before_training_imports_its_heavy_libraries(tiny_checkpoint, tmp_path):
    """Its start-up (importing MLflow, opening the store) then runs beside the training process's
    own imports, not beside the first training step (BENCHMARKS.md: time to the first step)."""
    overrides = quickstart_overrides(tiny_checkpoint, tmp_path, sqlite_store(tmp_path))
    code = f"""
import subprocess, sys
from tracker.cli import main
imported_at_start = []
start = subprocess.Popen.__init__
def watched(self, args, *more, **options):
    if "tracker.tracking.service" in args:
        imported_at_start.append([m for m in ("torch", "transformers", "datasets") if m in sys.modules])
    start(self, args, *more, **options)
subprocess.Popen.__init__ = watched
try:
    main(["run", {str(QUICKSTART)!r}, *{as_set_options(overrides)!r}])
except SystemExit as done:
    assert done.code == 0, done.code
print(imported_at_start, file=sys.stderr)
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)

    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1] == "[[]]"  # started once, with none of them imported yet


def test_an_invalid_experiment_creates_no_run(tiny_checkpoint, tmp_path):
    overrides = quickstart_overrides(tiny_checkpoint, tmp_path, sqlite_store(tmp_path), "optimizer.no_such_key=1")
    result = CliRunner().invoke(main, ["run", str(QUICKSTART), *as_set_options(overrides)])
    assert result.exit_code == 2, result.output
    assert "no_such_key" in result.output
    assert not (tmp_path / "mlflow.db").exists()  # not even an empty store


def test_tracking_disabled_creates_no_run(registry, tiny_checkpoint, tmp_path):
    result = track(registry, tiny_checkpoint, tmp_path, "tracking.enabled=false")
    assert result is not None
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlruns").exists()


def test_the_trainer_runner_does_not_log_through_its_own_mlflow_callback(registry, tiny_checkpoint, tmp_path):
    track(registry, tiny_checkpoint, tmp_path, 'runner.use="trainer"')
    client, run = only_run(sqlite_store(tmp_path))
    assert run.info.status == "FINISHED"
    assert not {"per_device_train_batch_size", "learning_rate", "output_dir"} & set(run.data.params)
    assert len(client.get_metric_history(run.info.run_id, "train/loss")) == MAX_STEPS

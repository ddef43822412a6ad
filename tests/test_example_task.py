"""A new task from outside xp, with no change to xp: examples/xp-multilabel (multi-label text
classification) pip-installed into a folder of its own, seen through its entry point. It trains
with every runner, validates like the built-ins, predicts with `xp predict`, and its MLflow
model is loaded back and answers as `xp predict` does.

Every `xp` here is a real `python -m tracker` process with the installed folder on PYTHONPATH,
as a user's environment would have it; it runs in a copy of the example, whose experiment files
name their data relative to it.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.mlflow_helpers import as_set_options, runs_in, sqlite_store

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = REPO_ROOT / "examples" / "xp-multilabel"
ASPECTS = ["delivery", "price", "quality", "service"]  # the labels, as the task orders them (sorted)
TEST_ROWS = 40


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """examples/xp-multilabel pip-installed into a folder (no network: no build isolation, no deps)."""
    source = tmp_path_factory.mktemp("source") / EXAMPLE.name
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = tmp_path_factory.mktemp("site")
    offline = ["--quiet", "--no-deps", "--no-build-isolation", "--no-index", "--disable-pip-version-check"]
    subprocess.run(
        [sys.executable, "-m", "pip", "install", *offline, "--target", str(target), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return target


@pytest.fixture
def example(tmp_path) -> Path:
    """A copy of the example's experiments and data, where each test runs xp."""
    folder = tmp_path / "example"
    shutil.copytree(EXAMPLE / "experiments", folder / "experiments")
    shutil.copytree(EXAMPLE / "data", folder / "data")
    return folder


def xp(folder: Path, *args: str, pythonpath: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    environment = {name: value for name, value in os.environ.items() if not name.startswith(("XP_", "MLFLOW_"))}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), os.environ.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-m", "tracker", *args],
        cwd=folder,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def quick(checkpoint: Path, store: str | None, *more: str) -> list[str]:
    """--set options: the tiny BERT, a few steps, tracked into `store` (None: not tracked)."""
    overrides = [
        f'model.checkpoint="{checkpoint}"',
        "runner.num_epochs=1",
        "runner.max_steps=6",
        "runner.batch_size=8",
        "runner.logging_steps=2",
        "runner.progress_bar=false",
        "dataset.max_rows={train = 48}",
        "tracking.system_metrics=false",
        f'tracking.uri="{store}"' if store else "tracking.enabled=false",
        *more,
    ]
    return as_set_options(overrides)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def test_the_task_and_its_metric_are_listed_with_their_distribution(installed, example):
    listing = json.loads(xp(example, "plugins", "--json", pythonpath=installed).stdout)
    by_name = {(plugin["kind"], plugin["name"]): plugin for plugin in listing["plugins"]}
    task, metric = by_name["task", "multi_label"], by_name["metric", "multi_label_f1"]
    assert (task["distribution"], task["version"]) == ("xp-multilabel", "0.1.0")
    assert metric["distribution"] == "xp-multilabel"
    assert [key["name"] for key in task["keys"]] == ["threshold"]
    assert task["summary"].startswith("Several labels per text")
    assert by_name["task", "sequence_classification"]["distribution"] == "xp-tracker"
    assert listing["broken"] == []


@pytest.mark.parametrize(
    ("change", "located", "message"),
    [
        (["task.threshold=1.5"], "[task] threshold", "expected a number in (0, 1), got 1.5"),
        (['task.use="multi_labels"'], "[task] use", 'unknown task "multi_labels"'),
        (["task.treshold=0.3"], "[task] treshold", 'unknown key (did you mean "threshold"?)'),
    ],
    ids=["threshold", "task", "key"],
)
def test_its_keys_are_checked_before_anything_loads(installed, example, change, located, message):
    result = xp(example, "validate", "experiments/aspects.toml", *as_set_options(change), pythonpath=installed)
    assert result.returncode == 2
    assert f"experiments/aspects.toml: {located}: " in result.stderr and message in result.stderr


def test_a_metric_or_a_label_column_that_does_not_fit_the_task_is_refused_before_training(installed, example):
    """The data rules of both sides: a built-in metric of single-label classes refuses the
    multi-label task, and sequence classification refuses several label columns."""
    metric = ["--set", 'metrics.use=["accuracy"]', "--set", 'runner.metric_for_best="loss"']
    accuracy = xp(example, "validate", "--data", "experiments/aspects.toml", *metric, pythonpath=installed)
    assert accuracy.returncode == 2
    assert (
        "[metrics.accuracy]: scores one class per row (sequence classification), but the task predicts "
        "4 labels, any number per row: delivery, price, quality, service"
    ) in accuracy.stderr

    columns = (example / "experiments" / "aspects_columns.toml").read_text()
    default_task = example / "experiments" / "default_task.toml"
    default_task.write_text(columns.replace('use = "multi_label"', 'use = "sequence_classification"'))
    unset = ["--unset", "task.threshold", *metric]
    refused = xp(example, "validate", "--data", "experiments/default_task.toml", *unset, pythonpath=installed)
    assert refused.returncode == 2
    assert (
        "[dataset] label_column: sequence classification reads one label column, not 4 (price, quality, "
        "delivery, service); several labels per row need a multi-label task plugin"
    ) in refused.stderr


@pytest.mark.parametrize("runner", ["loop", "accelerate", "trainer"])
def test_it_trains_with_every_runner_and_writes_label_sets(installed, example, tiny_checkpoint, runner):
    result = xp(
        example,
        "run",
        "experiments/aspects.toml",
        *quick(tiny_checkpoint, None, f'runner.use="{runner}"'),
        pythonpath=installed,
    )
    assert result.returncode == 0, result.stderr
    assert "4 labels, any number per row: delivery, price, quality, service" in result.stderr  # the data line
    assert "eval/f1_macro" in result.stdout  # the run summary's main metric: the task's metric it ranks by
    [predictions] = (example / "outputs").glob("*/predictions.csv")
    rows = read_csv(predictions)
    assert len(rows) == TEST_ROWS
    assert list(rows[0]) == ["id", "labels", *(f"score_{name}" for name in ASPECTS)]
    for row in rows:  # a label is in the set exactly when its score reaches the threshold
        chosen = {name for name in ASPECTS if float(row[f"score_{name}"]) >= 0.5}
        assert set(filter(None, row["labels"].split(";"))) == chosen


def test_one_zero_one_columns_read_as_the_same_labels(installed, example, tiny_checkpoint):
    result = xp(example, "run", "experiments/aspects_columns.toml", *quick(tiny_checkpoint, None), pythonpath=installed)
    assert result.returncode == 0, result.stderr
    # The columns in the order the file names them: the labels of the model and its predictions.
    assert "4 labels, any number per row: price, quality, delivery, service" in result.stderr


def test_the_logged_model_predicts_and_reloads_from_mlflow(installed, example, tiny_checkpoint):
    store = sqlite_store(example)
    trained = xp(
        example,
        "run",
        "experiments/aspects.toml",
        *quick(tiny_checkpoint, store, "runner.save_model=true"),
        pythonpath=installed,
    )
    assert trained.returncode == 0, trained.stderr
    [run] = runs_in(store)
    # The metric factory is given the data, whose task names the labels: an F1 per label, by name.
    assert {f"eval/f1_{name}" for name in ASPECTS} <= set(run.data.metrics)
    reviews = example / "reviews.csv"
    texts = ["Far too expensive, and it arrived late.", "Support never answered.", "Bought it last month."]
    with reviews.open("w", newline="", encoding="utf-8") as file:
        csv.writer(file).writerows([["text"], *([text] for text in texts)])

    [run_folder] = (example / "outputs").iterdir()  # named as the run: aspects-<config digest>
    predicted = xp(
        example,
        "predict",
        run_folder.name,
        "--uri",
        store,
        "--input",
        "reviews.csv",
        "--output",
        "out.csv",
        pythonpath=installed,
    )
    assert predicted.returncode == 0, predicted.stderr
    assert "(4 labels, any number per row: delivery, price, quality, service)" in predicted.stderr
    rows = read_csv(example / "out.csv")
    assert [row["text"] for row in rows] == texts
    assert list(rows[0]) == ["text", "labels", *(f"score_{name}" for name in ASPECTS)]

    # The MLflow model, loaded by MLflow alone (no xp, no plugin): every label's sigmoid score.
    script = (
        "import json, sys, mlflow\n"
        "from mlflow import MlflowClient\n"
        "client = MlflowClient(sys.argv[1])\n"
        "[run] = client.search_runs([e.experiment_id for e in client.search_experiments()])\n"
        "[model] = client.search_logged_models([run.info.experiment_id])\n"
        "mlflow.set_tracking_uri(sys.argv[1])\n"
        "answer = mlflow.pyfunc.load_model(f'models:/{model.model_id}').predict(json.loads(sys.argv[2]))\n"
        "print(json.dumps(answer.to_dict('records')))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script, store, json.dumps(texts)],
        cwd=example,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert loaded.returncode == 0, loaded.stderr
    answers = json.loads(loaded.stdout.strip().splitlines()[-1])
    by_row = _scores_by_row(answers)
    for row, scores in zip(rows, by_row, strict=True):
        assert set(scores) == set(ASPECTS)
        for name in ASPECTS:
            assert scores[name] == pytest.approx(float(row[f"score_{name}"]), abs=1e-4)


def _scores_by_row(answers: list[dict]) -> list[dict[str, float]]:
    """{label: score} per input row, from the records of the pyfunc's DataFrame: a row per input,
    a column per label (most probable first), each cell {"label": ..., "score": ...}."""
    return [{cell["label"]: cell["score"] for cell in row.values()} for row in answers]


def test_xp_init_asks_the_task_for_its_columns_and_metrics(installed, example):
    (example / "reviews").mkdir()
    for split in ("train", "validation", "test"):  # the JSON Lines, with their list column
        shutil.copy(example / "data" / f"{split}.jsonl", example / "reviews")
    result = xp(example, "init", "reviews", "--task", "multi_label", "-o", "data.toml", pythonpath=installed)
    assert result.returncode == 0, result.stderr
    assert "label: aspects, 4 labels, any number per row (delivery, price, quality, service)" in result.stdout
    text = (example / "data.toml").read_text()
    assert '[task]\n# What the model learns to predict.\nuse = "multi_label"' in text
    assert 'label_column = "aspects"' in text and 'use = ["multi_label_f1"]' in text
    checked = xp(example, "validate", "--data", "data.toml", pythonpath=installed)
    assert checked.returncode == 0, checked.stderr

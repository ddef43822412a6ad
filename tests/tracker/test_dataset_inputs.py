"""A run's dataset inputs: every split logged with its context (train, eval, test), a digest of
the rows the run used, and a source that MLflow reads the data again from, from anywhere.

Each test logs to a real SQLite store in its temporary folder, reads the inputs back from the
run and reloads them with MLflow's own `mlflow.data.get_source(input).load()`.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tracker.components import TaskData
from tracker.dataset_inputs import describe_inputs, log_dataset_inputs, rows_digest
from xp_plugins.dataset import hf
from xp_plugins.tasks.sequence_classification import SequenceClassification

PAIR = ["sentence1", "sentence2"]
COMMIT = "0123456789abcdef0123456789abcdef01234567"
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"


@pytest.fixture(scope="module")
def client(store):
    from mlflow import MlflowClient

    return MlflowClient(store)


def logged(client, task: TaskData, redact=lambda text: text) -> dict[str, object]:
    """Log `task` as a new run's inputs; the inputs read back from the run, by context."""
    experiment = client.get_experiment_by_name("inputs") or client.get_experiment(client.create_experiment("inputs"))
    run_id = client.create_run(experiment.experiment_id).info.run_id
    log_dataset_inputs(client, run_id, describe_inputs(task, redact))
    inputs = client.get_run(run_id).inputs.dataset_inputs
    return {tags(found)["mlflow.data.context"]: found for found in inputs}


def tags(dataset_input) -> dict[str, str]:
    return {tag.key: tag.value for tag in dataset_input.tags}


def reload(dataset_input, **kwargs):
    import mlflow.data

    return mlflow.data.get_source(dataset_input).load(**kwargs)


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def rows(n: int) -> list[dict[str, str]]:
    return [{"text": f"row {i}", "label": "yes" if i % 2 else "no"} for i in range(n)]


# -- local data: absolute paths that load again from any working directory ------------------------


def test_csv_files_given_relative_to_the_working_directory_reload_from_anywhere(client, tmp_path, monkeypatch):
    write_csv(tmp_path / "data" / "train.csv", rows(6))
    write_csv(tmp_path / "data" / "dev.csv", rows(4))
    write_csv(tmp_path / "data" / "test.csv", [{"text": "unlabelled"}] * 3)
    monkeypatch.chdir(tmp_path)
    task = hf(
        SequenceClassification(),
        0,
        path="csv",
        data_files={"train": "data/train.csv", "validation": "data/dev.csv", "test": "data/test.csv"},
        text_columns=["text"],
        test_split="test",
    )
    inputs = logged(client, task)

    assert set(inputs) == {"train", "eval", "test"}
    source = json.loads(inputs["eval"].dataset.source)
    assert inputs["eval"].dataset.source_type == "hugging_face"
    # Only the split's own files: the test file has no label column, and one builder reading
    # every file would cast them all to one schema.
    assert source == {
        "path": "csv",
        "config_name": None,
        "data_dir": None,
        "split": "validation",
        "data_files": {"validation": [str(tmp_path / "data" / "dev.csv")]},
        "revision": None,
    }
    assert inputs["eval"].dataset.name == "dev.csv:validation"

    monkeypatch.chdir(tmp_path.parent)
    assert {context: len(reload(found)) for context, found in inputs.items()} == {"train": 6, "eval": 4, "test": 3}


def test_mrpc_parquet_folder_reloads_every_split(client, mrpc_path):
    task = hf(SequenceClassification(), 42, path=str(mrpc_path), text_columns=PAIR, test_split="test")
    inputs = logged(client, task)

    for context, split in {"train": "train", "eval": "validation", "test": "test"}.items():
        source = json.loads(inputs[context].dataset.source)
        assert (source["path"], source["split"], source["revision"]) == (str(mrpc_path.resolve()), split, None)
        assert inputs[context].dataset.name == f"mrpc:{split}"
    # Every row of the tests' MRPC slice (tests/data/mrpc: 300, 100 and 100 rows).
    assert {context: len(reload(found)) for context, found in inputs.items()} == {
        "train": 300,
        "eval": 100,
        "test": 100,
    }
    assert json.loads(inputs["train"].dataset.profile)["num_rows"] == 300


def test_sliced_splits_reload_the_same_slice(client, mrpc_path):
    task = hf(
        SequenceClassification(),
        1,
        path=str(mrpc_path),
        text_columns=PAIR,
        train_split="train[:100]",
        eval_split="train[100:150]",
    )
    inputs = logged(client, task)
    assert [inputs[c].dataset.name for c in ("train", "eval")] == ["mrpc:train[:100]", "mrpc:train[100:150]"]
    assert len(reload(inputs["train"])) == 100 and len(reload(inputs["eval"])) == 50


def test_a_max_rows_sample_is_tagged_and_digested_as_sampled(client, mrpc_path):
    task = hf(SequenceClassification(), 7, path=str(mrpc_path), text_columns=PAIR, max_rows={"train": 50})
    inputs = logged(client, task)
    # The source reads the whole split again; the tag says how the run's rows were drawn from it.
    assert tags(inputs["train"])["xp.sample"] == "50 rows drawn with seed 7 (max_rows)"
    assert json.loads(inputs["train"].dataset.profile)["num_rows"] == 50
    assert inputs["train"].dataset.digest == rows_digest(task.splits["train"])
    assert len(reload(inputs["train"])) == 300  # the whole split of the tests' MRPC slice
    assert "xp.sample" not in tags(inputs["eval"])


# -- hub data: the id, its config and the commit that was read ------------------------------------


@pytest.fixture
def hub_cache(tmp_path, mrpc_path) -> Path:
    """A datasets cache holding nyu-mll/glue's mrpc config at commit COMMIT, laid out as datasets
    writes it when it downloads from the hub (here built from the local MRPC parquet files)."""
    from datasets.packaged_modules.parquet.parquet import Parquet

    cache = tmp_path / "hub-cache"
    files = {split: str(mrpc_path / f"{split}.parquet") for split in ("train", "validation", "test")}
    builder = Parquet(
        dataset_name="glue", config_name="mrpc", data_files=files, hash=COMMIT, cache_dir=str(tmp_path / "build")
    )
    builder.download_and_prepare(output_dir=str(cache / "nyu-mll___glue" / "mrpc" / "0.0.0" / COMMIT))
    return cache


def test_hub_data_is_logged_by_id_config_and_commit(client, hub_cache):
    # Offline (the tests' HF_HUB_OFFLINE), datasets reads the cached copy and knows its commit.
    task = hf(SequenceClassification(), 0, path="nyu-mll/glue", cache_dir=str(hub_cache), text_columns=PAIR)
    assert (task.source.path, task.source.name, task.source.revision) == ("nyu-mll/glue", "mrpc", COMMIT)

    inputs = logged(client, task)
    source = json.loads(inputs["train"].dataset.source)
    assert (source["path"], source["config_name"], source["revision"], source["split"]) == (
        "nyu-mll/glue",
        "mrpc",
        COMMIT,
        "train",
    )
    assert inputs["train"].dataset.name == "nyu-mll/glue/mrpc:train"
    assert len(reload(inputs["eval"], cache_dir=str(hub_cache))) == 100  # the slice's validation rows


# -- the digest -----------------------------------------------------------------------------------


def test_digest_follows_the_rows_not_their_layout(mrpc_path):
    from datasets import Dataset, load_dataset

    train = load_dataset(str(mrpc_path), split="train")
    selected = train.select(range(50, 250))
    assert rows_digest(selected) == rows_digest(Dataset.from_dict(train[50:250], features=train.features))
    assert rows_digest(selected) == rows_digest(selected.flatten_indices())
    assert rows_digest(selected) != rows_digest(train.select(range(50, 251)))
    renamed = train.features.copy()
    renamed["label"] = type(renamed["label"])(names=["different", "same"])
    assert rows_digest(selected) != rows_digest(selected.cast(renamed))  # the label names are part of the data


def test_digest_sees_a_change_past_the_first_ten_thousand_rows():
    from datasets import Dataset

    texts = [f"row {i}" for i in range(10_050)]
    edited = [*texts[:-1], "row edited"]
    # MLflow's own digest hashes the first 10,000 rows only.
    assert rows_digest(Dataset.from_dict({"text": texts})) != rows_digest(Dataset.from_dict({"text": edited}))


def test_an_edited_file_logs_a_new_dataset_under_the_same_name(client, tmp_path):
    files = {
        "train": str(write_csv(tmp_path / "train.csv", rows(6))),
        "validation": str(write_csv(tmp_path / "dev.csv", rows(4))),
    }
    first = logged(client, hf(SequenceClassification(), 0, path="csv", data_files=files, text_columns=["text"]))
    write_csv(tmp_path / "dev.csv", [*rows(3), {"text": "an edited row", "label": "yes"}])
    second = logged(client, hf(SequenceClassification(), 0, path="csv", data_files=files, text_columns=["text"]))
    assert first["eval"].dataset.name == second["eval"].dataset.name
    assert first["eval"].dataset.digest != second["eval"].dataset.digest
    assert first["train"].dataset.digest == second["train"].dataset.digest


# -- secrets, plugins that do not say, two runs at once -------------------------------------------


def test_secrets_in_paths_are_masked(client, tmp_path):
    folder = tmp_path / "token-hunter2"
    files = {
        "train": str(write_csv(folder / "train.csv", rows(4))),
        "validation": str(write_csv(folder / "dev.csv", rows(2))),
    }
    task = hf(SequenceClassification(), 0, path="csv", data_files=files, text_columns=["text"])
    inputs = logged(client, task, redact=lambda text: text.replace("hunter2", "*****"))
    for found in inputs.values():
        assert "hunter2" not in found.dataset.source and "hunter2" not in found.dataset.name
        assert "token-*****" in found.dataset.source


def test_a_task_without_a_source_is_logged_with_its_digest(client, mrpc_small):
    task = TaskData(
        splits={k: mrpc_small.splits[k] for k in ("train", "eval")}, text_columns=tuple(PAIR), task=mrpc_small.task
    )
    inputs = logged(client, task)
    assert set(inputs) == {"train", "eval"}
    assert inputs["train"].dataset.source_type == "code"  # MLflow's "logged from this code"
    assert inputs["train"].dataset.digest == rows_digest(mrpc_small.splits["train"])


RACER = """
import sys, time
from pathlib import Path
import mlflow.data
from mlflow import MlflowClient
from tracker.dataset_inputs import describe_inputs, log_dataset_inputs
from xp_plugins.dataset import hf
from xp_plugins.tasks.sequence_classification import SequenceClassification

folder, run_id = Path(sys.argv[1]), sys.argv[2]  # and the store
files = {"train": str(folder / "train.csv"), "validation": str(folder / "dev.csv")}
task = hf(SequenceClassification(), 0, path="csv", data_files=files,
          text_columns=["text"])
client = MlflowClient(sys.argv[3])
client.get_run(run_id)  # connected, and MLflow's dataset code imported and run once, before the start:
mlflow.data.from_huggingface(task.splits["train"], path="warm-up").to_dict()  # the two then race closely
(folder / f"ready-{run_id}").touch()
while not (folder / "go").exists():
    time.sleep(0.001)
log_dataset_inputs(client, run_id, describe_inputs(task, lambda text: text))
"""


def test_two_runs_logging_the_same_new_dataset_at_once_both_link_it(client, store, tmp_path):
    # Both look for the dataset, find none and insert it; the store's unique constraint stops the
    # second insert, and logging again links the dataset the first one stored.
    write_csv(tmp_path / "train.csv", rows(6))
    write_csv(tmp_path / "dev.csv", rows(4))
    experiment_id = client.create_experiment("race")  # datasets belong to an experiment: new here
    run_ids = [client.create_run(experiment_id).info.run_id for _ in range(2)]
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(tmp_path), run_id, store],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "HF_DATASETS_CACHE": str(tmp_path / "cache")},
            stderr=subprocess.PIPE,
            text=True,
        )
        for run_id in run_ids
    ]
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"ready-{run_id}").exists() for run_id in run_ids):
        assert time.monotonic() < deadline and all(r.poll() is None for r in racers), racers[0].stderr.read()
        time.sleep(0.05)
    (tmp_path / "go").touch()
    for racer in racers:
        assert racer.wait(timeout=120) == 0, racer.stderr.read()[-3000:]

    digests = [
        {tags(i)["mlflow.data.context"]: i.dataset.digest for i in client.get_run(r).inputs.dataset_inputs}
        for r in run_ids
    ]
    assert digests[0] == digests[1] and set(digests[0]) == {"train", "eval"}

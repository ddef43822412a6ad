"""Issue 12, point 2: with `save_model`, a run's model is an MLflow model.

Each runner (loop, accelerate, trainer) trains the quickstart for two steps on the tiny BERT and
logs its model with MLflow's transformers flavor: a Logged Model named "model" of its run, linked
to the run's final evaluation, loadable by `mlflow.pyfunc` (which answers with the dataset's label
names) and by `mlflow.transformers` (a pipeline), registered in the Model Registry when
`[tracking] register_as` says so. The plain `save_pretrained` copy under `outputs/` stays.

Everything is real: `tracker.run` (the Python API) in this process, one SQLite store in a
temporary folder, MLflow's own loaders. The runs are made once per module and shared.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.mlflow_helpers import DATA, QUICKSTART, quickstart_overrides, sqlite_store, xp_command

RUNNERS = ("loop", "accelerate", "trainer")  # trained in this order: registry versions 1, 2, 3
REGISTERED = "paraphrase-classifier"
STEPS = 2  # one epoch of 32 rows in batches of 16: the evaluation at its end is the final one
# The paraphrase CSVs store class ids 0/1; the quickstart names them with `label_names`.
CSV_LABELS = ("different", "paraphrase")
# The MRPC parquet files carry the hub's features: a ClassLabel with these names.
MRPC_LABELS = ("not_equivalent", "equivalent")


@dataclass
class Store:
    folder: Path  # the working directory of every run: MLflow puts the artifacts under ./mlruns
    uri: str


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Any:
    import mlflow

    folder = tmp_path_factory.mktemp("mlflow-models")
    uri = sqlite_store(folder)
    # tracker.run sets MLflow's tracking URI while a run lasts and puts back the one it found.
    # Here it finds this store, named by the environment as a user would name it, so that the
    # loaders below (runs:/ and models:/ URIs) read it too. Undone after the module.
    chosen_before = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    named_by_environment = chosen_before == os.environ.get("MLFLOW_TRACKING_URI")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)  # MLflow puts a SQLite store's artifacts under ./mlruns
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        yield Store(folder, uri)
        # None when the environment named it (or nothing did): the patch puts the environment back.
        mlflow.set_tracking_uri(None if named_by_environment else chosen_before)


def train(store: Store, checkpoint: Path, *overrides: str, unset: tuple[str, ...] = ()) -> Any:
    """The quickstart, two steps, model saved: the RunResult that `tracker.run` returns. `unset`
    keys are removed from the file and from the shrinking overrides."""
    import tracker

    shrunk = [o for o in quickstart_overrides(checkpoint, store.folder, store.uri) if o.split("=")[0] not in unset]
    experiment = tracker.load(
        QUICKSTART, [*shrunk, f"runner.max_steps={STEPS}", "runner.save_model=true", *overrides], unset=unset
    )
    return tracker.run(experiment)


@pytest.fixture(scope="module")
def runs(store, tiny_checkpoint) -> dict[str, Any]:
    """One run per runner, in RUNNERS order, each registering its model under one name."""
    return {
        runner: train(store, tiny_checkpoint, f'runner.use="{runner}"', f'tracking.register_as="{REGISTERED}"')
        for runner in RUNNERS
    }


@pytest.fixture(scope="module")
def mrpc_run(store, tiny_checkpoint, mrpc_path) -> Any:
    """The loop runner on the real GLUE MRPC folder (parquet in hub layout, its own label names)."""
    return train(
        store, tiny_checkpoint, f'dataset.path="{mrpc_path}"', unset=("dataset.data_files", "dataset.label_names")
    )


@pytest.fixture(scope="module")
def single_text_run(store, tiny_checkpoint) -> Any:
    """A single-sentence task: the paraphrase data read as one text column."""
    return train(store, tiny_checkpoint, 'dataset.text_columns=["sentence1"]')


def client(store: Store) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(store.uri)


def logged_models_of(store: Store, result: Any) -> list[Any]:
    found = client(store).search_logged_models(experiment_ids=[result.tracked.experiment_id])
    return [model for model in found if model.source_run_id == result.run_id]


def validation_rows(n: int = 8) -> Any:
    import pandas as pd

    return pd.read_csv(DATA / "validation.csv").head(n)


def by_hand(model_dir: Path, *texts: list[str]) -> tuple[list[str], list[float]]:
    """What the saved model says about `texts`, computed here: label names and their probability."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    with torch.no_grad():
        logits = model(**tokenizer(*texts, truncation=True, padding=True, return_tensors="pt")).logits
    scores, ids = torch.softmax(logits, dim=-1).max(dim=-1)
    return [model.config.id2label[i] for i in ids.tolist()], scores.tolist()


def predict_pairs(model_uri: str, rows: Any) -> Any:
    import mlflow
    import pandas as pd

    pairs = pd.DataFrame({"text": rows["sentence1"], "text_pair": rows["sentence2"]})
    return mlflow.pyfunc.load_model(model_uri).predict(pairs)


# ---- a Logged Model of its run, linked to its final evaluation ---------------------------------


@pytest.mark.parametrize("runner", RUNNERS)
def test_each_runner_logs_one_model_named_model_of_its_run(store, runs, runner):
    result = runs[runner]

    [logged] = logged_models_of(store, result)

    assert logged.name == "model"
    assert logged.source_run_id == result.run_id
    assert logged.experiment_id == result.tracked.experiment_id
    assert result.model_uri == f"models:/{logged.model_id}"
    assert logged.model_id.startswith("m-")


@pytest.mark.parametrize("runner", RUNNERS)
def test_the_model_is_linked_to_the_runs_final_evaluation(store, runs, runner):
    result = runs[runner]
    [logged] = logged_models_of(store, result)

    linked = {metric.key: metric for metric in logged.metrics}

    # The final evaluation, under its stored names, with the values the runner reported.
    for name, value in result.eval_metrics.items():
        stored = "eval/" + name.removeprefix("eval_")
        assert stored in linked, f"{stored} not linked to the model; linked: {sorted(linked)}"
        assert linked[stored].value == pytest.approx(value)
        assert linked[stored].step == result.steps == STEPS
        assert linked[stored].run_id == result.run_id
    assert {"eval/loss", "eval/accuracy", "eval/f1"} <= set(linked)


@pytest.mark.parametrize("runner", RUNNERS)
def test_the_model_is_a_text_classification_model_with_signature_and_example(runs, runner):
    import mlflow

    info = mlflow.models.get_model_info(runs[runner].model_uri)

    assert info.flavors["transformers"]["task"] == "text-classification"
    assert "python_function" in info.flavors
    assert info.signature.inputs.input_names() == ["text", "text_pair"]
    assert info.signature.outputs.input_names() == ["label", "score"]
    assert info.saved_input_example_info is not None
    assert info.metadata["xp.label_names"] == list(CSV_LABELS)
    assert info.metadata["xp.text_columns"] == ["sentence1", "sentence2"]


# ---- loading it back ------------------------------------------------------------------------------


@pytest.mark.parametrize("runner", RUNNERS)
def test_pyfunc_predicts_label_names_for_sentence_pairs(runs, runner):
    result = runs[runner]
    rows = validation_rows()

    predicted = predict_pairs(result.model_uri, rows)

    labels, scores = by_hand(result.model_dir, rows["sentence1"].tolist(), rows["sentence2"].tolist())
    assert set(labels) <= set(CSV_LABELS)  # the dataset's names, not the Hub default LABEL_0/LABEL_1
    # The logged model is the trained model: the same answer, row by row, as its saved copy.
    assert predicted["label"].tolist() == labels
    assert predicted["score"].tolist() == pytest.approx(scores, abs=1e-5)


@pytest.mark.parametrize("runner", RUNNERS)
def test_the_runs_model_loads_as_runs_uri_and_as_a_transformers_pipeline(runs, runner):
    import mlflow
    from transformers import TextClassificationPipeline

    result = runs[runner]
    rows = validation_rows(2)
    expected = predict_pairs(result.model_uri, rows)

    # runs:/<run id>/model: the name MLflow users know, resolved to the run's Logged Model
    assert predict_pairs(f"runs:/{result.run_id}/model", rows)["label"].tolist() == expected["label"].tolist()
    pipeline = mlflow.transformers.load_model(result.model_uri)
    assert isinstance(pipeline, TextClassificationPipeline)
    answer = pipeline({"text": rows["sentence1"][0], "text_pair": rows["sentence2"][0]})
    answer = answer[0] if isinstance(answer, list) else answer
    assert answer["label"] == expected["label"][0]
    assert pipeline.model.config.id2label == dict(enumerate(CSV_LABELS))


def test_mrpc_models_answer_with_the_hubs_label_names(mrpc_run, mrpc_path):
    import pandas as pd

    rows = pd.read_parquet(mrpc_path / "validation.parquet").head(8)

    predicted = predict_pairs(mrpc_run.model_uri, rows)

    labels, scores = by_hand(mrpc_run.model_dir, rows["sentence1"].tolist(), rows["sentence2"].tolist())
    assert set(predicted["label"]) <= set(MRPC_LABELS)
    assert predicted["label"].tolist() == labels
    assert predicted["score"].tolist() == pytest.approx(scores, abs=1e-5)
    assert json.loads((mrpc_run.model_dir / "xp.json").read_text())["label_names"] == list(MRPC_LABELS)


def test_a_single_text_model_takes_a_plain_list_of_sentences(single_text_run):
    import mlflow

    rows = validation_rows(4)
    sentences = rows["sentence1"].tolist()

    predicted = mlflow.pyfunc.load_model(single_text_run.model_uri).predict(sentences)

    labels, scores = by_hand(single_text_run.model_dir, sentences)
    assert set(labels) <= set(CSV_LABELS)
    assert predicted["label"].tolist() == labels
    assert predicted["score"].tolist() == pytest.approx(scores, abs=1e-5)
    inputs = mlflow.models.get_model_info(single_text_run.model_uri).signature.inputs
    assert not inputs.has_input_names()  # one unnamed string column: a list of sentences


# ---- the Model Registry ---------------------------------------------------------------------------


def test_register_as_adds_a_registry_version_per_run(store, runs):
    versions = client(store).search_model_versions(f"name='{REGISTERED}'")

    # Each run adds the next version, pointing at its own Logged Model.
    assert {int(v.version): v.run_id for v in versions} == {i + 1: runs[r].run_id for i, r in enumerate(RUNNERS)}
    assert {int(v.version): v.source for v in versions} == {i + 1: runs[r].model_uri for i, r in enumerate(RUNNERS)}
    assert [runs[r].registered_model for r in RUNNERS] == [f"{REGISTERED}/{i + 1}" for i in range(len(RUNNERS))]
    rows = validation_rows(4)
    first = predict_pairs(f"models:/{REGISTERED}/1", rows)
    assert first["score"].tolist() == pytest.approx(
        predict_pairs(runs["loop"].model_uri, rows)["score"].tolist(), abs=1e-6
    )


def test_without_register_as_nothing_is_registered(store, single_text_run):
    assert single_text_run.registered_model is None
    assert single_text_run.model_uri.startswith("models:/m-")
    registered = client(store).search_model_versions(f"run_id='{single_text_run.run_id}'")
    assert not registered


# ---- the plain copy on disk, and what the Python API hands back -------------------------------------


@pytest.mark.parametrize("runner", RUNNERS)
def test_the_on_disk_copy_stays_loadable_with_from_pretrained(store, runs, runner):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    result = runs[runner]
    assert result.model_dir == store.folder / "outputs" / result.tracked.run_name / "model"

    model = AutoModelForSequenceClassification.from_pretrained(result.model_dir)
    AutoTokenizer.from_pretrained(result.model_dir)

    assert model.config.id2label == dict(enumerate(CSV_LABELS))
    card = json.loads((result.model_dir / "xp.json").read_text())
    assert card["text_columns"] == ["sentence1", "sentence2"]
    assert card["label_names"] == list(CSV_LABELS)


def test_run_result_says_where_the_run_and_its_model_are(store, runs):
    result = runs["loop"]
    run = client(store).get_run(result.run_id)

    assert re.fullmatch(r"[0-9a-f]{32}", result.run_id)
    assert result.tracked.run_id == result.run_id
    assert result.tracked.run_name == run.info.run_name
    assert result.tracked.experiment_id == run.info.experiment_id
    assert result.tracked.experiment_name == "quickstart"
    assert result.tracked.tracking_uri == store.uri
    assert result.tracked.run_url == (
        f"http://127.0.0.1:5000/#/experiments/{run.info.experiment_id}"
        f"/runs/{result.run_id}?workflowType=machine_learning"
    )
    assert re.fullmatch(r"models:/m-[0-9a-f]{32}", result.model_uri)
    assert result.registered_model == f"{REGISTERED}/1"
    assert result.output_dir == store.folder / "outputs" / run.info.run_name
    assert result.output_dir.is_dir()
    assert run.info.status == "FINISHED"


def test_the_python_api_leaves_mlflows_own_default_store_alone(tmp_path, monkeypatch, tiny_checkpoint):
    """A notebook that never chose a store still has MLflow's default after `tracker.run`."""
    import mlflow

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    set_before = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(None)
    default = mlflow.get_tracking_uri()
    try:
        (tmp_path / "store").mkdir()
        train(
            Store(tmp_path, sqlite_store(tmp_path / "store")),
            tiny_checkpoint,
            "runner.max_steps=1",
            "runner.save_model=false",
        )

        assert not mlflow.is_tracking_uri_set()
        assert mlflow.get_tracking_uri() == default
    finally:
        mlflow.set_tracking_uri(set_before)


def test_a_store_named_by_the_environment_stays_the_environments(tmp_path, monkeypatch, tiny_checkpoint):
    """After `tracker.run`, MLflow still follows MLFLOW_TRACKING_URI: it has not kept the store as
    its own choice, which would outlive a change of the variable."""
    import mlflow

    monkeypatch.chdir(tmp_path)
    set_before = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(None)
    try:
        (tmp_path / "store").mkdir()
        store = sqlite_store(tmp_path / "store")
        monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
        import tracker

        tracker.run(tracker.load(QUICKSTART, [*quickstart_overrides(tiny_checkpoint, tmp_path), "runner.max_steps=1"]))

        assert os.environ["MLFLOW_TRACKING_URI"] == store
        monkeypatch.delenv("MLFLOW_TRACKING_URI")
        assert not mlflow.is_tracking_uri_set()
    finally:
        mlflow.set_tracking_uri(set_before)


# ---- register_as needs a model to register, and a name that fits in a URI ---------------------------

BAD_REGISTRATIONS = {
    "without save_model": (["runner.save_model=false"], "set save_model = true in [runner]"),
    "with tracking off": (["runner.save_model=true", "tracking.enabled=false"], "needs tracking"),
    "with a / in the name": (
        ['tracking.register_as="team/model"', "runner.save_model=true"],
        '"team/model" cannot be a registered model name',
    ),
}


@pytest.mark.parametrize("case", BAD_REGISTRATIONS)
def test_impossible_registrations_stop_before_any_run(tmp_path, tiny_checkpoint, case):
    overrides, message = BAD_REGISTRATIONS[case]
    store = sqlite_store(tmp_path)
    options = [*quickstart_overrides(tiny_checkpoint, tmp_path, store), 'tracking.register_as="paraphrase"', *overrides]

    done = subprocess.run(
        xp_command("run", str(QUICKSTART), *[p for o in options for p in ("--set", o)]),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 2, done.stderr
    assert f"{QUICKSTART}: [tracking] register_as: " in done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "mlflow.db").exists()  # no store opened, so no run created
    assert not (tmp_path / "outputs").exists()

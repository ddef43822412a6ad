"""Named-entity recognition end to end, on the CoNLL-2003 slice the repository ships and the real
MiniLM: a short run on every runner finds entities the all-`O` baseline misses; the same weights
score the same on every runner and on two processes; the scores are tracked under their names;
the test split's predictions are sentences with their tags and entities; a bad file stops
`xp validate --data` with its file and line."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.experiment_files import run_in_process
from tests.experiment_files import xp_offline as xp
from tests.mlflow_helpers import runs_in, sqlite_store
from tracker import tomlwrite
from tracker.cli import main

CONLL = Path(__file__).resolve().parent / "data" / "conll2003"
RUNNERS = ("trainer", "loop", "accelerate")
# The short run on every runner, and on the loop with every sub-token of a training word tagged.
SHORT_RUNS = {
    **{runner: {"runner": {"use": runner}} for runner in RUNNERS},
    "label_all_tokens": {"task": {"label_all_tokens": True}},
}
ENTITY_TYPES = ("LOC", "MISC", "ORG", "PER")


def ner_experiment(folder: Path, checkpoint: Path, **changes: dict) -> Path:
    """The course's NER recipe shrunk: 24 steps of 16 sentences at a high rate, one evaluation."""
    document = {
        "experiment": {"seed": 0, "output_dir": str(folder / "outputs")},
        "task": {"use": "token_classification"},
        "dataset": {"use": "conll", "path": str(CONLL), "max_rows": {"eval": 80, "test": 40}},
        "tokenizer": {"use": "auto"},
        "collator": {"use": "dynamic_padding"},
        "model": {"use": "auto", "checkpoint": str(checkpoint)},
        "optimizer": {"use": "adamw", "lr": 5e-4},
        "scheduler": {"use": "linear"},
        "metrics": {"use": ["seqeval"]},
        "runner": {"use": "loop", "max_steps": 24, "batch_size": 16, "logging_steps": 4, "progress_bar": False},
        "hardware": {"device": "cpu"},
        "tracking": {"enabled": False},
    }
    for section, keys in changes.items():
        document[section] = {**document.get(section, {}), **keys}
    path = folder / "ner.toml"
    path.write_text(tomlwrite.dumps(document), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def short_runs(tmp_path_factory, minilm_path):
    results = {}
    for name, changes in SHORT_RUNS.items():
        folder = tmp_path_factory.mktemp(f"ner-{name}")
        results[name] = run_in_process(ner_experiment(folder, minilm_path, **changes))
    return results


@pytest.mark.parametrize("run", SHORT_RUNS)
def test_a_short_run_finds_entities_the_all_o_baseline_misses(short_runs, run):
    result = short_runs[run]
    scores = result.eval_metrics
    assert set(scores) >= {"eval_f1", "eval_precision", "eval_recall", "eval_accuracy"}
    assert {f"eval_f1_{name}" for name in ENTITY_TYPES} <= set(scores)
    assert scores["eval_f1"] > 0.2, scores  # the baseline, "O" for every word, finds no entity: F1 0
    diagnosis = (result.output_dir / "diagnosis.txt").read_text(encoding="utf-8")
    assert 'trivial baseline (always "O" (no entity)): eval/f1 0.0000' in diagnosis
    assert set(result.test_metrics) >= {"test_f1", "test_f1_PER"}


@pytest.mark.parametrize("run", SHORT_RUNS)
def test_the_test_predictions_are_sentences_with_a_tag_per_word_and_their_entities(short_runs, run):
    with short_runs[run].predictions_path.open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 40
    assert list(rows[0]) == ["id", "source", "words", "tags", "entities"]
    found = 0
    for row in rows:
        file, line = row["source"].rsplit(":", 1)
        assert Path(file) == CONLL / "test.txt" and int(line) >= 1
        words, tags = row["words"].split(" "), row["tags"].split(" ")
        assert len(words) == len(tags)
        for entity in json.loads(row["entities"]):
            found += 1
            assert entity["type"] in ENTITY_TYPES
            assert entity["words"] == " ".join(words[entity["start"] : entity["end"]])
            assert tags[entity["start"]] == f"B-{entity['type']}"
            assert 0 < entity["score"] <= 1
    assert found > 10


def test_an_entity_types_f1_is_a_sweeps_metric_and_stops_its_trials_early(tmp_path, minilm_path):
    """A rate too small to change a prediction: no evaluation improves on the first, so early
    stopping on F1 of persons ends each trial at its second evaluation, 4 steps of 12."""
    from mlflow import MlflowClient

    store = sqlite_store(tmp_path)
    path = ner_experiment(
        tmp_path,
        minilm_path,
        runner={
            "max_steps": 12,
            "eval_strategy": "steps",
            "eval_steps": 2,
            "metric_for_best": "f1_PER",
            "early_stopping_patience": 1,
            "predict": False,
        },
        optimizer={"lr": 1e-12},
        tracking={"enabled": True, "uri": store, "system_metrics": False},
        sweep={"method": "grid", "study": "ner", "space": {"optimizer.lr": [1e-12, 2e-12]}},
    )
    done = xp(tmp_path, "sweep", str(path))
    assert done.returncode == 0, done.stderr[-4000:]
    runs = runs_in(store)
    [parent] = [run for run in runs if run.data.tags.get("xp.sweep") == "parent"]
    trials = [run for run in runs if run.data.tags.get("xp.sweep") == "trial"]
    assert parent.data.params["sweep.metric"] == "eval_f1_PER"
    assert "best/f1_PER" in parent.data.metrics
    client = MlflowClient(store)
    for trial in trials:
        assert [point.step for point in client.get_metric_history(trial.info.run_id, "eval/f1_PER")] == [2, 4]


def test_the_same_weights_score_the_same_on_every_runner_and_on_two_processes(tmp_path, minilm_path):
    """A step at a rate too small to change a prediction: every runner, and two processes (which
    pad the last batch and per-token rows to gather them), score the pretrained weights alike."""
    scores = {}
    for runner in RUNNERS:
        folder = tmp_path / runner
        folder.mkdir()
        path = ner_experiment(folder, minilm_path, runner={"use": runner, "max_steps": 1}, optimizer={"lr": 1e-12})
        scores[runner] = run_in_process(path).eval_metrics
    store = sqlite_store(tmp_path)
    path = ner_experiment(
        tmp_path,
        minilm_path,
        runner={"use": "accelerate", "max_steps": 1, "batch_size": 8},
        optimizer={"lr": 1e-12},
        tracking={"enabled": True, "uri": store, "system_metrics": False},
    )
    done = xp(tmp_path, "run", "--processes", "2", str(path))
    assert done.returncode == 0, done.stderr[-4000:]
    [run] = runs_in(store)
    names = ("f1", "precision", "recall", "accuracy", *(f"f1_{name}" for name in ENTITY_TYPES))
    for runner in RUNNERS:
        for name in names:
            assert scores[runner][f"eval_{name}"] == pytest.approx(scores["loop"][f"eval_{name}"], abs=1e-9), (
                runner,
                name,
            )
            assert run.data.metrics[f"eval/{name}"] == pytest.approx(scores["loop"][f"eval_{name}"], abs=1e-9), name


@pytest.fixture(scope="module")
def tracked(tmp_path_factory, minilm_path):
    """A tracked run that evaluates twice, keeps the weights best by F1 of persons and logs its model."""
    folder = tmp_path_factory.mktemp("tracked-ner")
    store = sqlite_store(folder)
    path = ner_experiment(
        folder,
        minilm_path,
        runner={"eval_strategy": "steps", "eval_steps": 12, "metric_for_best": "f1_PER", "save_model": True},
        tracking={"enabled": True, "uri": store, "system_metrics": False},
    )
    done = xp(folder, "run", str(path))
    assert done.returncode == 0, done.stderr[-4000:]
    [run] = runs_in(store)
    return folder, store, run, done.stderr


def test_a_tracked_run_logs_every_score_by_name_and_ranks_by_an_entity_types_f1(tracked):
    _, store, run, summary = tracked
    assert run.info.status == "FINISHED"
    assert re.search(r"^result +eval/f1_PER \d\.\d{4} after 24 steps", summary, re.M), summary
    for prefix in ("eval", "test"):
        for name in ("f1", "precision", "recall", "accuracy", *(f"f1_{t}" for t in ENTITY_TYPES)):
            assert f"{prefix}/{name}" in run.data.metrics, (prefix, name)
    assert run.data.params["task.use"] == "token_classification"
    assert "predictions.csv" in {Path(p).name for p in _artifacts(store, run)}


def _artifacts(store: str, run) -> list[str]:
    from mlflow import MlflowClient

    return [item.path for item in MlflowClient(store).list_artifacts(run.info.run_id)]


SENTENCES = ["John Smith flew to Paris with Acme Corp. on Monday.", "Angela Merkel met Emmanuel Macron in Berlin", ""]


def predicted(folder: Path, store: str, run, name: str, rows: list[dict], output: str = "jsonl") -> list[dict]:
    table = folder / f"{name}.jsonl"
    table.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    out = folder / f"{name}.out.{output}"
    done = xp(folder, "predict", run.info.run_id, "--uri", store, "-i", table.name, "-o", out.name)
    assert done.returncode == 0, done.stderr[-4000:]
    if output == "csv":
        with out.open(newline="", encoding="utf-8") as file:
            return list(csv.DictReader(file))
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def test_xp_predict_finds_entities_in_raw_text_with_offsets_that_slice_it(tracked):
    folder, store, run, _ = tracked
    rows = predicted(folder, store, run, "text", [{"text": sentence} for sentence in SENTENCES])
    assert [row["text"] for row in rows] == SENTENCES
    found = 0
    for row in rows:
        assert len(row["words"].split()) == len(row["tags"].split())
        for entity in row["entities"]:  # a list of records in JSON Lines
            found += 1
            assert entity["type"] in ENTITY_TYPES
            assert row["text"][entity["start"] : entity["end"]] == entity["text"]
    assert found >= 2
    assert rows[2]["entities"] == []  # an empty row has no words, and no entity
    # "Corp." is two words to BERT's pre-tokenizer, as to the pipeline
    assert rows[0]["words"] == "John Smith flew to Paris with Acme Corp . on Monday ."


def test_xp_predict_reads_token_lists_as_their_words_joined_by_spaces(tracked):
    folder, store, run, _ = tracked
    words = [["Angela", "Merkel", "met", "Emmanuel", "Macron", "in", "Berlin"]]
    [listed] = predicted(folder, store, run, "tokens", [{"tokens": row} for row in words])
    [text] = predicted(folder, store, run, "joined", [{"text": " ".join(row)} for row in words])
    assert listed["tags"] == text["tags"] and listed["entities"] == text["entities"]
    # CSV holds the lists as JSON text: the input's words and the entities found
    [as_csv] = predicted(folder, store, run, "tokens_csv", [{"tokens": row} for row in words], output="csv")
    assert json.loads(as_csv["tokens"]) == words[0]
    assert json.loads(as_csv["entities"]) == listed["entities"] and as_csv["tags"] == listed["tags"]


def test_the_mlflow_model_reloads_and_finds_the_entities_xp_predict_finds(tracked):
    import mlflow

    folder, store, run, _ = tracked
    rows = predicted(folder, store, run, "compare", [{"text": sentence} for sentence in SENTENCES[:2]])
    expected = [row["entities"] for row in rows]
    [output] = run.outputs.model_outputs
    uri = f"models:/{output.model_id}"
    mlflow.set_tracking_uri(store)
    try:
        # pyfunc answers with each row's entity types, as MLflow's flavor reduces the pipeline's output
        types = mlflow.pyfunc.load_model(uri).predict(SENTENCES[:2])
        assert types == [",".join(entity["type"] for entity in row) for row in expected]
        # the pipeline itself: the same entities, at the same characters
        pipeline = mlflow.transformers.load_model(uri)
        entities = [pipeline(sentence, aggregation_strategy="first") for sentence in SENTENCES[:2]]
    finally:
        mlflow.set_tracking_uri(None)
    assert [[(e["entity_group"], e["start"], e["end"]) for e in row] for row in entities] == [
        [(e["type"], e["start"], e["end"]) for e in row] for row in expected
    ]


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"runner": {"metric_for_best": "f1PER"}}, '[runner] metric_for_best: "f1PER" is not a metric'),
        ({"metrics": {"use": ["accuracy"]}}, "[metrics.accuracy]: scores one class per row"),
        ({"task": {"use": "sequence_classification"}}, 'token tags need [task] use = "token_classification"'),
    ],
)
def test_what_does_not_fit_token_classification_is_refused_before_training(tmp_path, minilm_path, change, says):
    path = ner_experiment(tmp_path, minilm_path, **change)
    result = CliRunner().invoke(main, ["validate", "--data", str(path)])
    assert result.exit_code == 2, result.output
    assert says in result.output


def test_an_entity_type_only_the_validation_file_has_stops_validate_with_its_file_and_line(tmp_path, minilm_path):
    data = tmp_path / "conll"
    data.mkdir()
    (data / "train.txt").write_text("John\tB-PER\nSmith\tI-PER\n\nParis\tB-LOC\n", encoding="utf-8")
    (data / "valid.txt").write_text("Ann\tB-PER\n\nAcme\tB-ORG\nsold\tO\n", encoding="utf-8")
    path = ner_experiment(tmp_path, minilm_path, dataset={"path": str(data), "max_rows": None})
    result = CliRunner().invoke(main, ["validate", "--data", str(path)])
    assert result.exit_code == 2, result.output
    assert f"[dataset] path: {data / 'valid.txt'}:3: the entity type ORG is in the validation split" in result.output


def test_a_sentence_too_long_for_the_model_stops_validate_unless_truncation_is_asked_for(tmp_path, tiny_checkpoint):
    data = tmp_path / "conll"
    data.mkdir()
    long = "".join(f"word{i}\tO\n" for i in range(150))  # the tiny BERT takes 128 sub-tokens
    (data / "train.txt").write_text("John\tB-PER\n\n" + long, encoding="utf-8")
    (data / "valid.txt").write_text("Ann\tB-PER\n", encoding="utf-8")
    path = ner_experiment(tmp_path, tiny_checkpoint, dataset={"path": str(data), "max_rows": None})
    result = CliRunner().invoke(main, ["validate", "--data", str(path)])
    assert result.exit_code == 2, result.output
    assert f"[tokenizer] max_length: {data / 'train.txt'}:3: 150 words are more than 128 sub-tokens" in result.output

    truncating = ner_experiment(
        tmp_path,
        tiny_checkpoint,
        dataset={"path": str(data), "max_rows": None},
        task={"truncate_long_sentences": True},
        runner={"max_steps": 1},
    )
    result = CliRunner().invoke(main, ["validate", "--data", str(truncating)])
    assert result.exit_code == 0, result.output
    done = xp(tmp_path, "run", str(truncating))
    assert done.returncode == 0, done.stderr[-4000:]
    assert "truncate_long_sentences: 1 sentence cut," in done.stderr

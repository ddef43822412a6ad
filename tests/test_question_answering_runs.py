"""Extractive question answering end to end, on the SQuAD 2.0 slice the repository ships (and a
SQuAD 1.1 file made from it) and the real MiniLM, with windows short enough that long contexts
take several: every runner trains and scores with the official SQuAD scores; the same weights
score the same on every runner and on two processes; each evaluation's predictions are kept in
the official format; `xp predict` and the reloaded MLflow model give the same answers."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.experiment_files import run_in_process
from tests.experiment_files import xp_offline as xp
from tests.mlflow_helpers import runs_in, sqlite_store
from tracker import tomlwrite
from tracker.api import load
from tracker.registry import load_registry

SQUAD = Path(__file__).resolve().parent / "data" / "squad" / "small.json"
RUNNERS = ("trainer", "loop", "accelerate")
SCORES = ("exact_match", "f1")
BY_KIND = ("HasAns_exact_match", "HasAns_f1", "NoAns_exact_match", "NoAns_f1")


def squad_v1(folder: Path) -> Path:
    """The slice as SQuAD 1.1 has it: the answerable questions only, no `is_impossible`."""
    document = json.loads(SQUAD.read_text(encoding="utf-8"))
    for article in document["data"]:
        for paragraph in article["paragraphs"]:
            paragraph["qas"] = [
                {key: value for key, value in question.items() if key not in ("is_impossible", "plausible_answers")}
                for question in paragraph["qas"]
                if not question.get("is_impossible")
            ]
    document["version"] = "1.1"
    path = folder / "small-v1.1.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def qa_experiment(folder: Path, checkpoint: Path, squad_file: Path = SQUAD, **changes: dict) -> Path:
    """The course's QA recipe shrunk: windows of 96 tokens sharing 32 (the slice's contexts take
    one to four), a quarter of the contexts held out for validation, 6 steps of 8 windows.
    `changes` are merged into its sections; a key given as None is left out."""
    document = {
        "experiment": {"seed": 0, "output_dir": str(folder / "outputs")},
        "task": {"use": "question_answering", "doc_stride": 32, "allow_no_answer": squad_file == SQUAD},
        "dataset": {
            "use": "squad",
            "data_files": {"train": str(squad_file)},
            "validation_fraction": 0.25,
        },
        "tokenizer": {"use": "auto", "max_length": 96},
        "collator": {"use": "dynamic_padding"},
        "model": {"use": "auto", "checkpoint": str(checkpoint)},
        "optimizer": {"use": "adamw", "lr": 3e-4},
        "scheduler": {"use": "linear"},
        "metrics": {"use": ["squad"]},
        "runner": {"use": "loop", "max_steps": 6, "batch_size": 8, "logging_steps": 2, "progress_bar": False},
        "hardware": {"device": "cpu"},
        "tracking": {"enabled": False},
    }
    for section, keys in changes.items():  # a key given as None is left out
        merged = {**document.get(section, {}), **keys}
        document[section] = {key: value for key, value in merged.items() if value is not None}
    path = folder / "qa.toml"
    path.write_text(tomlwrite.dumps(document), encoding="utf-8")
    return path


def held_out_ids(path: Path) -> set[str]:
    """The ids of the questions the experiment validates on, as the squad plugin holds them out."""
    registry = load_registry()
    experiment = load(path, (), registry)
    from tracker.recipe import Builder, load_data

    data = load_data(experiment, registry, Builder(experiment, registry))
    return set(data.splits["eval"]["id"])


# One short run per runner on the SQuAD 2.0 slice, and one on the loop with the SQuAD 1.1 file.
SHORT_RUNS = (*RUNNERS, "v1.1")


@pytest.fixture(scope="module")
def short_runs(tmp_path_factory, minilm_path):
    results = {}
    for name in SHORT_RUNS:
        folder = tmp_path_factory.mktemp(f"qa-{name}")
        if name == "v1.1":
            path = qa_experiment(folder, minilm_path, squad_v1(folder))
        else:
            path = qa_experiment(folder, minilm_path, runner={"use": name})
        results[name] = (path, run_in_process(path))
    return results


@pytest.mark.parametrize("run", SHORT_RUNS)
def test_squad_files_train_on_every_runner_and_are_scored_as_the_official_script_scores(short_runs, run):
    _, result = short_runs[run]
    scores = result.eval_metrics
    expected = {f"eval_{name}" for name in SCORES} | ({f"eval_{name}" for name in BY_KIND} if run != "v1.1" else set())
    assert set(scores) - {"eval_loss"} == expected
    assert scores["eval_loss"] > 0  # validation windows have targets too: a loss to watch
    for name in expected:
        assert 0 <= scores[name] <= 100, (name, scores[name])
    # Exact match counts whole questions: each is a multiple of 100 / questions.
    assert result.steps == 6


@pytest.mark.parametrize("run", SHORT_RUNS)
def test_each_evaluation_keeps_its_predictions_in_the_official_format_for_every_evaluated_question(short_runs, run):
    path, result = short_runs[run]
    folder = result.output_dir / "evaluations" / "step-6"
    official = json.loads((folder / "predictions.json").read_text(encoding="utf-8"))
    assert set(official) == held_out_ids(path)
    assert all(isinstance(answer, str) for answer in official.values())
    with (folder / "predictions.csv").open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert [row["id"] for row in rows] == list(official)
    contexts = {}
    for article in json.loads(SQUAD.read_text(encoding="utf-8"))["data"]:
        for paragraph in article["paragraphs"]:
            contexts |= {question["id"]: paragraph["context"] for question in paragraph["qas"]}
    for row in rows:
        start, end = int(row["start"]), int(row["end"])
        assert row["answer"] == official[row["id"]]
        if row["answer"]:  # the characters of the context the answer spans
            assert contexts[row["id"]][start:end] == row["answer"]
        else:
            assert (start, end) == (-1, -1)
        assert 0 <= float(row["score"]) <= 1


def test_the_same_weights_score_the_same_on_every_runner_and_on_two_processes(tmp_path, minilm_path):
    """A step at a rate too small to change an answer: every runner, and two processes (which pad
    the last batch and the windows' logits to gather them), score each question once, alike."""
    scores = {}
    for runner in RUNNERS:
        folder = tmp_path / runner
        folder.mkdir()
        path = qa_experiment(folder, minilm_path, runner={"use": runner, "max_steps": 1}, optimizer={"lr": 1e-12})
        scores[runner] = run_in_process(path).eval_metrics
    store = sqlite_store(tmp_path)
    path = qa_experiment(
        tmp_path,
        minilm_path,
        runner={"use": "accelerate", "max_steps": 1, "batch_size": 4},
        optimizer={"lr": 1e-12},
        tracking={"enabled": True, "uri": store, "system_metrics": False},
    )
    done = xp(tmp_path, "run", "--processes", "2", str(path))
    assert done.returncode == 0, done.stderr[-4000:]
    [run] = runs_in(store)
    for runner in RUNNERS:
        for name in (*SCORES, *BY_KIND):
            assert scores[runner][f"eval_{name}"] == pytest.approx(scores["loop"][f"eval_{name}"], abs=1e-9), (
                runner,
                name,
            )
            assert run.data.metrics[f"eval/{name}"] == pytest.approx(scores["loop"][f"eval_{name}"], abs=1e-9), name


@pytest.fixture(scope="module")
def tracked(tmp_path_factory, minilm_path):
    """A tracked run that evaluates twice, keeps the weights best by F1 and logs its model."""
    folder = tmp_path_factory.mktemp("tracked-qa")
    store = sqlite_store(folder)
    path = qa_experiment(
        folder,
        minilm_path,
        runner={
            "eval_strategy": "steps",
            "eval_steps": 3,
            "metric_for_best": "f1",
            "early_stopping_patience": 2,
            "save_model": True,
        },
        tracking={"enabled": True, "uri": store, "system_metrics": False},
    )
    done = xp(folder, "run", str(path))
    assert done.returncode == 0, done.stderr[-4000:]
    [run] = runs_in(store)
    return folder, store, run, done.stderr, path


def test_a_tracked_run_logs_the_squad_scores_and_each_evaluations_predictions(tracked):
    from mlflow import MlflowClient

    _, store, run, summary, path = tracked
    client = MlflowClient(store)
    for name in (*SCORES, *BY_KIND):
        assert [point.step for point in client.get_metric_history(run.info.run_id, f"eval/{name}")] == [3, 6]
    assert f"eval/f1 {run.data.metrics['eval/f1']:.4f}" in summary  # the result line ranks by F1
    logged = {item.path for item in client.list_artifacts(run.info.run_id, "evaluations")}
    assert logged == {"evaluations/step-3", "evaluations/step-6"}
    local = Path(client.download_artifacts(run.info.run_id, "evaluations/step-6/predictions.json"))
    assert set(json.loads(local.read_text(encoding="utf-8"))) == held_out_ids(path)


def test_xp_predict_and_the_reloaded_mlflow_model_give_the_same_answers(tracked):
    import mlflow
    import pandas as pd

    folder, store, run, _, _ = tracked
    document = json.loads(SQUAD.read_text(encoding="utf-8"))
    rows = [
        {"question": question["question"], "context": paragraph["context"]}
        for article in document["data"]
        for paragraph in article["paragraphs"][:3]
        for question in paragraph["qas"][:2]
    ]
    table = folder / "questions.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    done = xp(folder, "predict", run.info.run_id, "--input", str(table), "--uri", store)
    assert done.returncode == 0, done.stderr[-4000:]
    predicted = pd.read_csv(folder / "questions.predictions.csv", keep_default_na=False)
    assert list(predicted.columns) == ["question", "context", "answer", "score", "start", "end"]
    for row in predicted.itertuples():
        if row.answer:
            assert row.context[row.start : row.end] == row.answer
    mlflow.set_tracking_uri(store)
    reloaded = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model").predict(pd.DataFrame(rows))
    assert reloaded["answer"].tolist() == predicted["answer"].tolist()
    assert reloaded["start"].tolist() == predicted["start"].tolist()
    assert reloaded["score"].tolist() == pytest.approx(predicted["score"].tolist(), abs=1e-6)


@pytest.mark.parametrize("file_format", ["json", "parquet"])
def test_the_hubs_flattened_layout_reads_through_the_hf_plugin(tmp_path, minilm_path, file_format):
    """The hub's `squad_v2` rows (`id`, `question`, `context`, `answers` as lists of texts and
    starts) in JSON Lines or Parquet files: checked, windowed and ready to train as SQuAD's JSON."""
    import pandas as pd
    from click.testing import CliRunner

    from tracker.cli import main
    from xp_plugins.squad_files import read_squad

    rows = pd.DataFrame(read_squad(SQUAD).rows)
    files = {}
    for split, part in (("train", rows.iloc[:60]), ("validation", rows.iloc[60:])):
        files[split] = str(tmp_path / f"{split}.{'jsonl' if file_format == 'json' else 'parquet'}")
        if file_format == "json":
            part.to_json(files[split], orient="records", lines=True)
        else:
            part.to_parquet(files[split])
    path = qa_experiment(
        tmp_path,
        minilm_path,
        dataset={
            "use": "hf",
            "path": file_format,
            "data_files": files,
            "text_columns": ["question", "context"],
            "label_column": "answers",
            "validation_fraction": None,
        },
    )

    result = CliRunner().invoke(main, ["validate", "--data", str(path)])

    assert result.exit_code == 0, result.output
    assert "for 60 training questions" in result.output and "for 24 validation questions" in result.output

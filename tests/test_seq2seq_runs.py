"""Sequence-to-sequence generation end to end, on the SciTLDR slice the repository ships (JSON
Lines: a source that is a list of sentences, one reference per training paper, several per
validation paper): an encoder-decoder warm-started from a tiny BERT, and any AutoModelForSeq2SeqLM
(a tiny BART), train on every runner; each evaluation generates for every validation row, is
scored with ROUGE against every reference (as the rouge-score package scores the logged samples)
and logs its samples as an MLflow table; the test split gets a predictions file; `xp predict` and
the reloaded MLflow model generate alike, with the run's decoding settings or the caller's."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.experiment_files import run_in_process, write_changed
from tests.experiment_files import xp_offline as xp
from tests.mlflow_helpers import runs_in, sqlite_store

SCITLDR = Path(__file__).resolve().parent / "data" / "scitldr"
RUNNERS = ("trainer", "loop", "accelerate")
ROUGE = ("rouge1", "rouge2", "rougeL", "rougeLsum")
EVAL_ROWS = 12


def seq2seq_experiment(folder: Path, checkpoint: Path, **changes: dict) -> Path:
    """Summarize SciTLDR abstracts with an encoder-decoder warm-started from `checkpoint`: sources
    cut at 64 tokens, targets at 24, greedy generation of 2 to 12 tokens, 12 validation papers
    (all in the samples table) and 6 test papers, 16 steps at a high rate (1e-2) so that a tiny model
    writes words. `changes` are merged into its sections; a key given as None is left out."""
    document = {
        "experiment": {"seed": 0, "output_dir": str(folder / "outputs")},
        "task": {
            "use": "seq2seq",
            "max_target_length": 24,
            "max_new_tokens": 12,
            "min_new_tokens": 2,
            "samples": EVAL_ROWS,
        },
        "dataset": {
            "use": "hf",
            "path": str(SCITLDR),
            "text_columns": ["source"],
            "label_column": "target",
            "test_split": "test",
            "max_rows": {"train": 48, "eval": EVAL_ROWS, "test": 6},
        },
        "tokenizer": {"use": "auto", "max_length": 64},
        "collator": {"use": "dynamic_padding"},
        "model": {"use": "encoder_decoder", "checkpoint": str(checkpoint)},
        "optimizer": {"use": "adamw", "lr": 1e-2},
        "scheduler": {"use": "constant"},
        "metrics": {"use": ["rouge"]},
        "runner": {
            "use": "loop",
            "max_steps": 16,
            "batch_size": 8,
            "logging_steps": 4,
            "eval_strategy": "steps",
            "eval_steps": 8,
            "progress_bar": False,
        },
        "hardware": {"device": "cpu"},
        "tracking": {"enabled": False},
    }
    return write_changed(folder / "seq2seq.toml", document, changes)


@pytest.fixture(scope="module")
def tiny_bart(tmp_path_factory, minilm_path) -> Path:
    """A tiny random BART (d_model 32, one layer each side) with MiniLM's WordPiece tokenizer:
    any AutoModelForSeq2SeqLM checkpoint, as a person's would be."""
    import torch
    from transformers import AutoTokenizer, BartConfig, BartForConditionalGeneration

    folder = tmp_path_factory.mktemp("tiny-bart")
    tokenizer = AutoTokenizer.from_pretrained(minilm_path, model_max_length=128)
    tokenizer.save_pretrained(folder)
    config = BartConfig(
        vocab_size=len(tokenizer),
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        decoder_start_token_id=tokenizer.cls_token_id,
        forced_eos_token_id=tokenizer.sep_token_id,
    )
    torch.manual_seed(0)
    BartForConditionalGeneration(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def short_runs(tmp_path_factory, tiny_checkpoint, tiny_bart):
    """One short run per runner with the warm-started encoder-decoder, one with the tiny BART."""
    results = {}
    for name in (*RUNNERS, "bart"):
        folder = tmp_path_factory.mktemp(f"seq2seq-{name}")
        if name == "bart":
            path = seq2seq_experiment(folder, tiny_bart, model={"use": "auto", "checkpoint": str(tiny_bart)})
        else:
            path = seq2seq_experiment(folder, tiny_checkpoint, runner={"use": name})
        results[name] = run_in_process(path)
    return results


def rouge_of(samples: dict) -> dict[str, float]:
    """The samples' ROUGE as the rouge-score package scores it itself: the mean over rows of the
    best F-measure among a row's references, in percent; rougeLsum reads a sentence a line."""
    import re

    from rouge_score import rouge_scorer

    def lines(text: str) -> str:
        return "\n".join(part for part in re.split(r"(?<=[.!?])\s+", text.strip()) if part)

    scorer = rouge_scorer.RougeScorer(list(ROUGE), use_stemmer=True)
    columns = samples["columns"]
    rows = [dict(zip(columns, row, strict=True)) for row in samples["data"]]
    scores = [
        scorer.score_multi([lines(ref) for ref in row["reference"].split("\n\n")], lines(row["generation"]))
        for row in rows
    ]
    return {name: 100 * sum(score[name].fmeasure for score in scores) / len(scores) for name in ROUGE}


@pytest.mark.parametrize("run", [*RUNNERS, "bart"])
def test_every_runner_generates_for_each_validation_row_and_scores_rouge_as_the_rouge_score_package(short_runs, run):
    result = short_runs[run]
    assert set(result.eval_metrics) == {"eval_loss", *(f"eval_{name}" for name in ROUGE)}
    assert result.eval_metrics["eval_loss"] > 0
    for step in (8, 16):
        samples = json.loads((result.output_dir / "evaluations" / f"step-{step}" / "samples.json").read_text())
        assert samples["columns"] == ["input", "reference", "generation"]
        assert len(samples["data"]) == EVAL_ROWS  # samples = every validation row here
        # Several references of a validation paper are all shown, and scored against.
        assert any("\n\n" in row[1] for row in samples["data"])
    final = json.loads((result.output_dir / "evaluations" / "step-16" / "samples.json").read_text())
    assert any(row[2] for row in final["data"]), "a tiny model trained 16 steps at 1e-2 writes words"
    expected = rouge_of(final)
    for name in ROUGE:
        assert result.eval_metrics[f"eval_{name}"] == pytest.approx(expected[name], abs=1e-9), name
    assert expected["rouge1"] > 0


@pytest.mark.parametrize("run", RUNNERS)
def test_the_test_split_gets_a_generation_per_paper_and_its_rouge(short_runs, run):
    result = short_runs[run]
    with result.predictions_path.open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 6
    assert list(rows[0]) == ["id", "generation"]
    assert set(result.test_metrics) == {"test_loss", *(f"test_{name}" for name in ROUGE)}


def test_every_runner_generates_the_same_with_the_same_weights(tmp_path, tiny_checkpoint):
    """A step too small to change anything: the warm-started model generates the same on each runner."""
    generations, scores = {}, {}
    for runner in RUNNERS:
        folder = tmp_path / runner
        folder.mkdir()
        path = seq2seq_experiment(
            folder,
            tiny_checkpoint,
            runner={"use": runner, "max_steps": 1, "eval_steps": 1},
            optimizer={"lr": 1e-12},
        )
        result = run_in_process(path)
        generations[runner] = json.loads((result.output_dir / "evaluations" / "step-1" / "samples.json").read_text())
        scores[runner] = result.eval_metrics
    for runner in RUNNERS:
        assert generations[runner] == generations["loop"], runner
        for name in ROUGE:
            assert scores[runner][f"eval_{name}"] == pytest.approx(scores["loop"][f"eval_{name}"], abs=1e-9), runner
        # The loss is the same model's, but the Trainer weighs the last, smaller batch as a whole one.
        assert scores[runner]["eval_loss"] == pytest.approx(scores["loop"]["eval_loss"], rel=1e-3), runner


def test_two_processes_generate_each_validation_row_once_as_one_does(tmp_path, tiny_checkpoint):
    """A step too small to change anything, on one process and on two (each generating for its
    share of the rows, gathered in order, the last batch's padding dropped): the same ROUGE."""
    one = tmp_path / "one"
    one.mkdir()
    single = run_in_process(
        seq2seq_experiment(one, tiny_checkpoint, runner={"max_steps": 1, "eval_steps": 1}, optimizer={"lr": 1e-12})
    )
    store = sqlite_store(tmp_path)
    path = seq2seq_experiment(
        tmp_path,
        tiny_checkpoint,
        runner={"use": "accelerate", "max_steps": 1, "eval_steps": 1, "batch_size": 4},
        optimizer={"lr": 1e-12},
        tracking={"enabled": True, "uri": store, "system_metrics": False},
    )
    done = xp(tmp_path, "run", "--processes", "2", str(path))
    assert done.returncode == 0, done.stderr[-4000:]
    [run] = runs_in(store)
    for name in ROUGE:
        assert run.data.metrics[f"eval/{name}"] == pytest.approx(single.eval_metrics[f"eval_{name}"], abs=1e-9), name


@pytest.fixture(scope="module")
def tracked(tmp_path_factory, tiny_checkpoint):
    """A tracked run that saves its model, with beam search in evaluation."""
    folder = tmp_path_factory.mktemp("tracked-seq2seq")
    store = sqlite_store(folder)
    path = seq2seq_experiment(
        folder,
        tiny_checkpoint,
        task={"num_beams": 2, "samples": 4},
        runner={"save_model": True},
        tracking={"enabled": True, "uri": store, "system_metrics": False},
    )
    done = xp(folder, "run", str(path))
    assert done.returncode == 0, done.stderr[-4000:]
    [run] = runs_in(store)
    return folder, store, run


def test_a_tracked_run_logs_rouge_and_each_evaluations_samples_as_an_mlflow_table(tracked):
    from mlflow import MlflowClient

    _, store, run = tracked
    client = MlflowClient(store)
    for name in ("loss", *ROUGE):
        assert [point.step for point in client.get_metric_history(run.info.run_id, f"eval/{name}")] == [8, 16]
    tables = json.loads(run.data.tags["mlflow.loggedArtifacts"])
    assert tables == [
        {"path": "evaluations/step-8/samples.json", "type": "table"},
        {"path": "evaluations/step-16/samples.json", "type": "table"},
    ]
    local = Path(client.download_artifacts(run.info.run_id, "evaluations/step-16/samples.json"))
    assert len(json.loads(local.read_text(encoding="utf-8"))["data"]) == 4


def test_xp_predict_and_the_reloaded_mlflow_model_generate_alike_with_the_runs_or_the_callers_decoding(tracked):
    import mlflow
    import pandas as pd

    folder, store, run = tracked
    rows = [json.loads(line) for line in (SCITLDR / "test.jsonl").read_text(encoding="utf-8").splitlines()[:3]]
    table = folder / "papers.jsonl"
    pd.DataFrame([{"source": row["source"]} for row in rows]).to_json(table, orient="records", lines=True)
    done = xp(folder, "predict", run.info.run_id, "--input", str(table), "--uri", store)
    assert done.returncode == 0, done.stderr[-4000:]
    predicted = pd.read_json(folder / "papers.predictions.jsonl", lines=True)
    assert list(predicted.columns) == ["source", "generation"]
    mlflow.set_tracking_uri(store)
    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    frame = pd.DataFrame([{"source": row["source"]} for row in rows])
    assert model.predict(frame)["generation"].tolist() == predicted["generation"].tolist()
    # The caller's decoding: fewer new tokens, on the command line and as the model's params.
    short = folder / "short.jsonl"
    done = xp(
        folder, "predict", run.info.run_id, "--input", str(table), "-o", str(short), "--uri", store,
        "--set", "task.max_new_tokens=2", "--set", "task.num_beams=1",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    shortened = pd.read_json(short, lines=True)["generation"].tolist()
    assert model.predict(frame, params={"max_new_tokens": 2, "num_beams": 1})["generation"].tolist() == shortened
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder / "outputs" / run.info.run_name / "model")
    assert all(len(tokenizer(text, add_special_tokens=False)["input_ids"]) <= 2 for text in shortened)


def test_a_decoding_setting_that_cannot_work_is_refused_on_the_command_line(tracked):
    folder, store, run = tracked
    table = folder / "one.csv"
    table.write_text("source\nA short abstract.\n", encoding="utf-8")
    done = xp(folder, "predict", run.info.run_id, "--input", str(table), "--uri", store, "--set", "task.num_beams=0")
    assert done.returncode == 2
    assert "--set task.num_beams: expected an integer >= 1, got 0" in done.stderr
    done = xp(folder, "predict", run.info.run_id, "--input", str(table), "--uri", store, "--set", "runner.lr=1")
    assert done.returncode == 2
    assert "only keys of the [task] section" in done.stderr


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"task": {"num_beams": 0}}, "[task] num_beams: expected an integer >= 1, got 0"),
        ({"task": {"max_new_tokens": 0}}, "[task] max_new_tokens: expected an integer >= 1, got 0"),
        ({"task": {"min_new_tokens": 20}}, "[task] min_new_tokens: 20 is more than max_new_tokens = 12"),
        ({"dataset": {"label_column": "summary"}}, "train split has no column(s) summary; available: source"),
        ({"metrics": {"use": ["accuracy"]}, "task": {}}, "scores one class per row (sequence classification)"),
    ],
)
def test_what_cannot_work_is_a_problem_before_training(tmp_path, tiny_checkpoint, changes, expected):
    path = seq2seq_experiment(tmp_path, tiny_checkpoint, **changes)
    done = xp(tmp_path, "run", str(path))
    assert done.returncode == 2, done.stderr[-4000:]
    assert expected in done.stderr
    assert not (tmp_path / "outputs").exists() or not any((tmp_path / "outputs").iterdir())

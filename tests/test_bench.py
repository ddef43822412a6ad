"""The benchmark scripts keep working: every suite runs in its smoke form (a tiny model, a few
steps, one repetition) on the MRPC slice the tests ship, and the report renders every row of
BENCHMARKS.md. No timing is checked here; the figures live in BENCHMARKS.md, measured by
`python bench/run.py` on the full data, which it finds only through XP_DATA (or --data)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The benchmarks' own data setting is not the tests': they run on the slice, whatever the caller set.
WITHOUT_XP_DATA = {name: value for name, value in os.environ.items() if name != "XP_DATA"}


def bench(*args: str, **env: str) -> subprocess.CompletedProcess:
    """`python bench/run.py ARGS` from the repository root, XP_DATA only as given here."""
    return subprocess.run(
        [sys.executable, "bench/run.py", *args],
        cwd=ROOT,
        env={**WITHOUT_XP_DATA, **env},
        capture_output=True,
        text=True,
        timeout=1200,
    )


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory, tiny_checkpoint, mrpc_path) -> Path:
    results = tmp_path_factory.mktemp("bench-results")
    finished = bench(
        "all", "--smoke", "--checkpoint", str(tiny_checkpoint), "--data", str(mrpc_path), "--results", str(results)
    )
    assert finished.returncode == 0, finished.stderr[-4000:]
    return results


def test_without_the_full_data_a_suite_says_where_it_looked_and_exits_2(tmp_path):
    results = tmp_path / "results"
    empty = tmp_path / "data"
    empty.mkdir()
    for args, env, looked in (
        (("speed",), {}, "XP_DATA is not set and no --data is given"),
        (("speed",), {"XP_DATA": str(empty)}, f"in {empty / 'glue' / 'mrpc'} (XP_DATA={empty})"),
        (("padding", "--data", str(empty)), {}, f"in {empty} (--data {empty})"),
    ):
        done = bench(*args, "--results", str(results), **env)
        assert done.returncode == 2, done.stderr
        [line] = done.stderr.splitlines()  # one line, no traceback
        assert line.startswith("bench: the benchmarks need the full GLUE MRPC data") and looked in line, line
        assert "Set XP_DATA to the folder holding glue/mrpc" in line and "or pass --data" in line
        assert done.stdout == "" and not results.exists()  # stopped before anything ran


def test_every_suite_writes_its_record(smoke_results):
    assert sorted(p.stem for p in smoke_results.glob("*.json")) == [
        "accuracy",
        "first_step",
        "grouping",
        "lora",
        "ner",
        "ner_accuracy",
        "padding",
        "predict",
        "profile",
        "pruning",
        "qa",
        "qa_accuracy",
        "scaleout",
        "speed",
        "startup",
        "summarization",
        "summarization_accuracy",
    ]


def test_the_probe_sees_every_optimizer_step_of_every_variant(smoke_results):
    speed = json.loads((smoke_results / "speed.json").read_text())
    [repetition] = speed["runs"]
    assert set(repetition) == {
        "hand_loop",
        "xp_loop",
        "xp_loop_same_kernel",
        "xp_accelerate",
        "hand_trainer",
        "xp_trainer",
        "xp_loop_log_every_step",
        "xp_loop_tracking_off",
    }
    for name, record in repetition.items():
        assert record["steps"] == speed["steps"], name
        assert record["launch_to_first_step"] > 0 and record["peak_rss_mib"] > 0, name
    assert repetition["hand_loop"]["map_seconds"] > 0  # the script tokenizes on every run: Dataset.map was timed


def test_with_the_same_kernel_xp_loop_and_the_hand_written_loop_compute_the_same_model(smoke_results):
    """Same seed, same data order, same initialisation, same updates: the comparison is like for
    like. xp's default fused AdamW differs from the script only by rounding."""
    [repetition] = json.loads((smoke_results / "speed.json").read_text())["runs"]
    hand, same_kernel = repetition["hand_loop"], repetition["xp_loop_same_kernel"]
    assert (same_kernel["accuracy"], same_kernel["f1"]) == (hand["accuracy"], hand["f1"])


def test_token_classification_by_xp_and_by_the_course_s_loop_reaches_the_same_f1(smoke_results):
    """The chapter 7 loop written by hand and xp's loop runner on the same recipe: same seed, batches
    and initial head, the same updates with the same AdamW kernel, so the same entity F1."""
    ner = json.loads((smoke_results / "ner.json").read_text())
    [repetition] = ner["runs"]
    assert set(repetition) == {"hand_ner", "xp_ner", "xp_ner_same_kernel"}
    for name, record in repetition.items():
        assert record["steps"] == ner["steps"], name
    assert repetition["xp_ner_same_kernel"]["f1"] == repetition["hand_ner"]["f1"]
    accuracy = json.loads((smoke_results / "ner_accuracy.json").read_text())
    assert set(accuracy["entity_f1"]) == {"validation", "test"}


def test_question_answering_by_xp_and_by_the_course_s_loop_reaches_the_same_scores(smoke_results):
    """The chapter 7 loop written by hand and xp's loop runner on the same train.json and dev.json:
    same seed, batches and initial head; with the same AdamW kernel, the same exact match and F1."""
    qa = json.loads((smoke_results / "qa.json").read_text())
    [repetition] = qa["runs"]
    assert set(repetition) == {"hand_qa", "xp_qa", "xp_qa_same_kernel"}
    for name, record in repetition.items():
        assert record["steps"] == qa["steps"], name
    [scores] = qa["scores"]
    assert scores["xp_qa_same_kernel"] == scores["hand_qa"]
    accuracy = json.loads((smoke_results / "qa_accuracy.json").read_text())
    assert set(accuracy["scores"]) == {"exact_match", "f1"}


def test_a_lora_adapter_trains_and_saves_a_small_share_of_what_full_fine_tuning_does(smoke_results):
    lora = json.loads((smoke_results / "lora.json").read_text())
    full, adapter = lora["variants"]["xp_full"], lora["variants"]["xp_lora"]
    assert full["trainable_parameters"] == full["parameters"]
    assert 0 < lora["lora / full"]["trainable_parameters"] < 0.05
    assert 0 < lora["lora / full"]["saved_model"] < 0.05
    assert {"accuracy", "f1", "seconds_per_step", "peak_rss_mib"} <= set(adapter)


def test_a_second_run_reuses_the_tokenized_data(smoke_results):
    startup = json.loads((smoke_results / "startup.json").read_text())
    [runs] = startup["runs"]
    assert runs["xp_loop_second"]["map_seconds"] < runs["xp_loop_first"]["map_seconds"]


def test_length_grouping_pads_less(smoke_results):
    padding = json.loads((smoke_results / "padding.json").read_text())
    assert padding["grouped"]["pad_fraction"] < padding["shuffled"]["pad_fraction"]


def test_the_profile_finds_every_phase_of_a_step(smoke_results):
    phases = json.loads((smoke_results / "profile.json").read_text())["seconds_per_step"]
    assert {
        "data loading and collation",
        "forward",
        "backward",
        "optimizer (clip, step, schedule, zero_grad)",
        "logging",
    } <= set(phases)
    assert all(seconds >= 0 for name, seconds in phases.items() if not name.startswith("other"))


def test_the_pruning_studies_try_the_same_trials_and_the_pruned_one_trains_no_more(smoke_results):
    """Same seed, random sampler: both studies draw the same values, so the pruner is the only
    difference; a pruned trial stops at an evaluation, so no trial trains longer with it."""
    pruning = json.loads((smoke_results / "pruning.json").read_text())
    none, median = pruning["studies"]["none"], pruning["studies"]["median"]
    assert pruning["same_configurations"]
    for study in (none, median):
        assert len(study["trials"]) == pruning["trials"] and study["failed"] == 0
        assert study["complete"] + study["pruned"] == pruning["trials"]
        for trial in study["trials"]:
            assert trial["run_state_tag"] == trial["state"]  # the MLflow tag says what Optuna says
            assert trial["steps"] > 0 and trial["evaluations"] >= 1 and trial["rows_trained"] > 0
    for plain, pruned in zip(none["trials"], median["trials"], strict=True):
        assert pruned["rows_trained"] <= plain["rows_trained"] and pruned["steps"] <= plain["steps"]
    assert 0.0 <= pruning["compute_saved"] < 1.0


def test_the_scaleout_suite_measures_both_pairs_in_every_repetition(smoke_results):
    scaleout = json.loads((smoke_results / "scaleout.json").read_text())
    for rep in scaleout["runs"]:
        assert rep["local"]["per_hour"] > 0 and rep["ray"]["per_hour"] > 0
        assert rep["processes_1"]["rows_per_second"] > 0 and rep["processes_2"]["rows_per_second"] > 0
    assert len(scaleout["experiments_per_hour"]["ray / local"]["ratios"]) == scaleout["reps"]


def test_xp_predict_and_the_pipeline_script_predict_the_same_and_are_stamped_alike(smoke_results):
    """Same model, same rows, same batches: `xp predict` (through the run, and from the folder) and
    the course's `pipeline(...)` give every row the same label; the probe stamps each one's first batch."""
    predict = json.loads((smoke_results / "predict.json").read_text())
    [repetition] = predict["runs"]
    assert set(repetition) == {"xp_predict", "xp_predict_folder", "pipeline"}
    for name, record in repetition.items():
        assert 0 < record["launch_to_first_forward"] < record["wall_seconds"], name
    for name, agreed in predict["agreement"].items():
        assert agreed["rows"] == 100 and agreed["same_label"] == agreed["rows"], name  # the slice's validation split
        assert agreed["max_score_difference"] < 1e-4, name


def test_the_report_renders_every_row(smoke_results):
    report = subprocess.run(
        [sys.executable, "bench/report.py", str(smoke_results)], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    for figure in (
        "runner `loop` / hand-written loop",
        "runner `trainer` / plain `Trainer` script",
        "runner `accelerate` / hand-written loop",
        "tracking overhead",
        "first optimizer step",
        "peak resident memory",
        "tokenization time, second run",
        "MRPC validation after",
        "length-grouped batching",
        "`xp --help`",
        "`xp plugins`",
        "`xp validate experiments/*.toml`",
        "pad tokens / all tokens",
        "forward",
        "backward",
        "rows trained on, all trials",
        "optimizer steps, all trials",
        "wall time of `xp sweep`",
        "trials complete / pruned",
        "best eval/f1",
        "compute saved",
        "`xp run --executor ray` / `xp run` one by one",
        "time to the first optimizer step alone",
        "`xp run --processes 2` / one process",
        "the first batch predicted: `xp predict RUN`",
        "`xp predict FOLDER` (the run's model folder, no store)",
        "launch to exit (MRPC validation, batches of 32, written out): `xp predict RUN`",
        "peak resident memory: `xp predict RUN`",
        "token classification, time per step",
        "token classification, time to the first optimizer step",
        "entity F1 on the validation file after those steps",
        "entity F1 of `experiments/conll2003_ner.toml`",
        "question answering, time per step",
        "question answering, time to the first optimizer step",
        "exact match / F1 on the validation questions after those steps",
        "exact match / F1 of `experiments/squad_qa.toml`",
        "parameters trained",
        "saved model (weights, bytes)",
    ):
        assert figure in report, figure


def test_summarization_by_xp_and_by_the_course_s_loop_reaches_the_same_rouge(smoke_results):
    """The chapter 7 summarization loop written by hand and xp's loop runner on the same files:
    same seed, batches and initial cross-attention; with the same AdamW kernel, the same
    generations, so the same ROUGE."""
    summarization = json.loads((smoke_results / "summarization.json").read_text())
    [repetition] = summarization["runs"]
    assert set(repetition) == {"hand_summarization", "xp_summarization", "xp_summarization_same_kernel"}
    for name, record in repetition.items():
        assert record["steps"] == summarization["steps"], name
    [scores] = summarization["scores"]
    # Equal but for rounding: the script averages the papers' scores with numpy, xp adds them up.
    assert scores["xp_summarization_same_kernel"] == pytest.approx(scores["hand_summarization"], abs=1e-9)
    accuracy = json.loads((smoke_results / "summarization_accuracy.json").read_text())
    assert set(accuracy["scores"]) == {"rouge1", "rouge2", "rougeL", "rougeLsum"}

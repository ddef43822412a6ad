"""SQuAD-format JSON files as published, v1.1 and v2.0, read into the hub's flat rows (id, title,
context, question, answers as lists); a file whose structure is not SQuAD's is named with where."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from xp_plugins.squad_files import SquadError, looks_like_squad, read_squad

SLICE = Path(__file__).resolve().parents[1] / "data" / "squad" / "small.json"
CONTEXT = "Paris is the capital of France. It is on the Seine."


def question(id_: str = "q1", **changes: Any) -> dict[str, Any]:
    """An answerable question about CONTEXT, as v1.1 writes it (no is_impossible)."""
    return {
        "id": id_,
        "question": "What is the capital of France?",
        "answers": [{"text": "Paris", "answer_start": 0}],
    } | changes


def squad_file(folder: Path, *questions: dict[str, Any], version: str = "v1.1", name: str = "train.json") -> Path:
    """One article with one paragraph holding `questions`."""
    path = folder / name
    document = {
        "version": version,
        "data": [{"title": "Paris", "paragraphs": [{"context": CONTEXT, "qas": list(questions)}]}],
    }
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_the_shipped_slice_reads_as_the_readme_says():
    squad = read_squad(SLICE)
    assert squad.version == "v2.0"
    assert list(squad.rows) == ["id", "title", "context", "question", "answers"]
    assert all(len(column) == 84 for column in squad.rows.values())
    assert sum(not answers["text"] for answers in squad.rows["answers"]) == 42
    assert squad.has_unanswerable
    assert squad.rows["title"].count("Normans") == 33
    assert squad.rows["title"].count("Computational_complexity_theory") == 51
    assert len(set(squad.rows["context"])) == 12

    first = {column: values[0] for column, values in squad.rows.items()}
    assert first["id"] == "56dde0379a695914005b9636"
    assert first["title"] == "Normans"
    assert first["question"] == "What is the original meaning of the word Norman?"
    assert first["answers"] == {
        "text": ["Viking", "Norseman, Viking", "Norseman, Viking"],
        "answer_start": [341, 331, 331],
    }
    assert first["context"][341 : 341 + len("Viking")] == "Viking"


def test_an_unanswerable_question_has_empty_answers_and_its_plausible_answers_are_left_out():
    squad = read_squad(SLICE)
    # The slice's first impossible question: "plausible_answers" has ["Normans"] at 17, not kept.
    assert squad.rows["id"][2] == "5ad3ab70604f3c001a3feb89"
    assert squad.rows["question"][2] == "What name comes from the English words Normans/Normanz?"
    assert squad.rows["answers"][2] == {"text": [], "answer_start": []}


def test_rows_keep_the_files_order_of_articles_paragraphs_and_questions():
    document = json.loads(SLICE.read_text(encoding="utf-8"))
    in_file = [
        qa["id"] for article in document["data"] for paragraph in article["paragraphs"] for qa in paragraph["qas"]
    ]
    assert read_squad(SLICE).rows["id"] == in_file


def test_a_v1_1_file_needs_no_is_impossible(tmp_path):
    squad = read_squad(squad_file(tmp_path, question("q1"), question("q2", question="Where is Paris?")))
    assert squad.version == "v1.1"
    assert squad.rows == {
        "id": ["q1", "q2"],
        "title": ["Paris", "Paris"],
        "context": [CONTEXT, CONTEXT],
        "question": ["What is the capital of France?", "Where is Paris?"],
        "answers": [{"text": ["Paris"], "answer_start": [0]}] * 2,
    }
    assert not squad.has_unanswerable


def test_several_answers_to_a_question_are_kept_in_order_repeats_included(tmp_path):
    answers = [
        {"text": "the Seine", "answer_start": 42},
        {"text": "Seine", "answer_start": 46},
        {"text": "the Seine", "answer_start": 42},
    ]
    squad = read_squad(squad_file(tmp_path, question(answers=answers)))
    assert squad.rows["answers"] == [{"text": ["the Seine", "Seine", "the Seine"], "answer_start": [42, 46, 42]}]


def test_a_v2_0_file_marks_unanswerable_questions_with_is_impossible(tmp_path):
    unanswerable = question(
        "q2", is_impossible=True, answers=[], plausible_answers=[{"text": "Paris", "answer_start": 0}]
    )
    squad = read_squad(squad_file(tmp_path, question("q1", is_impossible=False), unanswerable, version="v2.0"))
    assert squad.version == "v2.0"
    assert squad.rows["answers"] == [{"text": ["Paris"], "answer_start": [0]}, {"text": [], "answer_start": []}]
    assert squad.has_unanswerable


def test_a_missing_title_or_version_reads_as_empty_or_none(tmp_path):
    path = tmp_path / "train.json"
    path.write_text(json.dumps({"data": [{"paragraphs": [{"context": CONTEXT, "qas": [question()]}]}]}))
    squad = read_squad(path)
    assert squad.version is None
    assert squad.rows["title"] == [""]


def test_a_byte_order_mark_is_not_part_of_the_json(tmp_path):
    path = squad_file(tmp_path, question())
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert read_squad(path).rows["id"] == ["q1"]


def test_json_that_does_not_parse_is_named_with_its_line_and_column(tmp_path):
    path = tmp_path / "train.json"
    path.write_text('{\n  "version": "v1.1",\n  "data": [,]\n}\n', encoding="utf-8")
    with pytest.raises(SquadError) as error:
        read_squad(path)
    assert str(error.value).startswith(f"{path}:3:12: not JSON (")


def test_a_file_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "train.json"
    path.write_bytes('{"data": [], "version": "café"}'.encode("latin-1"))
    with pytest.raises(SquadError, match="not UTF-8 text"):
        read_squad(path)


AT = "data[0].paragraphs[0].qas[0]"
Q1 = f'question "q1" ({AT})'


@pytest.mark.parametrize(
    ("document", "says"),
    [
        ([], 'expected an object with a "data" list at the top, got a list'),
        ({"version": "v1.1"}, 'no "data"'),
        ({"data": {"title": "Paris"}}, '"data": expected a list, got an object'),
        ({"version": 2, "data": []}, '"version": expected a string, got 2'),
        ({"data": ["Paris"]}, 'data[0]: expected an object, got "Paris"'),
        ({"data": [{"title": "Paris"}]}, 'data[0]: no "paragraphs"'),
        ({"data": [{"title": None, "paragraphs": []}]}, 'data[0]: "title": expected a string, got null'),
        ({"data": [{"paragraphs": [{"qas": []}]}]}, 'data[0].paragraphs[0]: no "context"'),
        ({"data": [{"paragraphs": [{"context": ["Paris"], "qas": []}]}]}, '"context": expected a string, got a list'),
        ({"data": [{"paragraphs": [{"context": CONTEXT}]}]}, 'data[0].paragraphs[0]: no "qas"'),
    ],
)
def test_an_article_or_paragraph_out_of_shape_is_named_by_its_position(tmp_path, document, says):
    path = tmp_path / "train.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(SquadError) as error:
        read_squad(path)
    assert str(error.value).startswith(f"{path}: ")
    assert says in str(error.value)


@pytest.mark.parametrize(
    ("qa", "says"),
    [
        ({"question": "What?", "answers": []}, f'{AT}: no "id"'),
        (question(id_=56), f'{AT}: "id": expected a string, got 56'),
        ("What is the capital?", f'{AT}: expected an object, got "What is the capital?"'),
        ({"id": "q1", "answers": []}, f'{Q1}: no "question"'),
        (question(answers=None), f'{Q1}: "answers": expected a list, got null'),
        (question(answers={"text": "Paris"}), f'{Q1}: "answers": expected a list, got an object'),
        (question(answers=["Paris"]), f'{Q1}: answers[0]: expected an object, got "Paris"'),
        (question(answers=[{"answer_start": 0}]), f'{Q1}: answers[0]: no "text"'),
        (question(answers=[{"text": "Paris"}]), f'{Q1}: answers[0]: no "answer_start"'),
        (
            question(answers=[{"text": "Paris", "answer_start": 0}, {"text": "Paris", "answer_start": "0"}]),
            f'{Q1}: answers[1]: "answer_start": expected an integer, got "0"',
        ),
        (question(answers=[{"text": "Paris", "answer_start": 0.0}]), '"answer_start": expected an integer, got 0.0'),
        (question(answers=[{"text": "Paris", "answer_start": True}]), '"answer_start": expected an integer, got true'),
        (question(answers=[{"text": "Paris", "answer_start": -5}]), '"answer_start": expected a character offset'),
        (question(is_impossible="no"), f'{Q1}: "is_impossible": expected true or false, got "no"'),
    ],
)
def test_a_question_out_of_shape_is_named_by_its_id_or_else_its_position(tmp_path, qa, says):
    path = squad_file(tmp_path, qa)
    with pytest.raises(SquadError) as error:
        read_squad(path)
    assert str(error.value).startswith(f"{path}: ")
    assert says in str(error.value)


def test_an_impossible_question_with_answers_is_a_problem_not_a_guess(tmp_path):
    path = squad_file(tmp_path, question(is_impossible=True), version="v2.0")
    with pytest.raises(SquadError) as error:
        read_squad(path)
    assert str(error.value) == (
        f'{path}: {Q1}: "is_impossible" is true but it has 1 answers; '
        'an unanswerable question\'s spans belong in "plausible_answers"'
    )


def test_a_possible_question_without_answers_is_a_problem_too(tmp_path):
    path = squad_file(tmp_path, question(is_impossible=False, answers=[]), version="v2.0")
    with pytest.raises(SquadError, match='"is_impossible" is false but "answers" is empty'):
        read_squad(path)


def test_looks_like_squad_knows_squad_files(tmp_path):
    assert looks_like_squad(SLICE)
    assert looks_like_squad(squad_file(tmp_path, question()))
    with_bom = squad_file(tmp_path, question(), name="bom.json")
    with_bom.write_bytes(b"\xef\xbb\xbf" + with_bom.read_bytes())
    assert looks_like_squad(with_bom)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        pytest.param("train.jsonl", '{"id": "q1", "question": "Why?", "context": "Because."}\n', id="jsonl"),
        pytest.param("train.json", '{"id": "q1"}\n{"id": "q2"}\n', id="json-lines-named-json"),
        pytest.param("train.csv", "id,question,context\nq1,Why?,Because.\n", id="csv"),
        pytest.param("train.json", '[{"id": "q1", "question": "Why?", "context": "Because."}]', id="a-list"),
        pytest.param("train.json", '{"data": []}', id="no-articles"),
        pytest.param("train.json", '{"data": [{"title": "Paris"}]}', id="no-paragraphs"),
        pytest.param("train.json", '{"version": "v1.1", "data": {"paragraphs": []}}', id="data-not-a-list"),
        pytest.param("train.json", "[" * 100_000, id="nested-deeper-than-python-recurses"),
    ],
)
def test_looks_like_squad_says_no_to_other_files_without_raising(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    assert not looks_like_squad(path)


def test_looks_like_squad_says_no_to_what_cannot_be_read(tmp_path):
    assert not looks_like_squad(tmp_path / "missing.json")
    (tmp_path / "folder.json").mkdir()
    assert not looks_like_squad(tmp_path / "folder.json")
    (tmp_path / "latin1.json").write_bytes('{"data": [{"title": "café", "paragraphs": []}]}'.encode("latin-1"))
    assert not looks_like_squad(tmp_path / "latin1.json")

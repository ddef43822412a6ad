"""Extractive question answering as the course teaches it: a context longer than the model read in
overlapping windows, each trained to point at the answer's tokens or at CLS; a question's answer
chosen over all its windows from the start and end logits, with SQuAD 2.0's null score when a
question may have no answer; every question checked before training; scores and the predictions
file as the official SQuAD scripts read them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.declared import data_problems_of
from tracker.errors import BuildError
from tracker.plugin import Outputs, TaskData
from xp_plugins.squad_metric import squad
from xp_plugins.tasks.answer_spans import Answer, SpanChoice
from xp_plugins.tasks.question_answering import question_answering
from xp_plugins.tasks.sequence_classification import SequenceClassification

QUESTION_AND_CONTEXT = ("question", "context")

# Ten words of one token each. With max_length 48 and the 8 tokens the question takes ([CLS] what
# hung in the mill ? [SEP]), a window holds 39 tokens of context and the next starts 23 later (16
# shared): window 1 holds the context's tokens 0-38, window 2 tokens 23-61, window 3 tokens 46-62.
# The answer's tokens, 40-42, lie whole in window 2 only.
FILLER = "the river ran past the old mill and the town"
LONG_QUESTION = "What hung in the mill?"
ANSWER = "Purple Velvet Lanterns"
LONG_CONTEXT = " ".join([FILLER] * 4) + f" {ANSWER} " + " ".join([FILLER] * 2) + "."
MAX_LENGTH, DOC_STRIDE = 48, 16

PARIS = "Paris is the capital of France. It is on the Seine."


def question(id_: str, context: str = PARIS, answer: str | None = "Paris", start: int | None = None) -> dict:
    """A row in the hub's SQuAD layout; `answer` None: unanswerable; `start` defaults to where the
    answer is in the context."""
    answers = (
        {"text": [], "answer_start": []}
        if answer is None
        else {"text": [answer], "answer_start": [context.index(answer) if start is None else start]}
    )
    return {"id": id_, "question": "What is it?", "context": context, "answers": answers}


def split_of(*rows: dict):
    from datasets import Dataset

    return Dataset.from_list(list(rows))


def read(task, **splits):
    """`read_targets` as the dataset plugins call it: answers in the `answers` column."""
    return task.read_targets(splits, ["answers"], None, text_columns=list(QUESTION_AND_CONTEXT))


@pytest.fixture(scope="module")
def tokenizer(minilm_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path)


@pytest.fixture(scope="module")
def two_questions(tokenizer):
    """A validation split of the long question and a short one about Paris, and its windows as
    `encode` gives them: three of the long question, then one of the short."""
    long_question = question("q-long", LONG_CONTEXT, ANSWER) | {"question": LONG_QUESTION}
    task, splits = read(question_answering(doc_stride=DOC_STRIDE), eval=split_of(long_question, question("q-paris")))
    encoded = task.encode(
        splits["eval"][:],
        tokenizer=tokenizer,
        text_columns=QUESTION_AND_CONTEXT,
        options={"max_length": MAX_LENGTH},
        split="eval",
    )
    return TaskData(splits, QUESTION_AND_CONTEXT, task), encoded


def token_position(tokenizer, input_ids: list[int], token: str) -> int:
    return tokenizer.convert_ids_to_tokens(input_ids).index(token)


# ---- windows ----------------------------------------------------------------------------------------


def test_a_long_context_is_read_in_overlapping_windows_each_pointing_at_the_answer_or_at_cls(two_questions, tokenizer):
    _, encoded = two_questions
    assert encoded["example_id"] == ["q-long", "q-long", "q-long", "q-paris"]
    assert [len(ids) for ids in encoded["input_ids"][:2]] == [MAX_LENGTH, MAX_LENGTH]
    starts, ends = encoded["start_positions"], encoded["end_positions"]

    # Window 2 holds the answer whole: its start and end are the answer's first and last tokens.
    answer_tokens = encoded["input_ids"][1][starts[1] : ends[1] + 1]
    assert tokenizer.decode(answer_tokens) == ANSWER.lower()
    # Windows 1 and 3 do not: they point at CLS, as if the question had no answer there.
    assert (starts[0], ends[0]) == (starts[2], ends[2]) == (0, 0)
    assert tokenizer.convert_ids_to_tokens(encoded["input_ids"][0])[0] == "[CLS]"

    # The windows share DOC_STRIDE tokens of context.
    first, second = ([span for span in encoded["offset_mapping"][window] if span is not None] for window in (0, 1))
    assert first[-DOC_STRIDE:] == second[:DOC_STRIDE]

    # Offsets are characters of the context for the context's tokens, None for the question's,
    # CLS and the separators: no answer can start or end there.
    sequence_of = [None, *[0] * 6, None, *[1] * 39, None]  # [CLS] question [SEP] context [SEP]
    offsets = encoded["offset_mapping"][1]
    assert [span is not None for span in offsets] == [sequence == 1 for sequence in sequence_of]
    start_char, end_char = offsets[starts[1]][0], offsets[ends[1]][1]
    assert LONG_CONTEXT[start_char:end_char] == ANSWER


def test_a_question_that_fits_is_one_window_whose_answer_tokens_spell_the_answer(two_questions, tokenizer):
    _, encoded = two_questions
    start, end = encoded["start_positions"][3], encoded["end_positions"][3]
    assert tokenizer.decode(encoded["input_ids"][3][start : end + 1]) == "paris"
    assert encoded["offset_mapping"][3][start] == (0, 5)


def test_a_test_split_without_answers_is_windowed_without_start_and_end_positions(tokenizer):
    task, splits = read(
        question_answering(doc_stride=DOC_STRIDE), train=split_of(question("q1")), test=split_of(question("t1"))
    )
    test = splits["test"].remove_columns("label").add_column("label", [None])
    encoded = task.encode(
        test[:], tokenizer=tokenizer, text_columns=QUESTION_AND_CONTEXT, options={"max_length": 48}, split="test"
    )
    assert "start_positions" not in encoded and "end_positions" not in encoded
    assert encoded["example_id"] == ["t1"]


# ---- choosing the answer ----------------------------------------------------------------------------


def test_each_question_gets_the_best_span_over_its_windows(two_questions, tokenizer):
    """Hand-made logits, flat but for the answer's first and last tokens in the long question's
    second window and "paris" in the short question's one window; padded with -100 to the widest
    window, as the runners gather them."""
    import torch
    from datasets import Dataset

    data, encoded = two_questions
    windows = len(encoded["input_ids"])
    start_logits, end_logits = torch.zeros(windows, MAX_LENGTH), torch.zeros(windows, MAX_LENGTH)
    for window, ids in enumerate(encoded["input_ids"]):
        start_logits[window, len(ids) :] = end_logits[window, len(ids) :] = -100
    second_window = encoded["input_ids"][1]
    start_logits[1, token_position(tokenizer, second_window, "purple")] = 6.0
    end_logits[1, token_position(tokenizer, second_window, "lanterns")] = 6.0
    paris = token_position(tokenizer, encoded["input_ids"][3], "paris")
    start_logits[3, paris] = end_logits[3, paris] = 6.0

    predictions, null_scores = data.task.decode((start_logits, end_logits))
    assert predictions.shape == (windows, MAX_LENGTH, 2)
    assert null_scores.tolist() == [0.0, 0.0, 0.0, 0.0]  # CLS's start and end logits
    per_question = data.task.per_row(
        Outputs(predictions.numpy(), null_scores.numpy(), None),
        data,
        "eval",
        Dataset.from_dict(dict(encoded)),
        tokenizer,
    )

    long_answer, paris_answer = per_question.predictions
    assert long_answer.text == ANSWER and LONG_CONTEXT[long_answer.start : long_answer.end] == ANSWER
    assert (paris_answer.text, paris_answer.start, paris_answer.end) == ("Paris", 0, 5)
    assert per_question.references == [[ANSWER], ["Paris"]]
    assert per_question.scores.tolist() == [long_answer.score, paris_answer.score]
    assert 0 < long_answer.score < 1  # its probability among the candidate spans


CONTEXT = "alpha bravo charlie delta"
# [CLS] a question token [SEP] alpha bravo charlie delta [SEP]
OFFSETS = [None, None, None, (0, 5), (6, 11), (12, 19), (20, 25), None]
ALPHA, BRAVO, CHARLIE, DELTA = 3, 4, 5, 6


def logits(**peaks: float) -> np.ndarray:
    """A window's start or end logits: 0 but at the positions named (cls=0, question=1, alpha=3, ...)."""
    positions = {"cls": 0, "question": 1, "alpha": ALPHA, "bravo": BRAVO, "charlie": CHARLIE, "delta": DELTA}
    values = np.zeros(len(OFFSETS))
    for name, value in peaks.items():
        values[positions[name]] = value
    return values


def choose(starts, ends, *, n_best=20, max_answer_length=30, allow_no_answer=False, threshold=0.0) -> Answer:
    return SpanChoice(n_best, max_answer_length, allow_no_answer, threshold).best_answer(
        CONTEXT, [(starts, ends, OFFSETS)]
    )


def test_a_span_that_ends_before_it_starts_is_never_chosen():
    answer = choose(logits(delta=10, alpha=5), logits(bravo=10, alpha=1))  # delta..bravo would score 20
    assert (answer.text, answer.start, answer.end) == ("alpha bravo", 0, 11)


def test_a_span_longer_than_max_answer_length_is_never_chosen():
    starts, ends = logits(alpha=10), logits(charlie=10, bravo=5)  # alpha..charlie: 3 tokens
    assert choose(starts, ends).text == "alpha bravo charlie"
    assert choose(starts, ends, max_answer_length=2).text == "alpha bravo"


@pytest.mark.parametrize("outside", ["cls", "question"])
def test_a_span_touching_a_token_outside_the_context_is_never_chosen(outside):
    assert choose(logits(**{outside: 10}, bravo=1), logits(charlie=10)).text == "bravo charlie"
    assert choose(logits(bravo=10), logits(**{outside: 10}, delta=1)).text == "bravo charlie delta"


def test_with_no_span_left_the_answer_is_empty():
    answer = choose(logits(delta=10), logits(alpha=10), n_best=1)
    assert (answer.text, answer.start, answer.end, answer.empty) == ("", -1, -1, True)


def test_the_null_score_is_the_lowest_cls_score_over_the_windows_and_wins_by_more_than_the_threshold():
    """The best span (bravo, in window 2) scores 4; CLS scores 10 in window 1 and 5 in window 2:
    the null score is 5, which beats the span by 1."""
    windows = [
        (logits(cls=5, alpha=1), logits(cls=5, alpha=1), OFFSETS),
        (logits(cls=3, bravo=2), logits(cls=2, bravo=2), OFFSETS),
    ]

    def answer(threshold: float, allow_no_answer: bool = True) -> Answer:
        return SpanChoice(20, 30, allow_no_answer, threshold).best_answer(CONTEXT, windows)

    no_answer = answer(0.0)
    assert (no_answer.text, no_answer.start, no_answer.end) == ("", -1, -1)
    assert 0 < no_answer.score < 1  # the null score's probability among the candidates
    # Above the gap of 1 (the lowest null score's; the highest, 10, would beat the span by 6): the span.
    assert answer(2.0).text == answer(1.0).text == "bravo"
    # Without allow_no_answer the null score is not a candidate.
    assert answer(0.0, allow_no_answer=False).text == "bravo"


# ---- reading the answers ----------------------------------------------------------------------------


def test_an_answer_start_that_does_not_point_at_the_answer_is_refused_with_the_question_named():
    with pytest.raises(BuildError) as raised:
        read(question_answering(), train=split_of(question("q1"), question("q-off", start=3)))
    assert raised.value.key == "label_column"
    assert raised.value.message.startswith("1 question of the training split cannot be trained on or scored")
    assert 'question "q-off": answer_start 3 points at "is is", not at its answer "Paris"' in raised.value.message
    assert "skip_bad_questions = true" in raised.value.message


BAD_QUESTIONS = [
    question("q1"),
    question("q1", answer="France"),  # the id again
    question("q-empty", context="  ", answer=None),
    question("q-none", answer=None),
    question("q2", answer="Seine"),
]


def test_repeated_ids_empty_contexts_and_questions_without_answers_are_refused_and_counted():
    with pytest.raises(BuildError) as raised:
        read(question_answering(), eval=split_of(*BAD_QUESTIONS))
    message = raised.value.message
    assert raised.value.key == "label_column"
    assert message.startswith("3 questions of the validation split cannot be trained on or scored")
    assert 'question "q1": its id is used by an earlier question' in message
    assert 'question "q-empty": its context is empty' in message
    assert 'question "q-none": it has no answer (set [task] allow_no_answer = true for SQuAD 2.0)' in message


def test_skip_bad_questions_leaves_them_out_and_counts_them():
    task, splits = read(question_answering(skip_bad_questions=True), train=split_of(*BAD_QUESTIONS))
    assert splits["train"]["id"] == ["q1", "q2"]
    assert splits["train"]["label"] == [
        {"text": ["Paris"], "answer_start": [0]},
        {"text": ["Seine"], "answer_start": [PARIS.index("Seine")]},
    ]
    assert task.skipped == (("train", 3),)


def test_with_allow_no_answer_a_question_without_answers_is_read_as_unanswerable():
    task, splits = read(
        question_answering(allow_no_answer=True), train=split_of(question("q1"), question("q2", answer=None))
    )
    assert splits["train"]["label"][1] == {"text": [], "answer_start": []}
    assert task.skipped == ()
    assert task.describe() == "answer spans (a question may have no answer)"


def test_the_hub_layout_and_the_squad_list_of_answers_read_the_same():
    hub = split_of(question("q1"), question("q2", answer="Seine"))
    listed = split_of(
        question("q1") | {"answers": [{"text": "Paris", "answer_start": 0}]},
        question("q2") | {"answers": [{"text": "Seine", "answer_start": PARIS.index("Seine")}]},
    )
    assert isinstance(listed[0]["answers"], list)
    _, from_hub = read(question_answering(), train=hub)
    _, from_list = read(question_answering(), train=listed)
    assert (
        from_hub["train"]["label"]
        == from_list["train"]["label"]
        == [
            {"text": ["Paris"], "answer_start": [0]},
            {"text": ["Seine"], "answer_start": [PARIS.index("Seine")]},
        ]
    )


def test_a_test_split_without_answers_is_read_as_unlabelled():
    task, splits = read(
        question_answering(),
        train=split_of(question("q1")),
        test=split_of(question("t1")).remove_columns("answers"),
    )
    assert splits["test"]["label"] == [None]
    assert not task.is_labelled(splits["test"])
    assert task.is_labelled(splits["train"])


def test_a_validation_split_without_answers_is_refused():
    with pytest.raises(BuildError, match='the validation split has no "answers" column of answers'):
        read(question_answering(), eval=split_of(question("q1")).remove_columns("answers"))


def test_data_without_an_id_column_is_refused():
    with pytest.raises(BuildError) as raised:
        read(question_answering(), train=split_of(question("q1")).remove_columns("id"))
    assert raised.value.key == "text_columns"
    assert 'the training split has no "id" column' in raised.value.message


# ---- scores and predictions -------------------------------------------------------------------------


def qa_data(**options) -> TaskData:
    """Data whose task answers questions (the splits stay empty), as a metric factory is given it."""
    return TaskData({}, QUESTION_AND_CONTEXT, question_answering(**options))


def test_the_squad_metric_follows_allow_no_answer_to_the_scripts_version():
    assert squad(qa_data()).version == "1.1"
    assert squad(qa_data(allow_no_answer=True)).version == "2.0"
    assert squad(qa_data()).greater_is_better is True


def test_squad_scores_answers_as_the_official_script():
    """Normalized, "the Normans" is "normans"; "in France" shares one of its two words with
    "France": precision 1/2, recall 1, F1 2/3."""
    predictions = [Answer("the Normans", 0, 11, 0.9), Answer("in France", 20, 29, 0.5)]
    scores = squad(qa_data()).compute(predictions, [["Normans"], ["France", "Normandy"]])
    assert scores == {"exact_match": 50.0, "f1": pytest.approx(100 * (1 + 2 / 3) / 2)}


def test_squad_2_scores_no_answer_right_only_for_an_unanswerable_question():
    predictions = [Answer("", -1, -1, 0.8), Answer("", -1, -1, 0.8)]
    scores = squad(qa_data(allow_no_answer=True)).compute(predictions, [[], ["Normans"]])
    assert scores == {
        "exact_match": 50.0,
        "f1": 50.0,
        "HasAns_exact_match": 0.0,
        "HasAns_f1": 0.0,
        "NoAns_exact_match": 100.0,
        "NoAns_f1": 100.0,
    }


def test_the_squad_metric_scores_only_question_answering():
    classes = TaskData({}, ("text",), SequenceClassification().with_labels(("no", "yes")))
    assert data_problems_of(squad, qa_data()) == {}
    assert data_problems_of(squad, classes) == {
        None: f"scores answer spans (question answering), but the task predicts {classes.task.describe()}"
    }


def test_the_predictions_file_maps_each_question_id_to_its_answer_text():
    task, splits = read(
        question_answering(allow_no_answer=True), eval=split_of(question("q1"), question("q2", answer=None))
    )
    data = TaskData(splits, QUESTION_AND_CONTEXT, task)
    outputs = Outputs([Answer("Paris", 0, 5, 0.9), Answer("", -1, -1, 0.7)], None, [["Paris"], []])
    files = task.evaluation_files(outputs, data, "eval")
    assert list(files) == ["predictions.json"]
    assert json.loads(files["predictions.json"]) == {"q1": "Paris", "q2": ""}


def test_prediction_columns_give_the_answer_its_score_and_characters():
    answers = [Answer("Paris", 0, 5, 0.9), Answer("", -1, -1, 0.25)]
    columns = question_answering().prediction_columns(answers, None, None, qa_data())
    assert columns == {"answer": ["Paris", ""], "score": ["0.900000", "0.250000"], "start": [0, -1], "end": [5, -1]}


def test_a_model_that_answers_nothing_is_seen_answering_nothing_to_every_question():
    references = [["Paris"], ["Seine"], ["France"], []]
    stats = question_answering(allow_no_answer=True).prediction_stats([Answer("", -1, -1, 1.0)] * 4, references)
    assert stats.class_shares == (1.0,)
    assert stats.label_shares == (0.25,)  # only the unanswerable question's references hold it
    assert stats.names == ("no answer",)
    assert stats.unit == "questions"


def test_the_baseline_answers_nothing_and_only_with_allow_no_answer():
    rows = split_of(question("q1"), question("q2", answer=None))
    task, splits = read(question_answering(allow_no_answer=True), eval=rows)
    baseline = task.baseline(TaskData(splits, QUESTION_AND_CONTEXT, task))
    assert baseline.described == "no answer"
    assert [answer.text for answer in baseline.predictions] == ["", ""]
    assert baseline.references == [["Paris"], []]
    assert question_answering().baseline(qa_data()) is None

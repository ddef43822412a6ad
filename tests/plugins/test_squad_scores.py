"""SQuAD scores: the numbers of the official v1.1 and v2.0 evaluation scripts, checked by hand on
small cases that name each rule, then against the scripts' own functions on random ones."""

import random

import pytest

from xp_plugins.squad_scores import exact_match, f1, normalize_answer, squad_scores, version_of

# --- The official scripts, as the oracle --------------------------------------------------------
#
# Copied verbatim, only to check against, from the repository huggingface/evaluate, licensed under
# the Apache License 2.0 (its LICENSE; the files carry no header of their own: they are the SQuAD
# authors' official scripts, which evaluate vendors), commit a7dd338386a4fae9a1767e05eb9ef9479513d9e8:
# - metrics/squad/compute_score.py, "Official evaluation script for v1.1 of the SQuAD dataset":
#   everything above its `if __name__ == "__main__":`;
# - metrics/squad_v2/compute_score.py, "Official evaluation script for SQuAD version 2.0": its
#   imports but numpy (used only by the plots), ARTICLES_REGEX, and make_qid_to_has_ans through
#   merge_eval. evaluate's copy reads answers as `qa["answers"]["text"]` (the `datasets` layout)
#   where the original reads `[a["text"] for a in qa["answers"]]`: the same texts.
# Kept as text and run each in a namespace of its own, so that the two scripts' functions of one
# name (normalize_answer) stay apart and no formatter or linter edits them.

OFFICIAL_V1_1_SOURCE = r'''
import argparse
import json
import re
import string
import sys
from collections import Counter


def normalize_answer(s):
    """Lower text and remove punctuation, articles and extra whitespace."""

    def remove_articles(text):
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def f1_score(prediction, ground_truth):
    prediction_tokens = normalize_answer(prediction).split()
    ground_truth_tokens = normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    f1 = (2 * precision * recall) / (precision + recall)
    return f1


def exact_match_score(prediction, ground_truth):
    return normalize_answer(prediction) == normalize_answer(ground_truth)


def metric_max_over_ground_truths(metric_fn, prediction, ground_truths):
    scores_for_ground_truths = []
    for ground_truth in ground_truths:
        score = metric_fn(prediction, ground_truth)
        scores_for_ground_truths.append(score)
    return max(scores_for_ground_truths)


def compute_score(dataset, predictions):
    f1 = exact_match = total = 0
    for article in dataset:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                total += 1
                if qa["id"] not in predictions:
                    message = "Unanswered question " + qa["id"] + " will receive score 0."
                    print(message, file=sys.stderr)
                    continue
                ground_truths = list(map(lambda x: x["text"], qa["answers"]))
                prediction = predictions[qa["id"]]
                exact_match += metric_max_over_ground_truths(exact_match_score, prediction, ground_truths)
                f1 += metric_max_over_ground_truths(f1_score, prediction, ground_truths)

    exact_match = 100.0 * exact_match / total
    f1 = 100.0 * f1 / total

    return {"exact_match": exact_match, "f1": f1}
'''

OFFICIAL_V2_0_SOURCE = r'''
import argparse
import collections
import json
import os
import re
import string
import sys

ARTICLES_REGEX = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def make_qid_to_has_ans(dataset):
    qid_to_has_ans = {}
    for article in dataset:
        for p in article["paragraphs"]:
            for qa in p["qas"]:
                qid_to_has_ans[qa["id"]] = bool(qa["answers"]["text"])
    return qid_to_has_ans


def normalize_answer(s):
    """Lower text and remove punctuation, articles and extra whitespace."""

    def remove_articles(text):
        return ARTICLES_REGEX.sub(" ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def get_tokens(s):
    if not s:
        return []
    return normalize_answer(s).split()


def compute_exact(a_gold, a_pred):
    return int(normalize_answer(a_gold) == normalize_answer(a_pred))


def compute_f1(a_gold, a_pred):
    gold_toks = get_tokens(a_gold)
    pred_toks = get_tokens(a_pred)
    common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
    num_same = sum(common.values())
    if len(gold_toks) == 0 or len(pred_toks) == 0:
        # If either is no-answer, then F1 is 1 if they agree, 0 otherwise
        return int(gold_toks == pred_toks)
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(pred_toks)
    recall = 1.0 * num_same / len(gold_toks)
    f1 = (2 * precision * recall) / (precision + recall)
    return f1


def get_raw_scores(dataset, preds):
    exact_scores = {}
    f1_scores = {}
    for article in dataset:
        for p in article["paragraphs"]:
            for qa in p["qas"]:
                qid = qa["id"]
                gold_answers = [t for t in qa["answers"]["text"] if normalize_answer(t)]
                if not gold_answers:
                    # For unanswerable questions, only correct answer is empty string
                    gold_answers = [""]
                if qid not in preds:
                    print(f"Missing prediction for {qid}")
                    continue
                a_pred = preds[qid]
                # Take max over all gold answers
                exact_scores[qid] = max(compute_exact(a, a_pred) for a in gold_answers)
                f1_scores[qid] = max(compute_f1(a, a_pred) for a in gold_answers)
    return exact_scores, f1_scores


def apply_no_ans_threshold(scores, na_probs, qid_to_has_ans, na_prob_thresh):
    new_scores = {}
    for qid, s in scores.items():
        pred_na = na_probs[qid] > na_prob_thresh
        if pred_na:
            new_scores[qid] = float(not qid_to_has_ans[qid])
        else:
            new_scores[qid] = s
    return new_scores


def make_eval_dict(exact_scores, f1_scores, qid_list=None):
    if not qid_list:
        total = len(exact_scores)
        return collections.OrderedDict(
            [
                ("exact", 100.0 * sum(exact_scores.values()) / total),
                ("f1", 100.0 * sum(f1_scores.values()) / total),
                ("total", total),
            ]
        )
    else:
        total = len(qid_list)
        return collections.OrderedDict(
            [
                ("exact", 100.0 * sum(exact_scores[k] for k in qid_list) / total),
                ("f1", 100.0 * sum(f1_scores[k] for k in qid_list) / total),
                ("total", total),
            ]
        )


def merge_eval(main_eval, new_eval, prefix):
    for k in new_eval:
        main_eval[f"{prefix}_{k}"] = new_eval[k]
'''


def _load(source, filename):
    namespace = {}
    exec(compile(source, filename, "exec"), namespace)
    return namespace


OFFICIAL_V1_1 = _load(OFFICIAL_V1_1_SOURCE, "evaluate-v1.1.py")
OFFICIAL_V2_0 = _load(OFFICIAL_V2_0_SOURCE, "evaluate-v2.0.py")


def official_v1_1(predictions, references):
    """What evaluate-v1.1.py prints, with `exact_match` and `f1`."""
    dataset = [
        {"paragraphs": [{"qas": [{"id": qid, "answers": [{"text": text} for text in texts]}]}]}
        for qid, texts in references.items()
    ]
    return OFFICIAL_V1_1["compute_score"](dataset, predictions)


def official_v2_0(predictions, references):
    """What evaluate-v2.0.py prints with no na_prob file (main()'s lines without the files), under
    xp's names: `exact` is `exact_match`, and the counts (`total`...) are left out."""
    o = OFFICIAL_V2_0
    dataset = [
        {"paragraphs": [{"qas": [{"id": qid, "answers": {"text": list(texts)}} for qid, texts in references.items()]}]}
    ]
    preds = dict(predictions)
    na_probs = dict.fromkeys(preds, 0.0)
    na_prob_thresh = 1.0  # the script's default
    qid_to_has_ans = o["make_qid_to_has_ans"](dataset)
    has_ans_qids = [k for k, v in qid_to_has_ans.items() if v]
    no_ans_qids = [k for k, v in qid_to_has_ans.items() if not v]
    exact_raw, f1_raw = o["get_raw_scores"](dataset, preds)
    exact_thresh = o["apply_no_ans_threshold"](exact_raw, na_probs, qid_to_has_ans, na_prob_thresh)
    f1_thresh = o["apply_no_ans_threshold"](f1_raw, na_probs, qid_to_has_ans, na_prob_thresh)
    out_eval = o["make_eval_dict"](exact_thresh, f1_thresh)
    if has_ans_qids:
        has_ans_eval = o["make_eval_dict"](exact_thresh, f1_thresh, qid_list=has_ans_qids)
        o["merge_eval"](out_eval, has_ans_eval, "HasAns")
    if no_ans_qids:
        no_ans_eval = o["make_eval_dict"](exact_thresh, f1_thresh, qid_list=no_ans_qids)
        o["merge_eval"](out_eval, no_ans_eval, "NoAns")
    return {name.replace("exact", "exact_match"): value for name, value in out_eval.items() if "total" not in name}


# --- Normalization -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("Denver Broncos", "denver broncos"),  # case
        ("Paris, France.", "paris france"),  # punctuation
        ("The Eiffel Tower", "eiffel tower"),  # articles
        ("a cat and an owl", "cat and owl"),
        ("  Saint\tLouis \n", "saint louis"),  # whitespace
        ("Theatre, anthem, another", "theatre anthem another"),  # articles only as whole words
        ("U.S.A.", "usa"),
        ("the-end", "theend"),  # punctuation goes first: then "the" is no longer a word
        ("(the) end", "end"),
        ("l’été", "l’été"),  # string.punctuation is ASCII only
        ("The.", ""),
        ("", ""),
    ],
)
def test_normalization_lowercases_then_drops_punctuation_then_articles_then_extra_whitespace(text, normalized):
    assert normalize_answer(text) == normalized


# --- One answer against one reference --------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.1", "2.0"])
def test_exact_match_compares_normalized_answers(version):
    assert exact_match("the Eiffel  Tower!", "Eiffel tower") == 1.0
    assert exact_match("Eiffel Tower in Paris", "Eiffel Tower") == 0.0
    assert f1("the Eiffel  Tower!", "Eiffel tower", version) == 1.0


@pytest.mark.parametrize("version", ["1.1", "2.0"])
def test_f1_is_the_harmonic_mean_of_precision_and_recall_over_shared_words(version):
    # Predicted: eiffel tower today (3 words); reference: eiffel tower of paris (4); 2 shared.
    precision, recall = 2 / 3, 2 / 4
    assert f1("Eiffel Tower today", "The Eiffel Tower of Paris", version) == pytest.approx(4 / 7)
    assert 2 * precision * recall / (precision + recall) == pytest.approx(4 / 7)


@pytest.mark.parametrize("version", ["1.1", "2.0"])
def test_f1_counts_a_repeated_word_as_often_as_both_sides_have_it(version):
    # paris paris against paris: 1 shared word, precision 1/2, recall 1.
    assert f1("Paris paris", "Paris", version) == pytest.approx(2 / 3)


@pytest.mark.parametrize("version", ["1.1", "2.0"])
def test_f1_is_0_when_no_word_is_shared(version):
    assert f1("Lyon", "Paris", version) == 0.0
    assert f1("", "Paris", version) == 0.0
    assert f1("Paris", "", version) == 0.0


def test_f1_of_two_empty_answers_is_0_in_v1_1_and_1_in_v2_0():
    # v1.1: no word is shared, so 0; v2.0: both say "no answer", so they agree.
    assert f1("", "the", "1.1") == 0.0
    assert f1("", "the", "2.0") == 1.0
    assert exact_match("", "the") == 1.0


# --- Questions and their averages ----------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.1", "2.0"])
def test_a_question_scores_its_best_reference_for_each_score(version):
    # F1: "denver team" against "denver broncos" shares 1 word of 2 each side: 1/2; against "broncos", 0.
    scores = squad_scores({"q": "the Denver team"}, {"q": ["Denver Broncos", "Broncos"]}, version)
    assert scores["exact_match"] == 0.0
    assert scores["f1"] == pytest.approx(50.0)
    scores = squad_scores({"q": "broncos."}, {"q": ["Denver Broncos", "Broncos"]}, version)
    assert scores["exact_match"] == 100.0 and scores["f1"] == 100.0


@pytest.mark.parametrize("version", ["1.1", "2.0"])
def test_an_empty_prediction_for_an_answerable_question_scores_0(version):
    scores = squad_scores({"q": ""}, {"q": ["Denver Broncos"]}, version)
    assert scores["exact_match"] == 0.0 and scores["f1"] == 0.0


def test_v1_1_scores_are_percentages_averaged_over_questions():
    predictions = {"right": "Denver Broncos", "partly": "Eiffel Tower today"}
    references = {"right": ["Denver Broncos"], "partly": ["The Eiffel Tower of Paris"]}
    scores = squad_scores(predictions, references, "1.1")
    assert scores == {"exact_match": 50.0, "f1": pytest.approx(100 * (1 + 4 / 7) / 2)}


def test_v2_0_scores_no_answer_as_right_only_for_an_unanswerable_question():
    assert squad_scores({"q": ""}, {"q": []}, "2.0") == {
        "exact_match": 100.0,
        "f1": 100.0,
        "NoAns_exact_match": 100.0,
        "NoAns_f1": 100.0,
    }
    assert squad_scores({"q": "Denver"}, {"q": []}, "2.0")["f1"] == 0.0
    # An answer that normalizes to nothing is no answer.
    assert squad_scores({"q": "The."}, {"q": []}, "2.0")["exact_match"] == 100.0


def test_v2_0_also_averages_answerable_and_unanswerable_questions_apart():
    predictions = {"right": "Denver Broncos", "partly": "Eiffel Tower today", "abstained": "", "guessed": "Paris"}
    references = {"right": ["Denver Broncos"], "partly": ["The Eiffel Tower of Paris"], "abstained": [], "guessed": []}
    scores = squad_scores(predictions, references, "2.0")
    assert scores == {
        "exact_match": 50.0,  # right and abstained
        "f1": pytest.approx(100 * (1 + 4 / 7 + 1 + 0) / 4),
        "HasAns_exact_match": 50.0,
        "HasAns_f1": pytest.approx(100 * (1 + 4 / 7) / 2),
        "NoAns_exact_match": 50.0,
        "NoAns_f1": 50.0,
    }
    assert list(scores) == [  # a stable order of names too
        "exact_match",
        "f1",
        "HasAns_exact_match",
        "HasAns_f1",
        "NoAns_exact_match",
        "NoAns_f1",
    ]


def test_v2_0_names_only_the_kinds_of_question_the_references_hold():
    assert set(squad_scores({"q": "Paris"}, {"q": ["Paris"]}, "2.0")) == {
        "exact_match",
        "f1",
        "HasAns_exact_match",
        "HasAns_f1",
    }
    assert set(squad_scores({"q": "Paris"}, {"q": []}, "2.0")) == {"exact_match", "f1", "NoAns_exact_match", "NoAns_f1"}
    assert set(squad_scores({"q": "Paris"}, {"q": ["Paris"]}, "1.1")) == {"exact_match", "f1"}


def test_a_reference_that_normalizes_to_nothing_counts_in_v1_1_and_is_dropped_in_v2_0():
    # v1.1 keeps "The": an empty prediction matches it exactly, sharing no word (F1 0). v2.0 drops
    # it and scores against "Paris" alone.
    references = {"q": ["The", "Paris"]}
    assert squad_scores({"q": ""}, references, "1.1") == {"exact_match": 100.0, "f1": 0.0}
    assert squad_scores({"q": ""}, references, "2.0")["exact_match"] == 0.0
    # With nothing left, v2.0 scores against "" (F1 1 for no answer), yet the question stays
    # answerable (HasAns), as the script decides that from the data's answers before dropping any.
    scores = squad_scores({"q": ""}, {"q": ["the", "."]}, "2.0")
    assert scores == {"exact_match": 100.0, "f1": 100.0, "HasAns_exact_match": 100.0, "HasAns_f1": 100.0}
    assert squad_scores({"q": ""}, {"q": ["the", "."]}, "1.1") == {"exact_match": 100.0, "f1": 0.0}


# --- The version of some references --------------------------------------------------------------


def test_references_are_v2_0_when_some_question_has_no_answer():
    assert version_of({"q1": ["Paris"], "q2": []}) == "2.0"


def test_references_that_answer_every_question_are_v1_1_even_where_an_answer_normalizes_to_nothing():
    assert version_of({"q1": ["Paris"], "q2": ["the"]}) == "1.1"


# --- Mistakes ----------------------------------------------------------------------------------


def test_a_question_without_a_prediction_is_an_error_naming_it():
    with pytest.raises(ValueError, match="no prediction for question 'q2'"):
        squad_scores({"q1": "Paris"}, {"q1": ["Paris"], "q2": ["Lyon"]}, "1.1")


def test_a_prediction_for_an_unknown_question_is_an_error_naming_it():
    with pytest.raises(ValueError, match="prediction for question 'q9', which has no references"):
        squad_scores({"q1": "Paris", "q9": "Lyon"}, {"q1": ["Paris"]}, "2.0")


def test_an_error_names_the_first_five_ids_and_counts_the_rest():
    references = {f"q{i}": ["Paris"] for i in range(8)}
    with pytest.raises(ValueError, match=r"'q0', 'q1', 'q2', 'q3', 'q4' and 3 more$"):
        squad_scores({}, references, "1.1")


def test_an_unanswerable_question_cannot_be_scored_as_v1_1():
    with pytest.raises(ValueError, match=r"question 'q' has no reference answer: SQuAD v1\.1"):
        squad_scores({"q": ""}, {"q": []}, "1.1")


@pytest.mark.parametrize(
    ("predictions", "references", "version", "message"),
    [
        ({"q": "P"}, {"q": "Paris"}, "1.1", "references of question 'q' must be a list of answers"),
        ({}, {}, "2.0", "no questions to score"),
        ({"q": "Paris"}, {"q": ["Paris"]}, "2", 'SQuAD version must be "1.1" or "2.0", got \'2\''),
    ],
)
def test_malformed_input_is_an_error(predictions, references, version, message):
    with pytest.raises(ValueError, match=message):
        squad_scores(predictions, references, version)


# --- Against the official scripts ----------------------------------------------------------------

# Words and separators that exercise every rule: articles in every case, inside longer words and
# glued to punctuation ("the-", "a."), ASCII and non-ASCII punctuation, Unicode whitespace.
WORDS = [
    "a",
    "an",
    "the",
    "The",
    "A",
    "AN",
    "theatre",
    "anthem",
    "été",
    "’",
    ",",
    ".",
    "-",
    "'s",
    "(",
    ")",
    "!",
    "_",
    "",
]
# Half of them plain words, a few of which answers share now and then: partial F1 in plenty.
WORDS += ["Paris", "paris", "PARIS", "tower", "Tower", "Eiffel", "river", "Seine", "1889", "in", "of"] * 2
SEPARATORS = [" ", " ", " ", "", "  ", "\t", "\n", "\xa0"]


def random_answer(rng):
    return "".join(rng.choice(WORDS) + rng.choice(SEPARATORS) for _ in range(rng.randint(0, 5)))


def random_question(rng, fewest_references):
    references = [random_answer(rng) for _ in range(rng.randint(fewest_references, 3))]
    if references and rng.random() < 0.3:
        # Often a reference itself, in other case, so that exact matches and full F1 are frequent.
        return rng.choice(references).upper(), references
    return random_answer(rng), references


def random_data(seed, fewest_references):
    rng = random.Random(seed)
    questions = [random_question(rng, fewest_references) for _ in range(rng.randint(1, 6))]
    predictions = {f"q{i}": prediction for i, (prediction, _) in enumerate(questions)}
    references = {f"q{i}": answers for i, (_, answers) in enumerate(questions)}
    return predictions, references


def test_the_same_scores_as_the_official_v1_1_script_to_the_last_bit():
    for seed in range(300):
        predictions, references = random_data(seed, fewest_references=1)
        assert squad_scores(predictions, references, "1.1") == official_v1_1(predictions, references), seed


def test_the_same_scores_as_the_official_v2_0_script_to_the_last_bit():
    for seed in range(300):
        predictions, references = random_data(seed, fewest_references=0)
        assert squad_scores(predictions, references, "2.0") == official_v2_0(predictions, references), seed


def test_the_official_normalization_on_random_answers():
    rng = random.Random(0)
    for _ in range(300):
        text = random_answer(rng)
        assert (
            normalize_answer(text) == OFFICIAL_V1_1["normalize_answer"](text) == OFFICIAL_V2_0["normalize_answer"](text)
        )

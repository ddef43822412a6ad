"""Extractive question answering scored exactly as the official SQuAD scripts score it:
`evaluate-v1.1.py` and `evaluate-v2.0.py`, as vendored in huggingface/evaluate
(`metrics/squad/compute_score.py`, `metrics/squad_v2/compute_score.py`). Standard library only.

The official v2.0 script calls exact match `exact` (`HasAns_exact`, `NoAns_exact`); v1.1 calls it
`exact_match`. xp logs `exact_match` for both, so one name means one thing across versions; the
numbers are the official ones, percentages from 0 to 100.

The versions differ in three places, all about answers with no words left after normalization
("", "the", "."):
- v2.0 drops reference answers that normalize to empty, and a question left with none is scored
  against the one answer "" (the only right answer to an unanswerable question is no answer);
  v1.1 keeps every reference, and a question with none cannot be scored at all;
- F1 when either side has no words: v2.0 gives 1 if both have none, else 0; v1.1 gives 0, since no
  word is shared, even when both are empty (exact match still gives 1 there, in both);
- v2.0 also scores answerable (HasAns) and unanswerable (NoAns) questions apart.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Literal

SquadVersion = Literal["1.1", "2.0"]
VERSIONS: tuple[SquadVersion, ...] = ("1.1", "2.0")

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
# How many missing or unknown question ids an error names before it only counts the rest.
_IDS_NAMED = 5


def normalize_answer(text: str) -> str:
    """Lowercase, drop ASCII punctuation, drop the articles a/an/the, collapse whitespace: in this
    order, the scripts' order (so "the-end" becomes "theend", not "end")."""
    text = text.lower()
    text = "".join(character for character in text if character not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, reference: str) -> float:
    """1 if the two answers are the same once normalized, else 0; the same in both versions (they
    differ in which references a question keeps, not in comparing two answers)."""
    return float(normalize_answer(prediction) == normalize_answer(reference))


def f1(prediction: str, reference: str, version: SquadVersion) -> float:
    """The harmonic mean of precision and recall over the normalized words, counted with their
    repeats; from 0 to 1. With no word on one side, v2.0 gives 1 if the other has none either."""
    predicted_words = normalize_answer(prediction).split()
    reference_words = normalize_answer(reference).split()
    if version == "2.0" and not (predicted_words and reference_words):
        # v2.0: an empty answer means "no answer", right exactly when the other side is empty too.
        return float(predicted_words == reference_words)
    shared = sum((Counter(predicted_words) & Counter(reference_words)).values())
    if shared == 0:
        return 0.0
    precision = shared / len(predicted_words)
    recall = shared / len(reference_words)
    # The scripts' own expression: the algebraically equal 2·shared/(p+r) can differ in the last bit.
    return (2 * precision * recall) / (precision + recall)


def version_of(references: Mapping[str, Sequence[str]]) -> SquadVersion:
    """Which script some references call for: "2.0" when a question has no reference answer,
    else "1.1".

    Only an unanswerable question proves the data is v2.0: v1.1's script cannot score one. Data
    without any is scored the same by both scripts except where a reference normalizes to empty
    (see the module docstring), and v2.0 adds the HasAns names. So a v2.0 split that happens to
    hold only answerable questions reads as "1.1" here: declare the version where it is known,
    and use this only where it is not."""
    return "2.0" if any(len(answers) == 0 for answers in references.values()) else "1.1"


def squad_scores(
    predictions: Mapping[str, str], references: Mapping[str, Sequence[str]], version: SquadVersion
) -> dict[str, float]:
    """`exact_match` and `f1` over every question, as percentages; v2.0 adds `HasAns_exact_match`,
    `HasAns_f1` when some question has a reference answer and `NoAns_exact_match`, `NoAns_f1` when
    some has none, as its script does (no score of nothing: the names depend on the references
    only, so every evaluation of one split logs the same ones).

    `predictions` maps each question id to its predicted answer ("" for no answer), `references`
    each id to its reference answers ([] for an unanswerable question, v2.0 only). Both must hold
    the same ids: a question never predicted, or a prediction for no question, is a bug to
    surface, not a 0 to average in."""
    _check(predictions, references, version)
    exact_scores, f1_scores, answerable = [], [], []
    # Question order is the references' order, as the scripts sum in the data file's order: a
    # float sum in another order can differ in the last bit.
    for question, answers in references.items():
        prediction = predictions[question]
        golds = _gold_answers(answers, version)
        exact_scores.append(max(exact_match(prediction, gold) for gold in golds))
        f1_scores.append(max(f1(prediction, gold, version) for gold in golds))
        # Whether the data gives answers, before v2.0 drops those that normalize to empty.
        answerable.append(len(answers) > 0)
    scores = _percentages("", exact_scores, f1_scores)
    if version == "2.0":
        for prefix, has_answer in (("HasAns_", True), ("NoAns_", False)):
            chosen = [i for i, answered in enumerate(answerable) if answered == has_answer]
            if chosen:
                scores |= _percentages(prefix, [exact_scores[i] for i in chosen], [f1_scores[i] for i in chosen])
    return scores


def _gold_answers(answers: Sequence[str], version: SquadVersion) -> list[str]:
    if version == "1.1":
        return list(answers)
    return [answer for answer in answers if normalize_answer(answer)] or [""]


def _percentages(prefix: str, exact_scores: list[float], f1_scores: list[float]) -> dict[str, float]:
    # 100.0 * sum / count, in the scripts' order of operations.
    return {
        f"{prefix}exact_match": 100.0 * sum(exact_scores) / len(exact_scores),
        f"{prefix}f1": 100.0 * sum(f1_scores) / len(f1_scores),
    }


def _check(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]], version: str) -> None:
    if version not in VERSIONS:
        raise ValueError(f'SQuAD version must be "1.1" or "2.0", got {version!r}')
    if not references:
        raise ValueError("no questions to score: the references are empty")
    missing = [question for question in references if question not in predictions]
    if missing:
        raise ValueError(f"no prediction for question {_ids(missing)}")
    unknown = [question for question in predictions if question not in references]
    if unknown:
        raise ValueError(f"prediction for question {_ids(unknown)}, which has no references")
    for question, answers in references.items():
        if isinstance(answers, str):
            # A string is a sequence too: scored, it would be a list of single characters.
            raise ValueError(
                f"references of question {question!r} must be a list of answers, got the string {answers!r}"
            )
        if version == "1.1" and not answers:
            raise ValueError(
                f"question {question!r} has no reference answer: SQuAD v1.1 scores answerable questions "
                'only (unanswerable ones are v2.0: version "2.0")'
            )


def _ids(questions: list[str]) -> str:
    named = ", ".join(repr(question) for question in questions[:_IDS_NAMED])
    rest = len(questions) - _IDS_NAMED
    return f"{named} and {rest} more" if rest > 0 else named

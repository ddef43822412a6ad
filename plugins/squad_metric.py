"""The `squad` metric: exact match and F1 of extractive answers, exactly as the official SQuAD
evaluation scripts compute them (xp_plugins.squad_scores): v1.1's for data whose every question
has an answer, v2.0's (with HasAns and NoAns scores) when the task allows no answer. Percentages,
as the scripts print them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tracker.plugin import TaskData, data_rules, outputs
from xp_plugins.squad_scores import SquadVersion, squad_scores
from xp_plugins.tasks.question_answering import QuestionAnswering

SCORES = ("exact_match", "f1")
# SQuAD 2.0's scores of the answerable and of the unanswerable questions apart.
BY_KIND = ("HasAns_exact_match", "HasAns_f1", "NoAns_exact_match", "NoAns_f1")


def _needs_answers(options, data):
    if not isinstance(data.task, QuestionAnswering):
        yield None, f"scores answer spans (question answering), but the task predicts {data.task.describe()}"


@dataclass(frozen=True)
class SquadScores:
    """A `Metric` over each question's answer (`Answer`s, as the task's `per_row` chooses them)
    and its reference answer texts (an empty list: the question has none)."""

    version: SquadVersion
    greater_is_better: bool = True

    def compute(self, predictions: Sequence[Any], references: Sequence[Sequence[str]]) -> dict[str, float]:
        # Questions are named by position: the runners keep the split's order.
        predicted = {str(i): answer.text for i, answer in enumerate(predictions)}
        expected = {str(i): list(texts) for i, texts in enumerate(references)}
        return squad_scores(predicted, expected, self.version)


@outputs(*SCORES, *BY_KIND)
@data_rules(_needs_answers)
def squad(data: TaskData) -> SquadScores:
    """Exact match and F1 as the official SQuAD scripts score them (0-100), against every reference answer.

    With `[task] allow_no_answer` the SQuAD 2.0 script's rules, and its scores of the answerable
    (`HasAns_exact_match`, `HasAns_f1`) and unanswerable (`NoAns_...`) questions apart, those the
    data has; else SQuAD 1.1's."""
    task = data.task
    assert isinstance(task, QuestionAnswering)  # the data rule says so
    return SquadScores("2.0" if task.allow_no_answer else "1.1")

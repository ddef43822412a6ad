"""Contexts longer than the model, as extractive question answering reads them: each question and
its context split into overlapping windows of tokens (a context's tokens with the characters each
spans), an answer's characters found among a window's tokens, and a question's best answer chosen
over all its windows from the model's start and end logits. The Hugging Face course (chapter 7)
and `run_qa.py` (utils_qa.py) do the same; this module is the one place xp does."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Span = tuple[int, int]  # characters of the context: [start, end)


@dataclass(frozen=True)
class Answer:
    """A question's predicted answer: its text, the characters of the context it spans (-1, -1
    for no answer) and its probability among the candidate answers."""

    text: str
    start: int
    end: int
    score: float

    @property
    def empty(self) -> bool:
        return self.start < 0


NO_ANSWER_SPAN = (-1, -1)


def context_offsets(offsets: Sequence[Span], sequence_ids: Sequence[int | None], context_id: int) -> list[Span | None]:
    """A window's tokens' characters in the context, None for the tokens that are not the
    context's (the question, special tokens, padding): no answer can start or end there."""
    return [
        (span[0], span[1]) if sequence == context_id else None
        for span, sequence in zip(offsets, sequence_ids, strict=True)
    ]


def answer_positions(offsets: Sequence[Span | None], answer: Span | None, no_answer: int) -> tuple[int, int]:
    """The first and last tokens of the window that hold the answer's characters; `no_answer`
    (the CLS token) for both when the question has no answer or the window does not hold all of
    it, as the course trains."""
    if answer is None:
        return no_answer, no_answer
    start_char, end_char = answer
    context = [i for i, span in enumerate(offsets) if span is not None]
    first, last = context[0], context[-1]
    first_span, last_span = offsets[first], offsets[last]
    assert first_span is not None and last_span is not None
    if first_span[0] > start_char or last_span[1] < end_char:
        return no_answer, no_answer
    start = first
    while start <= last and offsets[start][0] <= start_char:  # type: ignore[index]
        start += 1
    end = last
    while end >= first and offsets[end][1] >= end_char:  # type: ignore[index]
        end -= 1
    return start - 1, end + 1


@dataclass(frozen=True)
class SpanChoice:
    """How the best answer is picked from the logits: the `n_best` highest starts and ends of
    each window, spans of at most `max_answer_length` tokens inside the context; with
    `allow_no_answer`, no answer when the null score (a window's CLS start and end logits, the
    lowest over the windows) beats the best span's score by more than `null_score_diff_threshold`."""

    n_best: int
    max_answer_length: int
    allow_no_answer: bool
    null_score_diff_threshold: float

    def best_answer(self, context: str, windows: Sequence[tuple[Any, Any, Sequence[Span | None]]]) -> Answer:
        """The answer of one question from its windows: (start logits, end logits, offsets) each."""
        import numpy as np

        candidates: list[tuple[float, Span]] = []
        null_score: float | None = None
        for start_logits, end_logits, offsets in windows:
            window_null = float(start_logits[0] + end_logits[0])
            null_score = window_null if null_score is None else min(null_score, window_null)
            # As the course: the n_best highest logits, ties broken as numpy's argsort breaks them.
            starts = np.argsort(start_logits)[-1 : -self.n_best - 1 : -1].tolist()
            ends = np.argsort(end_logits)[-1 : -self.n_best - 1 : -1].tolist()
            for start in starts:
                for end in ends:
                    if start >= len(offsets) or end >= len(offsets):
                        continue  # padding the batches added
                    start_span, end_span = offsets[start], offsets[end]
                    if start_span is None or end_span is None:
                        continue
                    if end < start or end - start + 1 > self.max_answer_length:
                        continue
                    candidates.append((float(start_logits[start] + end_logits[end]), (start_span[0], end_span[1])))
        scores = [score for score, _ in candidates]
        if self.allow_no_answer and null_score is not None:
            scores.append(null_score)
        probabilities = _softmax(scores)
        if not candidates:
            return Answer("", *NO_ANSWER_SPAN, probabilities[-1] if probabilities else 1.0)
        best = max(range(len(candidates)), key=lambda i: candidates[i][0])
        score, (start_char, end_char) = candidates[best]
        if self.allow_no_answer and null_score is not None and null_score - score > self.null_score_diff_threshold:
            return Answer("", *NO_ANSWER_SPAN, probabilities[-1])
        return Answer(context[start_char:end_char], start_char, end_char, probabilities[best])

    def answers(
        self,
        contexts: Sequence[str],
        question_ids: Sequence[str],
        window_questions: Sequence[str],
        logits: Any,
        offsets: Sequence[Sequence[Span | None]],
    ) -> list[Answer]:
        """Each question's answer, in `question_ids`' order, from the windows: the question each
        is of, its start and end logits side by side (`[window, token, 2]`) and its offsets."""
        windows = windows_by_question(question_ids, window_questions)
        return [
            self.best_answer(context, [(logits[w, :, 0], logits[w, :, 1], offsets[w]) for w in its_windows])
            for context, its_windows in zip(contexts, windows, strict=True)
        ]


def _softmax(scores: Sequence[float]) -> list[float]:
    import numpy as np

    if not scores:
        return []
    values = np.asarray(scores, dtype=np.float64)
    exp = np.exp(values - values.max())
    return (exp / exp.sum()).tolist()


def windows_by_question(ids: Sequence[str], window_ids: Sequence[str]) -> list[list[int]]:
    """For each question (by its position in `ids`), the positions of its windows."""
    position = {question: i for i, question in enumerate(ids)}
    windows: list[list[int]] = [[] for _ in ids]
    for window, question in enumerate(window_ids):
        windows[position[question]].append(window)
    return windows


def answer_span(answers: Mapping[str, Sequence[Any]] | None) -> Span | None:
    """The characters of the answer a question is trained on, its first (as the course); None
    for a question without one."""
    if not answers or not answers.get("text"):
        return None
    start = int(answers["answer_start"][0])
    return start, start + len(answers["text"][0])

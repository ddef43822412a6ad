"""Each question's answers, as question answering reads them from any data layout: read into the
hub's `{"text": [...], "answer_start": [...]}`, checked against the question's context and id
(an `answer_start` that does not point at its answer, an empty context, a repeated id, a missing
answer), and written to a split's `label` column."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tracker.plugin import BuildError
from xp_plugins.tasks import columns as guess

if TYPE_CHECKING:
    from datasets import Dataset

SHOWN_PROBLEMS = 5  # questions named in a message; the rest are counted


def read_answers(split: Dataset, column: str) -> list[dict[str, list[Any]]]:
    """Each row's answers as `{"text": [...], "answer_start": [...]}` (empty lists: no answer),
    read from the hub's layout (a struct of lists) or SQuAD's (a list of `{"text",
    "answer_start"}`)."""
    values = guess.column_values(split, column)
    read: list[dict[str, list[Any]]] = []
    for value in values:
        if value is None:
            read.append({"text": [], "answer_start": []})
        elif isinstance(value, dict) and "text" in value and "answer_start" in value:
            read.append({"text": list(value["text"] or []), "answer_start": list(value["answer_start"] or [])})
        elif isinstance(value, list) and all(isinstance(a, dict) and "text" in a for a in value):
            read.append({"text": [a["text"] for a in value], "answer_start": [a.get("answer_start") for a in value]})
        else:
            raise BuildError(
                "label_column",
                f'"{column}" holds {str(value)[:80]}; expected each question\'s answers as '
                '{"text": [...], "answer_start": [...]} (the hub\'s SQuAD layout)',
            )
    return read


def problems_of(
    split: Dataset,
    id_column: str,
    context_column: str,
    answers: Sequence[dict[str, list[Any]]] | None,
    allow_no_answer: bool,
) -> list[tuple[int, str, str]]:
    """(row, question id, what is wrong) for every question that cannot be trained on or scored."""
    ids = split[id_column]
    contexts = split[context_column]
    problems: list[tuple[int, str, str]] = []
    seen: set[str] = set()
    for row, (question, context) in enumerate(zip(ids, contexts, strict=True)):
        question = str(question)
        if question in seen:
            problems.append((row, question, "its id is used by an earlier question"))
            continue
        seen.add(question)
        if not context or not str(context).strip():
            problems.append((row, question, "its context is empty"))
            continue
        if answers is None:
            continue
        given = answers[row]
        if not given["text"]:
            if not allow_no_answer:
                problems.append((row, question, "it has no answer (set [task] allow_no_answer = true for SQuAD 2.0)"))
            continue
        for text, start in zip(given["text"], given["answer_start"], strict=False):
            if not text:
                problems.append((row, question, "an answer's text is empty"))
                break
            if not isinstance(start, int) or context[start : start + len(text)] != text:
                found = context[start : start + len(text)] if isinstance(start, int) else start
                problems.append(
                    (row, question, f'answer_start {start} points at "{found}", not at its answer "{text}"')
                )
                break
    return problems


def problems_text(problems: Sequence[tuple[int, str, str]], split_name: str) -> str:
    """The problems, counted, the first few named by question id, and the two ways out."""
    shown = "; ".join(f'question "{question}": {what}' for _, question, what in problems[:SHOWN_PROBLEMS])
    more = f"; and {len(problems) - SHOWN_PROBLEMS} more" if len(problems) > SHOWN_PROBLEMS else ""
    questions = "question" if len(problems) == 1 else "questions"
    return (
        f"{len(problems)} {questions} of the {split_name} split cannot be trained on or scored: "
        f"{shown}{more}. Mend the data, or set [task] skip_bad_questions = true to leave them out"
    )


def with_answers(split: Dataset, column: str, answers: Sequence[dict[str, list[Any]]] | None) -> Dataset:
    """The split with each question's answers under `label` (None for a test split without them).
    Named by what made it, as datasets would otherwise hash every answer."""
    from datasets import List, Value
    from datasets.fingerprint import Hasher

    fingerprint = Hasher.hash([split._fingerprint, "xp answers", column, answers is None])
    split = split.remove_columns([c for c in (column, "label") if c in split.column_names])
    values = list(answers) if answers is not None else [None] * len(split)
    feature = {"text": List(Value("string")), "answer_start": List(Value("int64"))}
    return split.add_column("label", values, feature=feature, new_fingerprint=fingerprint)

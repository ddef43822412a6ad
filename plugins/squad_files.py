"""SQuAD-format JSON files as published (v1.1 and v2.0: articles, their paragraphs, each paragraph's
questions), read into the flat rows of the hub's `squad` and `squad_v2` datasets. Only the structure
is checked here; whether each answer is where `answer_start` says is the question-answering task's
to check, for every data layout alike."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, TypeVar

# The hub's columns, in the hub's order. An unanswerable question is one with empty answers, as in
# squad_v2: no `is_impossible` column, so rows read from a file and rows from the hub are the same.
COLUMNS = ("id", "title", "context", "question", "answers")

# What a key holds, in the words of JSON rather than of Python.
EXPECTED = {dict: "an object", list: "a list", str: "a string", int: "an integer", bool: "true or false"}

T = TypeVar("T")


class SquadError(ValueError):
    """A file that is not SQuAD-format JSON; the message names the file and where in it."""


@dataclasses.dataclass(frozen=True)
class SquadFile:
    version: str | None  # the file's "version" as written ("v1.1", "v2.0"), None when it has none
    rows: dict[str, list[Any]]  # COLUMNS -> one value per question, in the file's order

    @property
    def has_unanswerable(self) -> bool:
        """Whether some question has no answer: a v2.0 file, whatever its "version" says."""
        return any(not answers["text"] for answers in self.rows["answers"])


def read_squad(path: Path) -> SquadFile:
    """Every question of one file as a row, in the file's order; a SquadError at the first part
    whose structure is not SQuAD's."""
    document = _load(path)
    if not isinstance(document, dict):
        raise SquadError(f'{path}: expected an object with a "data" list at the top, got {_shown(document)}')
    version = document.get("version")
    if version is not None and not isinstance(version, str):
        raise SquadError(f'{path}: "version": expected a string, got {_shown(version)}')
    rows: dict[str, list[Any]] = {column: [] for column in COLUMNS}
    for a, article in enumerate(_get(path, "", document, "data", list)):
        article_at = f"data[{a}]"
        article = _value(path, article_at, article, dict)
        # Some SQuAD-style files (made by hand, converted from other sets) leave the title out.
        title = _get(path, article_at, article, "title", str) if "title" in article else ""
        for p, paragraph in enumerate(_get(path, article_at, article, "paragraphs", list)):
            paragraph_at = f"{article_at}.paragraphs[{p}]"
            paragraph = _value(path, paragraph_at, paragraph, dict)
            context = _get(path, paragraph_at, paragraph, "context", str)
            for q, question in enumerate(_get(path, paragraph_at, paragraph, "qas", list)):
                position = f"{paragraph_at}.qas[{q}]"
                question = _value(path, position, question, dict)
                id_ = _get(path, position, question, "id", str)
                # Once it is known, the id leads: it is what one searches the file for.
                question_at = f"question {json.dumps(id_, ensure_ascii=False)} ({position})"
                rows["id"].append(id_)
                rows["title"].append(title)
                rows["context"].append(context)
                rows["question"].append(_get(path, question_at, question, "question", str))
                rows["answers"].append(_answers(path, question_at, question))
    return SquadFile(version, rows)


def looks_like_squad(path: Path) -> bool:
    """Whether a file is SQuAD-format JSON at a glance (for `xp init`): a .json file holding an object
    whose "data" list starts with an article that has "paragraphs". Never raises."""
    if path.suffix.lower() != ".json":
        return False
    try:
        document = _load(path)
    except (SquadError, OSError, RecursionError):  # RecursionError: JSON nested thousands deep
        return False
    if not isinstance(document, dict) or not isinstance(document.get("data"), list) or not document["data"]:
        return False
    first = document["data"][0]
    return isinstance(first, dict) and isinstance(first.get("paragraphs"), list)


def _load(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: files saved on Windows often start with a BOM
    except UnicodeDecodeError as error:
        raise SquadError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise SquadError(f"{path}:{error.lineno}:{error.colno}: not JSON ({error.msg})") from None


def _answers(path: Path, where: str, question: dict[str, Any]) -> dict[str, list[Any]]:
    """The question's answers in the hub's layout, one list per key, in the file's order (several
    answers may repeat a span: evaluation counts agreement among annotators)."""
    answers: dict[str, list[Any]] = {"text": [], "answer_start": []}
    for n, answer in enumerate(_get(path, where, question, "answers", list)):
        place = f"{where}: answers[{n}]"
        answer = _value(path, place, answer, dict)
        answers["text"].append(_get(path, place, answer, "text", str))
        start = _get(path, place, answer, "answer_start", int)
        if start < 0:  # negative, it would count from the context's end and could even seem to match
            raise SquadError(f'{path}: {place}: "answer_start": expected a character offset from 0, got {start}')
        answers["answer_start"].append(start)
    if "is_impossible" in question:
        # Official v2.0 files keep an unanswerable question's spans in "plausible_answers" (ignored:
        # they are not answers). A file that says one thing and lists another has lost information.
        impossible = _get(path, where, question, "is_impossible", bool)
        if impossible and answers["text"]:
            raise SquadError(
                f'{path}: {where}: "is_impossible" is true but it has {len(answers["text"])} answers; '
                'an unanswerable question\'s spans belong in "plausible_answers"'
            )
        if not impossible and not answers["text"]:
            raise SquadError(f'{path}: {where}: "is_impossible" is false but "answers" is empty')
    return answers


def _get(path: Path, where: str, holder: dict[str, Any], key: str, kind: type[T]) -> T:
    """`holder[key]`, which must be there and be of `kind`."""
    if key not in holder:
        raise SquadError(f"{path}: {where + ': ' if where else ''}no {json.dumps(key)}")
    return _value(path, f"{where + ': ' if where else ''}{json.dumps(key)}", holder[key], kind)


def _value(path: Path, where: str, value: Any, kind: type[T]) -> T:
    # bool is an int to Python, never to a SQuAD file: `"answer_start": true` is a mistake.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise SquadError(f"{path}: {where}: expected {EXPECTED[kind]}, got {_shown(value)}")
    return value


def _shown(value: Any) -> str:
    """A value as a message shows it: scalars as JSON writes them, containers by their kind."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    shown = json.dumps(value, ensure_ascii=False)
    return shown if len(shown) <= 40 else shown[:37] + "..."

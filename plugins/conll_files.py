"""CoNLL column files as people have them: one token per line with its tag in the last column
(2 columns: token tag; 4: token POS chunk tag), tabs or spaces between columns, LF or CRLF,
a blank line between sentences, `-DOCSTART-` lines between documents. Read into sentences that
remember their file and line, so that every problem found later can say where it is."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from xp_plugins.tasks.tag_schemes import split_tag

DOCUMENT_START = "-DOCSTART-"


@dataclasses.dataclass(frozen=True)
class Sentence:
    tokens: tuple[str, ...]
    tags: tuple[str, ...]  # as the file writes them
    line: int  # the line of its first token, from 1


class ConllError(ValueError):
    """A file that is not CoNLL columns; the message starts with file:line."""


def read_sentences(path: Path) -> list[Sentence]:
    """Every sentence of one file, in order; a ConllError at the first line that is not a token
    with its tag, or whose column count differs from the file's first token line."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: a byte-order mark is not a token
    except UnicodeDecodeError as error:
        raise ConllError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    sentences: list[Sentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    first_line = columns = 0

    def end_sentence() -> None:
        if tokens:
            sentences.append(Sentence(tuple(tokens), tuple(tags), first_line))
            tokens.clear()
            tags.clear()

    valid_tags: set[str] = set()  # a file has a few distinct tags: each is checked once
    # split("\n"), not splitlines(): a token may hold a character splitlines() breaks at (\x1c, \u2028)
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()  # CR and spaces at either end, which no column keeps
        if not line:
            end_sentence()
            continue
        # Tab-separated, a column may hold spaces (around its value too); else spaces separate them.
        fields = line.split("\t") if "\t" in line else line.split()
        token, tag = fields[0].rstrip(), fields[-1].lstrip()  # the line's own ends are stripped already
        if token == DOCUMENT_START:
            end_sentence()
            continue
        if len(fields) < 2:
            raise ConllError(
                f"{path}:{number}: one column ({line!r}); expected a token and its tag, "
                "separated by a tab or spaces, and a blank line between sentences"
            )
        if columns and len(fields) != columns:
            raise ConllError(
                f"{path}:{number}: {len(fields)} columns where the file's first token line has {columns}; "
                "a token with a space in it needs tab-separated columns"
            )
        if tag not in valid_tags:
            try:
                split_tag(tag)
            except ValueError as error:
                raise ConllError(f"{path}:{number}: {error}") from None
            valid_tags.add(tag)
        columns = columns or len(fields)
        if not tokens:
            first_line = number
        tokens.append(token)
        tags.append(tag)
    end_sentence()
    return sentences

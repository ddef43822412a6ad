"""Words and the sub-tokens a tokenizer splits them into, both ways: a batch of sentences (lists
of words) tokenized so that every word has a first sub-token, labels placed on sub-tokens from a
tag per word, the words a cut sentence kept, and raw text split into words with the characters
each spans. What token classification needs of any Hugging Face tokenizer."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datasets import Dataset

IGNORED = -100  # what no loss counts and no metric scores: special tokens, a word's later sub-tokens


def words_of(value: Any, tokenizer: Any) -> tuple[list[str], list[tuple[int, int]], str]:
    """A row's words, the characters each spans in the row's text, and that text."""
    if isinstance(value, list):  # words already: their text is the words joined by spaces
        spans, position = [], 0
        for word in value:
            spans.append((position, position + len(word)))
            position += len(word) + 1
        return list(value), spans, " ".join(value)
    pre_tokenizer = getattr(getattr(tokenizer, "backend_tokenizer", None), "pre_tokenizer", None)
    if pre_tokenizer is None:  # a tokenizer without one: words are what whitespace separates
        pieces = [match.span() for match in re.finditer(r"\S+", value)]
    else:
        # A piece is read from the text by its span: a byte-level piece is spelled in bytes
        # ("ĠParis") and spans the space before it, which is no part of the word.
        pieces = [span for _, span in pre_tokenizer.pre_tokenize_str(value)]
    words, spans = [], []
    for start, end in pieces:
        word = value[start:end]
        stripped = word.lstrip()
        start += len(word) - len(stripped)
        word = stripped.rstrip()
        if word:
            words.append(word)
            spans.append((start, start + len(word)))
    return words, spans, value


def words_kept(
    sentences: Sequence[Sequence[str]], encoded: Dataset, tokenizer: Any, *, every_sub_token: bool
) -> list[int]:
    """How many of each sentence's words the model sees: the tags of its encoding, one per word.
    Tagged on every sub-token instead, the sentences of the longest encoding (the cut ones among
    them) are split into sub-tokens again to count the words their tags cover."""
    import numpy as np

    tagged = [int(np.sum(np.asarray(labels) != IGNORED)) for labels in encoded["labels"]]
    if not every_sub_token:
        return tagged
    lengths = [len(ids) for ids in encoded["input_ids"]]
    longest = max(lengths, default=0)
    kept = [len(words) for words in sentences]
    for row in (row for row, length in enumerate(lengths) if length == longest):
        word_ids = sub_tokens(tokenizer, [sentences[row]], add_special_tokens=False).word_ids(0)
        kept[row] = len(set(word_ids[: tagged[row]]))
    return kept


def sub_tokens(tokenizer: Any, sentences: Sequence[Sequence[str]], **options: Any) -> Any:
    """The sentences' words split into sub-tokens (`is_split_into_words`), called with `options`.
    A word the tokenizer turns into nothing (a zero-width space or a soft hyphen, which BERT's
    normalizer removes) stands as the unknown token instead: every word the model sees then has a
    first sub-token, and the tags read back from those stay aligned with the words.

    A byte-level BPE tokenizer (RoBERTa, GPT-2) reads the space before a word as part of it: each
    word is given its space, so that it is split as it is inside a sentence, which is how the
    model saw it in pretraining (`run_ner.py` loads such tokenizers with `add_prefix_space`)."""
    if _spaces_before_words(tokenizer):
        sentences = [[f" {word}" for word in words] for words in sentences]
    encoded = tokenizer(sentences, is_split_into_words=True, **options)
    unknown = getattr(tokenizer, "unk_token", None)
    if unknown is None:
        return encoded
    replaced, vanished = list(sentences), False
    for row, words in enumerate(sentences):
        seen = {word for word in encoded.word_ids(row) if word is not None}
        # A word with no sub-token vanished, or was cut off the end: only tokenizing it alone tells.
        gone = {word for word in range(len(words)) if word not in seen and _vanishes(tokenizer, words[word])}
        if gone:
            replaced[row] = [unknown if position in gone else word for position, word in enumerate(words)]
            vanished = True
    return tokenizer(replaced, is_split_into_words=True, **options) if vanished else encoded


def _spaces_before_words(tokenizer: Any) -> bool:
    """Whether the tokenizer splits text into words with byte-level BPE that adds no space itself."""
    pre_tokenizer = getattr(getattr(tokenizer, "backend_tokenizer", None), "pre_tokenizer", None)
    if pre_tokenizer is None:
        return False
    state = json.loads(pre_tokenizer.__getstate__())
    parts = state.get("pretokenizers", []) if state.get("type") == "Sequence" else [state]
    return any(part.get("type") == "ByteLevel" and not part.get("add_prefix_space") for part in parts)


def _vanishes(tokenizer: Any, word: str) -> bool:
    return not tokenizer([word], is_split_into_words=True, add_special_tokens=False)["input_ids"]


def labels_on_first_sub_tokens(word_ids: Sequence[int | None], tags: Sequence[int]) -> list[int]:
    """A sub-token's label: its word's tag on the word's first sub-token, -100 elsewhere."""
    labels = [IGNORED] * len(word_ids)
    for position in first_sub_tokens(word_ids):
        labels[position] = tags[word_ids[position]]  # type: ignore[index]
    return labels


def labels_on_every_sub_token(word_ids: Sequence[int | None], tags: Sequence[int], inside: Sequence[int]) -> list[int]:
    """A sub-token's label: its word's tag on the word's first sub-token, that tag's `I-` form on
    the word's later ones (`run_ner.py`'s `label_all_tokens`), -100 on special tokens."""
    labels = [IGNORED] * len(word_ids)
    for position, (word, previous) in enumerate(zip(word_ids, [None, *word_ids[:-1]], strict=True)):
        if word is not None:
            labels[position] = tags[word] if word != previous else inside[tags[word]]
    return labels


def first_sub_tokens(word_ids: Sequence[int | None]) -> list[int]:
    """The position of each word's first sub-token, in word order."""
    return [
        position
        for position, (word, previous) in enumerate(zip(word_ids, [None, *word_ids[:-1]], strict=True))
        if word is not None and word != previous
    ]


def model_limit(tokenizer: Any) -> int | None:
    limit = tokenizer.model_max_length
    return limit if limit < 1_000_000 else None

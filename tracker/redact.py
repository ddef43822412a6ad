"""Keeping credentials out of everything xp stores or prints.

A value is secret when its key looks like a credential (token, password, secret, api key, ...),
wherever the key sits in the file (a tag, a plugin option, a nested table); a password inside any
URI is secret too, and so are strings shaped like well-known access tokens. A `Redactor` holds
the secrets of one experiment and replaces each by a marker in any text: params, tags, the TOML
artifacts, the console copy, error messages.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

REDACTED = "***"

# One word of a key (split on . _ - and camelCase) that makes it a credential by itself...
_SECRET_WORDS = {
    "token",
    "password",
    "passwd",
    "pwd",
    "secret",
    "secrets",
    "apikey",
    "credential",
    "credentials",
    "auth",
    "authorization",
    "bearer",
    "cookie",
    "passphrase",
    "privatekey",
}
# ...or two adjacent words ("api_key", "access-key", "privateKey"); "key" alone is no secret
# (label_key, sort_key).
_SECRET_PAIRS = {
    ("api", "key"),
    ("access", "key"),
    ("private", "key"),
    ("secret", "key"),
    ("client", "secret"),
    ("account", "key"),
    ("signing", "key"),
    ("session", "key"),
}
# "token" is an NLP word too: pad_token, token_type_ids and max_tokens name no credential.
_NLP_TOKEN_NEIGHBOURS = {
    "pad",
    "cls",
    "sep",
    "unk",
    "mask",
    "bos",
    "eos",
    "special",
    "start",
    "end",
    "type",
    "types",
    "id",
    "ids",
    "length",
    "count",
    "limit",
    "max",
    "min",
    "num",
}
# user:password@ in a URI of any scheme.
_URI_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@]*:)(?P<password>[^\s@/]+)(?P<at>@)")
# Shapes of widely used access tokens: Hugging Face, GitHub, OpenAI-style, AWS access key ids.
_TOKEN_SHAPES = re.compile(
    r"\b(?:hf_[A-Za-z0-9]{20,}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}"
    r"|sk-[A-Za-z0-9_\-]{20,}|AKIA[0-9A-Z]{16})\b"
)


def key_words(key: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", key)
    return [word for word in re.split(r"[\s._\-/]+", spaced.lower()) if word]


def is_secret_key(key: str) -> bool:
    """True for keys that name credentials: `hf_token`, `password`, `api_key`, `tracking.clientSecret`."""
    words = key_words(key)
    for index, word in enumerate(words):
        neighbours = set(words[max(index - 1, 0) : index] + words[index + 1 : index + 2])
        if word in _SECRET_WORDS and not (word == "token" and neighbours & _NLP_TOKEN_NEIGHBOURS):
            return True
    return any(pair in _SECRET_PAIRS for pair in itertools.pairwise(words))


def mask_uri(text: str) -> str:
    """`postgresql://xp:hunter2@db/mlflow` -> `postgresql://xp:***@db/mlflow`."""
    return _URI_PASSWORD.sub(lambda m: f"{m['head']}{REDACTED}{m['at']}", text)


def secret_values(document: Any, secret: bool = False, key: str = "") -> Iterator[str]:
    """Every string that must not be shown: values under secret keys, URI passwords, token shapes."""
    if isinstance(document, Mapping):
        for name, value in document.items():
            yield from secret_values(value, secret or is_secret_key(str(name)), str(name))
    elif isinstance(document, (list, tuple)):
        for item in document:
            yield from secret_values(item, secret, key)
    elif isinstance(document, str):
        if secret and document:
            yield document
        for match in _URI_PASSWORD.finditer(document):
            yield match["password"]
        yield from _TOKEN_SHAPES.findall(document)
    elif secret and isinstance(document, (int, float)) and not isinstance(document, bool) and len(str(document)) >= 6:
        yield str(document)  # a numeric PIN; short numbers would blank out every step count in the text


@dataclass(frozen=True)
class Redactor:
    """Replaces known secrets, URI passwords and token-shaped strings in any text."""

    secrets: frozenset[str] = frozenset()

    @classmethod
    def of(cls, *documents: Any) -> Redactor:
        return cls(frozenset(value for document in documents for value in secret_values(document)))

    def text(self, text: str) -> str:
        # Longest first, so a secret that contains another is replaced whole.
        for secret in sorted(self.secrets, key=len, reverse=True):
            if len(secret) >= 3:  # a one- or two-character "secret" would blank out half the text
                text = text.replace(secret, REDACTED)
        return _TOKEN_SHAPES.sub(REDACTED, mask_uri(text))

    def document(self, document: Any, secret: bool = False) -> Any:
        """A copy of nested dicts and lists with secret values replaced and strings scrubbed."""
        if isinstance(document, Mapping):
            return {name: self.document(value, secret or is_secret_key(str(name))) for name, value in document.items()}
        if isinstance(document, (list, tuple)):
            return type(document)(self.document(item, secret) for item in document)
        if secret and document is not None and not isinstance(document, bool):
            return REDACTED
        if isinstance(document, str):
            return self.text(document)
        return document

    def lines(self, texts: Iterable[str]) -> list[str]:
        return [self.text(text) for text in texts]

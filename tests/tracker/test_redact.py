"""What counts as a secret, and how it is replaced wherever it would be shown."""

from __future__ import annotations

import pytest

from tracker.redact import REDACTED, Redactor, is_secret_key, mask_uri, secret_values


@pytest.mark.parametrize(
    "key",
    [
        "token",
        "hf_token",
        "HF-TOKEN",
        "password",
        "db_passwd",
        "api_key",
        "apiKey",
        "clientSecret",
        "dataset.secret",
        "access-key",
        "auth",
        "private_key",
        "tracking.credentials",
    ],
)
def test_keys_that_name_credentials_are_secret(key):
    assert is_secret_key(key)


@pytest.mark.parametrize(
    "key",
    [
        "tokenizer",
        "max_length",
        "label_column",
        "sort_key",
        "monkey",
        "key",
        "keyword",
        "use",
        "author",
        "tokenizer.use",
        "pad_token",
        "token_type_ids",
        "max_tokens",
        "eos_token_id",
    ],
)
def test_ordinary_keys_are_not(key):
    assert not is_secret_key(key)


def test_a_uri_password_is_masked_whatever_the_scheme():
    assert mask_uri("postgresql://xp:hunter2@db:5432/mlflow") == f"postgresql://xp:{REDACTED}@db:5432/mlflow"
    assert (
        mask_uri("see https://u:p4ss@host/x and s3://k:s@b/o")
        == f"see https://u:{REDACTED}@host/x and s3://k:{REDACTED}@b/o"
    )
    assert mask_uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"  # a port is no password


def test_secret_values_come_from_secret_keys_anywhere_uris_and_token_shapes():
    document = {
        "experiment": {
            "tags": {"hf_token": "abc123", "team": "nlp"},
            "description": "data at postgresql://u:s3cret@h/db",
        },
        "dataset": {"options": {"nested": {"password": ["one", "two"]}}},
        "model": {"checkpoint": "hf_" + "a" * 30},
    }

    found = set(secret_values(document))

    assert {"abc123", "s3cret", "one", "two", "hf_" + "a" * 30} <= found
    assert "nlp" not in found


def test_a_redactor_replaces_secrets_in_text_and_documents():
    document = {"tags": {"api_key": "k-123456", "team": "nlp"}, "uri": "mysql://a:b-secret@h/d"}
    redactor = Redactor.of(document)

    assert redactor.text("key k-123456 and mysql://a:b-secret@h/d") == f"key {REDACTED} and mysql://a:{REDACTED}@h/d"
    assert redactor.document(document) == {
        "tags": {"api_key": REDACTED, "team": "nlp"},
        "uri": f"mysql://a:{REDACTED}@h/d",
    }
    # Too short to replace in free text without blanking out ordinary words; still hidden as a value.
    assert Redactor.of({"token": "ab"}).document({"token": "ab"}) == {"token": REDACTED}
    assert Redactor.of({"token": "ab"}).text("ab cd") == "ab cd"


def test_numbers_under_secret_keys_are_hidden_and_only_long_ones_searched_in_text():
    redactor = Redactor.of({"password": 20261124, "api_key": 42})
    assert redactor.document({"password": 20261124, "api_key": 42}) == {"password": REDACTED, "api_key": REDACTED}
    assert redactor.text("pin 20261124 at step 42") == f"pin {REDACTED} at step 42"

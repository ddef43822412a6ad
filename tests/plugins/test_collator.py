"""Collator plugins: dynamic padding to the longest row (optionally a multiple), fixed-length padding;
labels that are sequences (a tag per token) padded with what the task says no loss counts."""

from types import SimpleNamespace

import pytest

from tests.declared import problems_of
from tracker.spec.keys import run_rules, spec_of
from xp_plugins.collator import dynamic_padding, fixed_length
from xp_plugins.tasks.sequence_classification import SequenceClassification
from xp_plugins.tokenizer import auto

ONE_LABEL_PER_ROW = SequenceClassification()
A_TAG_PER_TOKEN = SimpleNamespace(label_padding=-100)  # what a token-classification task declares


@pytest.fixture(scope="module")
def encoder(tiny_checkpoint):
    return auto(str(tiny_checkpoint))


@pytest.fixture(scope="module")
def rows(encoder, mrpc_small):
    split = encoder.encode(mrpc_small)["train"]
    return [split[i] for i in range(8)]


def test_dynamic_padding_pads_to_the_longest_row(encoder, rows):
    batch = dynamic_padding(encoder.tokenizer, ONE_LABEL_PER_ROW)(rows)
    longest = max(len(row["input_ids"]) for row in rows)
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (8, longest)
    assert batch["labels"].shape == (8,)
    assert batch["attention_mask"].sum().item() == sum(len(row["input_ids"]) for row in rows)


def test_dynamic_padding_rounds_up_to_a_multiple(encoder, rows):
    batch = dynamic_padding(encoder.tokenizer, ONE_LABEL_PER_ROW, pad_to_multiple_of=16)(rows)
    longest = max(len(row["input_ids"]) for row in rows)
    assert batch["input_ids"].shape[1] == -(-longest // 16) * 16


def test_fixed_length_pads_every_batch_to_max_length(encoder, rows):
    collate = fixed_length(encoder.tokenizer, ONE_LABEL_PER_ROW, max_length=128)
    assert collate(rows)["input_ids"].shape == (8, 128)
    assert collate(rows[:2])["input_ids"].shape == (2, 128)


@pytest.mark.parametrize("multiple", [None, 16])
def test_labels_that_are_sequences_are_padded_with_the_tasks_label_padding(encoder, rows, multiple):
    tagged = [
        {**{key: value.tolist() for key, value in row.items()}, "labels": list(range(len(row["input_ids"])))}
        for row in rows
    ]
    batch = dynamic_padding(encoder.tokenizer, A_TAG_PER_TOKEN, pad_to_multiple_of=multiple)(tagged)
    assert batch["labels"].shape == batch["input_ids"].shape
    for row, labels in zip(tagged, batch["labels"], strict=True):
        tags = len(row["labels"])
        assert labels[:tags].tolist() == row["labels"] and set(labels[tags:].tolist()) <= {-100}


def test_sizes_must_be_positive():
    assert problems_of(dynamic_padding, pad_to_multiple_of=0) == {
        "pad_to_multiple_of": "expected an integer >= 1, got 0"
    }
    assert problems_of(fixed_length, max_length=0) == {"max_length": "expected an integer >= 1, got 0"}
    assert problems_of(fixed_length, max_length=64.0) == {"max_length": "expected an integer >= 1, got 64.0"}
    assert problems_of(dynamic_padding, pad_to_multiple_of=8) == problems_of(dynamic_padding) == {}


def test_a_fixed_length_needs_the_tokenizer_to_truncate_to_it():
    rules = spec_of(fixed_length).experiment_rules
    assert run_rules(rules, {"max_length": 64}, {"tokenizer": {"use": "auto", "max_length": 64}}) == []
    for tokenizer in ({"max_length": 128}, {"max_length": None}, {"max_length": 32, "truncation": False}):
        [(key, message)] = run_rules(rules, {"max_length": 64}, {"tokenizer": {"use": "auto", **tokenizer}})
        assert key == "max_length" and "[tokenizer] max_length" in message

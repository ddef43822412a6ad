"""Length-grouped batching (`group_by_length = true`) in the `loop` and `accelerate` runners.

Dynamic padding pads each batch to its longest row; grouping rows of similar length first makes
that longest row close to the others. Each epoch still sees every row once, in a seeded order.
"""

from __future__ import annotations

import pytest

from xp_plugins.runner.training_loop import make_loader


@pytest.fixture(scope="module")
def encoded_train(mrpc_path, tiny_checkpoint):
    """200 MRPC training pairs tokenized as the `auto` tokenizer plugin does, and its collator."""
    from transformers import AutoTokenizer, DataCollatorWithPadding

    from xp_plugins.dataset import hf
    from xp_plugins.tasks.sequence_classification import SequenceClassification
    from xp_plugins.tokenizer import auto

    task = hf(
        SequenceClassification(),
        0,
        path=str(mrpc_path),
        text_columns=["sentence1", "sentence2"],
        max_rows={"train": 200},
    )
    encoder = auto(str(tiny_checkpoint))
    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    return encoder.encode(task)["train"], DataCollatorWithPadding(tokenizer)


def one_epoch(loader):
    return list(loader)


def pad_fraction(batches) -> float:
    masks = [batch["attention_mask"] for batch in batches]
    return sum(int((mask == 0).sum()) for mask in masks) / sum(mask.numel() for mask in masks)


def row_ids(batches) -> list[tuple[int, ...]]:
    return sorted(tuple(row[row != 0].tolist()) for batch in batches for row in batch["input_ids"])


def test_grouped_batches_pad_far_less_than_shuffled_ones(encoded_train):
    data, collator = encoded_train
    shuffled = one_epoch(make_loader(data, 8, collator, shuffle=True, seed=1))
    grouped = one_epoch(make_loader(data, 8, collator, shuffle=True, seed=1, group_by_length=True))
    assert pad_fraction(grouped) < pad_fraction(shuffled) / 2


def test_a_grouped_epoch_sees_every_row_once(encoded_train):
    data, collator = encoded_train
    shuffled = one_epoch(make_loader(data, 8, collator, shuffle=True, seed=1))
    grouped = one_epoch(make_loader(data, 8, collator, shuffle=True, seed=1, group_by_length=True))
    assert len(grouped) == len(shuffled) == 25
    assert row_ids(grouped) == row_ids(shuffled)


def test_grouped_order_follows_the_seed_and_changes_every_epoch(encoded_train):
    data, collator = encoded_train

    def first_rows(loader):
        return [batch["input_ids"][0].tolist() for batch in loader]

    loader = make_loader(data, 8, collator, shuffle=True, seed=1, group_by_length=True)
    epoch_one, epoch_two = first_rows(loader), first_rows(loader)
    assert epoch_one != epoch_two
    assert first_rows(make_loader(data, 8, collator, shuffle=True, seed=1, group_by_length=True)) == epoch_one
    assert first_rows(make_loader(data, 8, collator, shuffle=True, seed=2, group_by_length=True)) != epoch_one


def test_evaluation_loaders_are_never_grouped(encoded_train):
    data, collator = encoded_train
    plain = one_epoch(make_loader(data, 8, collator, shuffle=False, seed=1))
    asked = one_epoch(make_loader(data, 8, collator, shuffle=False, seed=1, group_by_length=True))
    assert all((a["input_ids"] == b["input_ids"]).all() for a, b in zip(plain, asked, strict=True))

"""Evaluation takes outputs of any shape: batches whose rows have per-token predictions of different
lengths are padded to one width with -100, in row order, and nothing padded is counted."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from xp_plugins.runner.backends import PlainBackend
from xp_plugins.runner.evaluation import PAD, concatenated, predict


class PerTokenModel:
    """Stands in for a token classifier: 3 tags, the tag of each token its id modulo 3."""

    def __init__(self):
        import torch

        self.torch = torch

    def eval(self):
        return self

    def train(self):
        return self

    def __call__(self, input_ids, attention_mask, labels):
        logits = self.torch.nn.functional.one_hot(input_ids % 3, 3).float()
        return SimpleNamespace(logits=logits, loss=self.torch.tensor(0.5))


class PerTokenTask:
    """Decodes a tag per token, scored by its probability; padding tokens get -100."""

    def decode(self, logits):
        scores, tags = logits.softmax(-1).max(-1)
        return tags, scores


def test_batches_of_different_widths_are_padded_to_the_widest():
    import torch

    joined = concatenated([torch.tensor([[1, 2]]), torch.tensor([[3, 4, 5], [6, 7, 8]]), torch.tensor([9])[None]])
    assert joined.tolist() == [[1, 2, PAD], [3, 4, 5], [6, 7, 8], [9, PAD, PAD]]


def test_one_value_per_row_is_joined_as_it_is():
    import torch

    assert concatenated([torch.tensor([0, 1]), torch.tensor([2])]).tolist() == [0, 1, 2]


def test_per_token_predictions_of_batches_of_different_lengths_are_gathered_in_row_order():
    import torch

    batches = [
        {"input_ids": torch.tensor([[4, 5]]), "attention_mask": torch.ones(1, 2), "labels": torch.tensor([[1, 2]])},
        {
            "input_ids": torch.tensor([[6, 7, 8], [9, 10, 11]]),
            "attention_mask": torch.ones(2, 3),
            "labels": torch.tensor([[0, 1, 2], [0, 1, 2]]),
        },
    ]
    backend = PlainBackend(SimpleNamespace(device="cpu", precision="fp32"), accumulation_steps=1)
    result = predict(PerTokenModel(), batches, backend, PerTokenTask())
    assert result.predictions.tolist() == [[1, 2, PAD], [0, 1, 2], [0, 1, 2]]
    assert result.references.tolist() == [[1, 2, PAD], [0, 1, 2], [0, 1, 2]]
    assert result.scores.shape == (3, 3) and (result.scores[0, 2] == PAD)
    assert result.loss == pytest.approx(0.5)

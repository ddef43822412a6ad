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

    config = SimpleNamespace()  # no keys_to_ignore_at_inference

    def __call__(self, input_ids, attention_mask, labels):
        from transformers.modeling_outputs import TokenClassifierOutput

        logits = self.torch.nn.functional.one_hot(input_ids % 3, 3).float()
        return TokenClassifierOutput(loss=self.torch.tensor(0.5), logits=logits)


class PerTokenTask:
    """Decodes a tag per token, scored by its probability; padding tokens get -100."""

    def decode(self, outputs):
        (logits,) = outputs
        scores, tags = logits.softmax(-1).max(-1)
        return tags, scores


class SpanModel(PerTokenModel):
    """Stands in for an extractive question answerer: the answer starts at the row's largest
    input id and ends at its smallest."""

    def __call__(self, input_ids, attention_mask, labels):
        from transformers.modeling_outputs import QuestionAnsweringModelOutput

        ids = input_ids.float()
        return QuestionAnsweringModelOutput(loss=self.torch.tensor(0.25), start_logits=ids, end_logits=-ids)


class SpanTask:
    """Decodes (start, end) token positions per row, from the two outputs in their order."""

    def decode(self, outputs):
        import torch

        start_logits, end_logits = outputs
        spans = torch.stack([start_logits.argmax(-1), end_logits.argmax(-1)], dim=-1)
        return spans, torch.ones(len(spans))


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


def test_a_task_is_given_every_output_after_the_loss_in_order():
    """Question answering's two outputs (start and end logits) reach the task together."""
    import torch

    batches = [
        {"input_ids": torch.tensor([[3, 9, 1]]), "attention_mask": torch.ones(1, 3), "labels": torch.tensor([[1, 2]])},
        {
            "input_ids": torch.tensor([[7, 2, 5, 8]]),
            "attention_mask": torch.ones(1, 4),
            "labels": torch.tensor([[3, 1]]),
        },
    ]
    backend = PlainBackend(SimpleNamespace(device="cpu", precision="fp32"), accumulation_steps=1)
    result = predict(SpanModel(), batches, backend, SpanTask())
    assert result.predictions.tolist() == [[1, 2], [3, 1]]

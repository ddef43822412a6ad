"""The `lora` adapter: which layers it adapts and which modules it trains whole for each task's
head, what it says of a layer name no module has, what a checkpoint of an adapter run holds, and
how a saved adapter is put back on its base model."""

from __future__ import annotations

import pytest
import torch
import transformers
from transformers import BertConfig, DistilBertConfig

from tests.declared import problems_of
from tracker.errors import BuildError
from tracker.task import Head
from xp_plugins.adapter import lora
from xp_plugins.runner.loop_state import load_trained_state, trained_state

TINY_BERT = {"vocab_size": 99, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2}


def tiny(auto_class: str, config=None, **head_config):
    torch.manual_seed(0)
    config = config or BertConfig(**TINY_BERT, intermediate_size=20, **head_config)
    return getattr(transformers, auto_class).from_config(config)


def adapted(auto_class: str = "AutoModelForSequenceClassification", **options):
    defaults = {"r": 2, "alpha": 4, "dropout": 0.0}
    return lora(**{**defaults, **options}).attach(tiny(auto_class), Head(auto_class))


def trainable(model) -> set[str]:
    return {name for name, param in model.named_parameters() if param.requires_grad}


@pytest.mark.parametrize(
    ("auto_class", "head"),
    [
        ("AutoModelForSequenceClassification", "classifier"),
        ("AutoModelForTokenClassification", "classifier"),
        ("AutoModelForQuestionAnswering", "qa_outputs"),
    ],
)
def test_each_tasks_head_trains_whole_beside_the_adapted_attention_projections(auto_class, head):
    model = adapted(auto_class)
    names = trainable(model)
    adapted_layers = {name.split(".lora_")[0].rsplit(".", 1)[-1] for name in names if ".lora_" in name}
    assert adapted_layers == {"query", "value"}  # PEFT's choice for BERT: its attention projections
    assert any(f"{head}.modules_to_save" in name for name in names), names
    assert not any("embeddings" in name or ".key." in name or "intermediate" in name for name in names)
    total = sum(param.numel() for param in model.parameters())
    assert sum(param.numel() for param in model.parameters() if param.requires_grad) < 0.05 * total


def test_the_adapter_trains_exactly_the_layers_named_full_or_short():
    short = adapted(target_modules=["key"])
    full = adapted(target_modules=["bert.encoder.layer.1.attention.self.key"])
    assert {name.split(".lora_")[0] for name in trainable(short) if ".lora_" in name} == {
        "base_model.model.bert.encoder.layer.0.attention.self.key",
        "base_model.model.bert.encoder.layer.1.attention.self.key",
    }
    assert {name.split(".lora_")[0] for name in trainable(full) if ".lora_" in name} == {
        "base_model.model.bert.encoder.layer.1.attention.self.key"
    }


def test_a_layer_name_no_module_has_is_refused_with_the_names_there_are():
    with pytest.raises(BuildError) as refused:
        adapted(target_modules=["qurey"])
    assert refused.value.key == "target_modules"
    message = refused.value.message
    assert message.startswith('"qurey" names no module of BertForSequenceClassification (did you mean "query"?)')
    for layer in ("query", "key", "value", "dense", "classifier", "word_embeddings"):
        assert f'"{layer}"' in message


def test_a_module_to_save_that_does_not_exist_is_refused_too():
    with pytest.raises(BuildError) as refused:
        adapted(modules_to_save=["pooler", "clasifier"])
    assert refused.value.key == "modules_to_save"
    assert '"clasifier" names no module of BertForSequenceClassification (did you mean "classifier"?)' in str(
        refused.value.message
    )


def test_a_model_type_without_a_default_asks_for_its_layers_by_name():
    config = DistilBertConfig(vocab_size=99, dim=16, n_layers=1, n_heads=2, hidden_dim=20)
    model = tiny("AutoModelForSequenceClassification", config)
    with pytest.raises(BuildError) as refused:
        lora(r=2).attach(model, Head("AutoModelForSequenceClassification"))
    assert refused.value.key == "target_modules"
    assert 'no default layers for the model type "distilbert"' in refused.value.message
    assert '"q_lin"' in refused.value.message and '"v_lin"' in refused.value.message
    named = lora(r=2, target_modules=["q_lin", "v_lin"]).attach(
        tiny("AutoModelForSequenceClassification", config), Head("AutoModelForSequenceClassification")
    )
    assert any("q_lin.lora_A" in name for name in trainable(named))


def test_a_head_peft_does_not_know_needs_its_modules_named():
    head = Head("AutoModelForMaskedLM")
    with pytest.raises(BuildError) as refused:
        lora(r=2).attach(tiny("AutoModelForMaskedLM"), head)
    assert refused.value.key == "modules_to_save"
    assert '"bert"' in refused.value.message and '"cls"' in refused.value.message
    model = lora(r=2, modules_to_save=["cls"]).attach(tiny("AutoModelForMaskedLM"), head)
    assert any("cls.modules_to_save" in name for name in trainable(model))


def test_the_keys_are_checked_before_anything_is_built():
    assert problems_of(lora, r=0) == {"r": "expected an integer >= 1, got 0"}
    assert set(problems_of(lora, dropout=1.0)) == {"dropout"}
    assert set(problems_of(lora, bias="some")) == {"bias"}
    assert set(problems_of(lora, target_modules=[])) == {"target_modules"}
    assert problems_of(lora, dropout=0, target_modules=["query"], modules_to_save=["classifier"]) == {}


def test_a_checkpoint_of_an_adapter_run_holds_what_training_changes_and_puts_it_back():
    model = adapted()
    state = trained_state(model)
    assert state and all(".lora_" in name or "modules_to_save" in name for name in state), sorted(state)
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(1.0)
    rebuilt = adapted()
    assert not torch.equal(rebuilt.state_dict()[next(iter(state))], model.state_dict()[next(iter(state))])
    load_trained_state(rebuilt, trained_state(model))
    for name, value in model.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[name], value), name


def test_a_checkpoint_that_does_not_fit_the_model_is_refused():
    with pytest.raises(RuntimeError, match="does not fit the model"):
        load_trained_state(adapted(), trained_state(adapted(target_modules=["key"])))


def test_a_saved_adapter_loads_on_its_base_merged_and_predicts_as_it_did(tmp_path):
    base_folder = tmp_path / "base"
    tiny("AutoModel").save_pretrained(base_folder)
    head = Head("AutoModelForSequenceClassification")
    adapter = lora(r=2, alpha=4, dropout=0.0)
    torch.manual_seed(1)
    model = adapter.attach(
        transformers.AutoModelForSequenceClassification.from_pretrained(base_folder, num_labels=3), head
    )
    with torch.no_grad():  # as if trained: the adapter's B starts at zero
        for param in model.parameters():
            if param.requires_grad:
                param.normal_()
    inputs = {"input_ids": torch.tensor([[1, 5, 7, 2]]), "attention_mask": torch.ones(1, 4, dtype=torch.long)}
    model.eval()
    expected = model(**inputs).logits
    saved = tmp_path / "model"
    model.save_pretrained(saved)
    adapter.save(model, saved)

    loaded = adapter.load(saved, head.auto_class, None)
    assert not hasattr(loaded, "peft_config"), "merged: a plain transformers model"
    assert loaded.config.num_labels == 3
    torch.testing.assert_close(loaded.eval()(**inputs).logits, expected)

    moved = tmp_path / "moved"
    base_folder.rename(moved)
    with pytest.raises(FileNotFoundError) as missing:
        adapter.load(saved, head.auto_class, None)
    assert f'trained on the base model "{base_folder}", which is not here' in str(missing.value)
    assert "--base-model" in str(missing.value) and "model_config" in str(missing.value)
    torch.testing.assert_close(adapter.load(saved, head.auto_class, str(moved)).eval()(**inputs).logits, expected)

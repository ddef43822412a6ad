"""Experiment settings as MLflow params: dotted keys, redacted secrets, MLflow's length limit."""
from __future__ import annotations

from tracker.params import MAX_VALUE_LENGTH, REDACTED, as_params, flatten, is_secret


def test_nested_tables_flatten_to_dotted_keys_and_arrays_to_text():
    params, overflow = as_params({"optimizer": {"lr": 5e-5, "betas": [0.9, 0.999]},
                                  "dataset": {"max_rows": {"train": 32}, "text_columns": ["a", "b"]},
                                  "runner": {"progress_bar": False, "max_steps": None}})
    assert params == {"optimizer.lr": "5e-05", "optimizer.betas": "[0.9, 0.999]", "dataset.max_rows.train": "32",
                      "dataset.text_columns": "[a, b]", "runner.progress_bar": "false"}
    assert overflow == {}
    assert dict(flatten({"a": {}, "b": None})) == {"a": {}}  # an empty table is kept, None skipped


def test_secret_looking_keys_are_redacted():
    params, _ = as_params({"hub": {"token": "hf_abc", "hf_token": "hf_def", "api_key": "k", "password": "p"},
                           "tokenizer": {"use": "auto", "max_length": 128}})
    assert params["hub.token"] == params["hub.hf_token"] == params["hub.api_key"] == params["hub.password"] == REDACTED
    assert params["tokenizer.use"] == "auto" and params["tokenizer.max_length"] == "128"
    assert not is_secret("tokenizer.use") and not is_secret("tokenizer.max_length")
    assert is_secret("HF-TOKEN") and is_secret("dataset.secret")


def test_values_too_long_for_a_param_overflow_with_a_note():
    long_value = "x" * (MAX_VALUE_LENGTH + 1)
    params, overflow = as_params({"experiment": {"description": long_value}})
    assert overflow == {"experiment.description": long_value}
    note = params["experiment.description"]
    assert len(note) == MAX_VALUE_LENGTH
    assert note.endswith("full value in artifact params/experiment.description.txt)")
    params, overflow = as_params({"experiment": {"description": "x" * MAX_VALUE_LENGTH}})
    assert overflow == {} and len(params["experiment.description"]) == MAX_VALUE_LENGTH

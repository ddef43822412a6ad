"""Experiment settings as MLflow params: dotted keys and MLflow's length limit (secrets are
replaced before: tests/tracker/test_redact.py)."""

from __future__ import annotations

from tracker.params import MAX_VALUE_LENGTH, as_params, flatten


def test_nested_tables_flatten_to_dotted_keys_and_arrays_to_text():
    params, overflow = as_params(
        {
            "optimizer": {"lr": 5e-5, "betas": [0.9, 0.999]},
            "dataset": {"max_rows": {"train": 32}, "text_columns": ["a", "b"]},
            "runner": {"progress_bar": False, "max_steps": None},
        }
    )
    assert params == {
        "optimizer.lr": "5e-05",
        "optimizer.betas": "[0.9, 0.999]",
        "dataset.max_rows.train": "32",
        "dataset.text_columns": "[a, b]",
        "runner.progress_bar": "false",
    }
    assert overflow == {}
    assert dict(flatten({"a": {}, "b": None})) == {"a": {}}  # an empty table is kept, None skipped


def test_values_too_long_for_a_param_overflow_with_a_note():
    long_value = "x" * (MAX_VALUE_LENGTH + 1)
    params, overflow = as_params({"experiment": {"description": long_value}})
    assert overflow == {"experiment.description": long_value}
    note = params["experiment.description"]
    assert len(note) == MAX_VALUE_LENGTH
    assert note.endswith("full value in artifact params/experiment.description.txt)")
    params, overflow = as_params({"experiment": {"description": "x" * MAX_VALUE_LENGTH}})
    assert overflow == {} and len(params["experiment.description"]) == MAX_VALUE_LENGTH

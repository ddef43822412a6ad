"""Writing resolved experiments as TOML: whatever `dumps` writes, tomllib reads back the same."""

from __future__ import annotations

import math
import sys

import pytest

from tracker.tomlwrite import dumps

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@pytest.mark.parametrize(
    "text",
    [
        "plain",
        "",
        'say "hello"',
        "back\\slash C:\\data\\mrpc",
        "multi\nline\ttabbed",
        "café, naïve, 東京, emoji 🤗",
        "control \x01 and delete \x7f",
    ],
)
def test_strings_round_trip(text):
    document = {"experiment": {"description": text}}

    assert tomllib.loads(dumps(document)) == document


@pytest.mark.parametrize("number", [5e-5, 3e-05, 0.1, 1.0, -0.0, 1e16, 123456789.123])
def test_floats_round_trip_exactly_and_stay_floats(number):
    value = tomllib.loads(dumps({"optimizer": {"lr": number}}))["optimizer"]["lr"]

    assert value == number and isinstance(value, float)


def test_special_floats():
    loaded = tomllib.loads(dumps({"t": {"a": math.inf, "b": -math.inf, "c": math.nan}}))["t"]

    assert loaded["a"] == math.inf and loaded["b"] == -math.inf and math.isnan(loaded["c"])


def test_ints_bools_arrays_and_tuples():
    document = {"t": {"epochs": 3, "enabled": True, "off": False, "columns": ["a", "b"], "betas": (0.9, 0.999)}}

    assert tomllib.loads(dumps(document)) == {"t": {**document["t"], "betas": [0.9, 0.999]}}


def test_nested_tables_are_written_after_the_keys_of_their_parent():
    document = {"metrics": {"f1": {"average": "macro"}, "use": ["accuracy", "f1"]}}

    text = dumps(document)

    assert text == '[metrics]\nuse = ["accuracy", "f1"]\n\n[metrics.f1]\naverage = "macro"\n'
    assert tomllib.loads(text) == document


def test_deeply_nested_and_inline_tables():
    document = {"model": {"config_overrides": {"attention": {"dropout": 0.1}}, "labels": [{"id": 0}], "empty": {}}}

    assert tomllib.loads(dumps(document)) == document


def test_keys_that_are_not_bare_are_quoted():
    document = {"experiment": {"tags": {"team name": "nlp", "a.b": "x", "ключ": "значение"}}}

    assert tomllib.loads(dumps(document)) == document


def test_none_is_shown_as_a_comment_and_left_out():
    text = dumps({"hardware": {"device": "auto", "cpu_threads": None}})

    assert "# cpu_threads is not set" in text
    assert tomllib.loads(text) == {"hardware": {"device": "auto"}}


def test_a_value_toml_cannot_hold_is_an_error():
    with pytest.raises(TypeError, match="cannot write object as TOML"):
        dumps({"t": {"x": object()}})


def test_the_written_text_is_stable_because_run_names_hash_it():
    """Run names end in a hash of this text: the same experiment must keep writing the same bytes."""
    document = {
        "dataset": {"use": "hf", "data_files": {"train": "a.csv"}, "name": None, "max_rows": {"train": 8}},
        "model": {"config_overrides": {"attention": {"dropout": 0.1}}},
        "metrics": {"use": ["accuracy"], "labels": [{"id": 0, "name": None}], "empty": {}, "lr": 5e-05},
    }

    assert dumps(document) == (
        '[dataset]\nuse = "hf"\n# name is not set\n\n'
        '[dataset.data_files]\ntrain = "a.csv"\n\n'
        "[dataset.max_rows]\ntrain = 8\n\n"
        "[model]\n\n"
        "[model.config_overrides]\n\n"
        "[model.config_overrides.attention]\ndropout = 0.1\n\n"
        '[metrics]\nuse = ["accuracy"]\nlabels = [{id = 0}]\nempty = {}\nlr = 5e-05\n'
    )


def test_comments_for_unset_keys_stay_in_their_own_table():
    text = dumps({"dataset": {"data_files": {"train": "a.csv"}, "revision": None}})

    assert text.index("# revision is not set") < text.index("[dataset.data_files]")


def test_keys_beyond_ascii_are_written_as_they_are():
    assert (
        dumps({"experiment": {"tags": {"ключ": "значение"}}})
        == '[experiment]\n\n[experiment.tags]\n"ключ" = "значение"\n'
    )

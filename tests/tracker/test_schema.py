"""A factory's signature as the schema of its TOML section, and TOML values checked against it.

This module uses `from __future__ import annotations`, so every annotation below is a string,
as in most plugins: keys_of must evaluate them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Optional

import pytest

from tracker.spec.keys import REQUIRED, Key, conform, describe_type, describe_value, keys_of, positional_names


def fake_adam(model: "torch.nn.Module", *, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),  # noqa: F821
              schedule: Literal["constant", "linear"] = "constant", name: str):
    """A factory whose positional parameter has a heavy annotation that is never imported."""


@dataclass(kw_only=True)
class TrainingOptions:
    """A kw_only dataclass works as a factory: its fields are the keys."""

    epochs: int = 3
    batch_size: int
    label_smoothing: float | None = None


# --- keys_of ---------------------------------------------------------------------------------

def test_keys_are_the_keyword_only_parameters_in_order():
    keys = keys_of(fake_adam)

    assert list(keys) == ["lr", "betas", "schedule", "name"]  # `model` comes from the runner
    assert keys["lr"] == Key("lr", float, 1e-3)
    assert keys["betas"].annotation == tuple[float, float]
    assert keys["schedule"].annotation == Literal["constant", "linear"]


def test_a_key_without_default_is_required():
    keys = keys_of(fake_adam)

    assert keys["name"].required and keys["name"].default is REQUIRED
    assert not keys["lr"].required


def test_keys_of_a_kw_only_dataclass():
    keys = keys_of(TrainingOptions)

    assert list(keys) == ["epochs", "batch_size", "label_smoothing"]
    assert keys["epochs"] == Key("epochs", int, 3)
    assert keys["batch_size"].required
    assert keys["label_smoothing"].annotation == float | None


def test_unannotated_and_unresolvable_annotations_accept_anything():
    def factory(*, plain=1, exotic: NotImportedHere = None):  # noqa: F821
        """Neither key can be checked."""

    keys = keys_of(factory)

    assert keys["plain"].annotation is Any
    assert keys["exotic"].annotation is Any


def test_positional_names_are_what_the_runner_supplies():
    def scheduler(optimizer, num_training_steps: int, *, warmup_ratio: float = 0.0):
        """Positional first, then keys."""

    assert positional_names(scheduler) == ["optimizer", "num_training_steps"]
    assert positional_names(fake_adam) == ["model"]


def test_type_text_of_a_key():
    assert keys_of(fake_adam)["lr"].type_text == "a number"


# --- conform: accepted values, converted to what the factory expects ------------------------

@pytest.mark.parametrize(
    ("value", "annotation", "expected"),
    [
        (3, float, 3.0),  # an integer is a fine number
        (3e-5, float, 3e-5),
        (3, int, 3),
        (True, bool, True),
        ("adamw", str, "adamw"),
        ("linear", Literal["constant", "linear"], "linear"),
        (None, Optional[int], None),
        (4, int | None, 4),
        (1, float | None, 1.0),
        (["sentence1", "sentence2"], list[str], ["sentence1", "sentence2"]),
        ([0.9, 1], tuple[float, float], (0.9, 1.0)),  # an array becomes a tuple, items converted
        ([1, 2, 3], tuple[int, ...], (1, 2, 3)),
        ([], list[int], []),
        ({"train": 500, "eval": 100}, dict[str, int], {"train": 500, "eval": 100}),
        ({"train": 1}, dict[str, float], {"train": 1.0}),
        ("s", str | list[str], "s"),
        (["a", "b"], str | list[str], ["a", "b"]),
        ({"anything": [1, "x"]}, Any, {"anything": [1, "x"]}),
        ([1, "x"], list, [1, "x"]),
        ({"a": 1}, dict, {"a": 1}),
    ],
)
def test_conform_accepts_and_converts(value, annotation, expected):
    converted, error = conform(value, annotation)

    assert error is None
    assert converted == expected
    assert type(converted) is type(expected)


def test_conform_with_string_annotations_from_keys_of():
    keys = keys_of(fake_adam)

    assert conform(1, keys["lr"].annotation) == (1.0, None)
    assert conform([0.8, 0.9], keys["betas"].annotation) == ((0.8, 0.9), None)


# --- conform: rejected values and what the message says --------------------------------------

@pytest.mark.parametrize(
    ("value", "annotation", "message"),
    [
        ("fast", float, 'expected a number, got "fast"'),
        ("5e-5", float, 'expected a number, got "5e-5"'),
        (True, float, "expected a number, got true"),
        (True, int, "expected an integer, got true"),  # a bool is an int in Python, not in TOML
        (2.5, int, "expected an integer, got 2.5"),
        (1, bool, "expected true or false, got 1"),
        (1, str, "expected a string, got 1"),
        ("cos", Literal["constant", "linear"], 'expected one of "constant", "linear", got "cos"'),
        (1, Literal[True, False], "expected one of true, false, got 1"),  # compared with its type
        ("x", int | None, 'expected an integer, got "x"'),
        ("sentence1", list[str], 'expected an array of strings, got "sentence1"'),
        (["a", 1], list[str], 'expected an array of strings, got an array ["a", 1]'),
        ([0.9], tuple[float, float], "expected an array of 2 (a number, a number), got an array [0.9]"),
        ({"train": "all"}, dict[str, int], "expected a table of integers, got a table"),
        ([1, 2], dict[str, int], "expected a table of integers, got an array [1, 2]"),
        (3, str | list[str], "expected a string or an array of strings, got 3"),
    ],
)
def test_conform_rejects_with_a_message(value, annotation, message):
    converted, error = conform(value, annotation)

    assert error == message
    assert converted == value  # returned unchanged


def test_conform_checks_plain_classes_with_isinstance():
    class Path:
        pass

    assert conform(Path(), Path)[1] is None
    assert conform("a/b", Path)[1] == 'expected Path, got "a/b"'


# --- words for types and values ---------------------------------------------------------------

@pytest.mark.parametrize(
    ("annotation", "text"),
    [
        (float, "a number"),
        (int, "an integer"),
        (str, "a string"),
        (bool, "true or false"),
        (Any, "any value"),
        (int | None, "an integer"),
        (Optional[str], "a string"),
        (Literal["fp32", "fp16"], 'one of "fp32", "fp16"'),
        (Literal[1, 2], "one of 1, 2"),
        (list[str], "an array of strings"),
        (list[int], "an array of integers"),
        (list, "an array of any value"),
        (tuple[float, float], "an array of 2 (a number, a number)"),
        (tuple[int, ...], "an array of integers"),
        (dict[str, int], "a table of integers"),
        (dict[str, Any], "a table of any value"),
        (dict, "a table"),
        (str | list[str], "a string or an array of strings"),
    ],
)
def test_describe_type(annotation, text):
    assert describe_type(annotation) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("fast", '"fast"'),
        (True, "true"),
        (False, "false"),
        (3, "3"),
        (3e-5, "3e-05"),
        ({"a": 1}, "a table"),
        ([1, 2], "an array [1, 2]"),
        (["sentence1", "sentence2"], 'an array ["sentence1", "sentence2"]'),
        (list(range(30)), "an array"),  # long arrays are not spelt out
    ],
)
def test_describe_value(value, text):
    assert describe_value(value) == text

"""A factory's signature as the schema of its TOML section (tracker/spec/keys.py), and the words
that describe it (tracker/spec/words.py).

This module uses `from __future__ import annotations`, so every annotation below is a string,
as in most plugins: spec_of must evaluate them.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import pytest

from tracker.spec.declare import Annotated, Field, NonNegativeFloat, PositiveInt, Ratio, rules
from tracker.spec.keys import REQUIRED, SpecError, positional_names, run_rules, spec_of
from tracker.spec.words import describe_schema, describe_value

if TYPE_CHECKING:  # for type checkers only, as plugins import torch: never imported when the tests run
    import torch


def fake_adam(
    model: torch.nn.Module,
    *,
    lr: Annotated[float, Field(gt=0, description="step size")] = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    schedule: Literal["constant", "linear"] = "constant",
    name: str,
):
    """A factory whose positional parameter has a heavy annotation that is never imported at run time."""


@dataclass(kw_only=True)
class TrainingOptions:
    """A kw_only dataclass works as a factory: its fields are the keys."""

    epochs: PositiveInt = 3
    batch_size: int
    label_smoothing: Ratio | None = None
    shuffle: bool = True


@dataclass(kw_only=True)
class MoreOptions(TrainingOptions):
    """A subclass keeps its parent's keys, whose annotations live in the parent's module."""

    patience: PositiveInt = 2


class Opaque:
    """A type no TOML value can be."""


# A parent declared in another module, under a name (`Count`) this module does not have.
PARENT_MODULE = """
from __future__ import annotations

from dataclasses import dataclass

from tracker.spec.declare import PositiveInt as Count


@dataclass(kw_only=True)
class Parent:
    epochs: Count = 3
"""


def check(factory, **table):
    return spec_of(factory).check(table)


# --- reading a signature --------------------------------------------------------------------------


def test_keys_are_the_keyword_only_parameters_in_order():
    keys = spec_of(fake_adam).keys

    assert list(keys) == ["lr", "betas", "schedule", "name"]  # `model` comes from the runner
    assert keys["lr"].default == 1e-3 and keys["lr"].description == "step size"
    assert keys["name"].required and keys["name"].default is REQUIRED and not keys["lr"].required


def test_keys_of_a_kw_only_dataclass_and_of_its_subclass():
    assert list(spec_of(TrainingOptions).keys) == ["epochs", "batch_size", "label_smoothing", "shuffle"]
    assert list(spec_of(MoreOptions).keys) == ["epochs", "batch_size", "label_smoothing", "shuffle", "patience"]
    assert spec_of(MoreOptions).keys["label_smoothing"].type_text == "a number in [0, 1]"
    assert spec_of(MoreOptions).keys["batch_size"].required


def test_an_inherited_key_is_read_in_the_module_that_declares_it(monkeypatch):
    parent = types.ModuleType("xp_tests_parent_options")
    monkeypatch.setitem(sys.modules, parent.__name__, parent)
    exec(PARENT_MODULE, vars(parent))

    @dataclass(kw_only=True)
    class Child(parent.Parent):
        patience: PositiveInt = 2

    keys = spec_of(Child).keys
    assert list(keys) == ["epochs", "patience"]
    assert keys["epochs"].type_text == keys["patience"].type_text == "an integer >= 1"


def test_an_unannotated_key_takes_any_value():
    def factory(*, plain=1):
        """Nothing to check."""

    assert spec_of(factory).keys["plain"].type_text == "any value"
    assert check(factory, plain={"a": [1, "b"]}) == ({"plain": {"a": [1, "b"]}}, [])


def test_an_annotation_that_cannot_be_resolved_is_a_plugin_error():
    def factory(*, exotic: NotImportedHere = None):  # noqa: F821
        """A typo in an annotation must not silently turn checking off."""

    with pytest.raises(SpecError, match='key "exotic"'):
        spec_of(factory)


def test_a_type_xp_cannot_check_is_a_plugin_error():
    def factory(*, thing: Opaque = None):
        """TOML has no such values."""

    with pytest.raises(SpecError, match="has a key type xp cannot check"):
        spec_of(factory)


def test_positional_names_are_what_the_runner_supplies():
    def scheduler(optimizer, num_training_steps: int, *, warmup_ratio: float = 0.0):
        """Positional first, then keys."""

    assert positional_names(scheduler) == ["optimizer", "num_training_steps"]
    assert positional_names(fake_adam) == ["model"]


# --- checking a table: TOML's types mean what they say ---------------------------------------------


def test_defaults_fill_in_and_values_convert_to_what_the_factory_expects():
    options, problems = check(fake_adam, name="x", lr=1, betas=[0.8, 0.9])

    assert problems == []
    assert options == {"lr": 1.0, "betas": (0.8, 0.9), "schedule": "constant", "name": "x"}
    assert isinstance(options["lr"], float)


@pytest.mark.parametrize(
    ("table", "key", "message"),
    [
        ({"batch_size": "8"}, "batch_size", 'expected an integer, got "8" (a string: write it without quotes)'),
        ({"batch_size": 8.0}, "batch_size", "expected an integer, got 8.0"),
        ({"batch_size": True}, "batch_size", "expected an integer, got true"),
        ({"batch_size": 8, "shuffle": 1}, "shuffle", "expected true or false, got 1"),
        (
            {"batch_size": 8, "shuffle": "true"},
            "shuffle",
            'expected true or false, got "true" (a string: write it without quotes)',
        ),
        ({"batch_size": 8, "epochs": 0}, "epochs", "expected an integer >= 1, got 0"),
        ({"batch_size": 8, "label_smoothing": 1.5}, "label_smoothing", "expected a number in [0, 1], got 1.5"),
        (
            {"batch_size": 8, "label_smoothing": float("nan")},
            "label_smoothing",
            "expected a number in [0, 1], got nan (numbers must be finite)",
        ),
    ],
)
def test_nothing_is_coerced(table, key, message):
    _, problems = check(TrainingOptions, **table)
    assert problems == [(key, message)]


def test_infinity_only_where_a_key_allows_it():
    def factory(*, limit: Annotated[float, Field(allow_inf_nan=True)] = 1.0, other: NonNegativeFloat = 0.0):
        """`limit` documents inf."""

    assert check(factory, limit=float("inf"))[1] == []
    assert check(factory, other=float("inf"))[1] == [
        ("other", "expected a number >= 0, got inf (numbers must be finite)")
    ]


def test_arrays_are_checked_item_by_item_and_by_length():
    assert check(fake_adam, name="x", betas=[0.9])[1] == [
        ("betas", "expected an array of 2 (a number, a number), got an array [0.9]")
    ]
    assert check(fake_adam, name="x", betas=[0.9, "a"])[1][0][0] == "betas"


def test_unknown_keys_missing_keys_and_choices():
    _, problems = check(fake_adam, lrr=1e-3, schedule="cosine")

    assert problems == [
        ("lrr", 'unknown key (did you mean "lr"?). Valid keys: lr, betas, schedule, name'),
        ("schedule", 'expected one of "constant", "linear", got "cosine"'),
        ("name", "missing required key (expected a string)"),
    ]


def test_a_secret_value_is_never_quoted_in_a_message():
    def factory(*, api_token: int = 0):
        """A badly typed secret."""

    assert check(factory, api_token="hf_secret")[1] == [("api_token", "expected an integer, got ***")]


# --- rules between keys ------------------------------------------------------------------------


def _both(options):
    if options["a"] and options["b"]:
        yield "b", "set a or b, not both"


def _broken(options):
    raise RuntimeError("a plugin bug")


@rules(_both)
def with_rules(*, a: int = 0, b: int = 0):
    """Two keys that exclude each other."""


def test_rules_run_once_every_key_is_fine():
    assert check(with_rules, a=1)[1] == []
    assert check(with_rules, a=1, b=2)[1] == [("b", "set a or b, not both")]
    assert check(with_rules, a=1, b="2")[1] == [
        ("b", 'expected an integer, got "2" (a string: write it without quotes)')
    ]


@rules(_broken)
def with_a_broken_rule(*, a: int = 0):
    """A plugin whose rule has a bug."""


@rules(_both)
def with_rules_and_a_required_key(*, a: int = 0, b: int = 0, name: str):
    """A rule beside a key that must be given."""


def test_rules_do_not_run_beside_an_unknown_or_missing_key():
    assert check(with_rules, a=1, b=2, c=3)[1] == [("c", "unknown key. Valid keys: a, b")]
    assert check(with_rules_and_a_required_key, a=1, b=2)[1] == [("name", "missing required key (expected a string)")]


def test_a_crashing_rule_is_reported_not_raised():
    assert run_rules([_broken], {}) == [(None, "check _broken failed: RuntimeError: a plugin bug")]
    assert check(with_a_broken_rule, a=1) == ({"a": 1}, [(None, "check _broken failed: RuntimeError: a plugin bug")])


# --- words ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "words"),
    [
        ({"type": "integer", "minimum": 1}, "an integer >= 1"),
        ({"type": "number", "exclusiveMinimum": 0}, "a number > 0"),
        ({"type": "number", "minimum": 0, "exclusiveMaximum": 1}, "a number in [0, 1)"),
        ({"type": "string", "minLength": 1}, "a non-empty string"),
        ({"anyOf": [{"type": "integer"}, {"type": "null"}]}, "an integer"),
        ({"enum": ["a", "b"]}, 'one of "a", "b"'),
        (
            {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1, "maxItems": 2},
            "an array of non-empty strings (1 to 2 items)",
        ),
        (
            {
                "type": "object",
                "additionalProperties": {"type": "integer", "minimum": 1},
                "propertyNames": {"enum": ["train", "eval"]},
            },
            "a table of integers >= 1 (keys: train, eval)",
        ),
        ({"type": "boolean"}, "true or false"),
        ({}, "any value"),
    ],
)
def test_words_for_schemas(schema, words):
    assert describe_schema(schema) == words


def test_words_for_values():
    assert describe_value("x") == '"x"' and describe_value(True) == "true" and describe_value({"a": 1}) == "a table"
    assert describe_value([1, 2]) == "an array [1, 2]" and describe_value(list(range(100))) == "an array of 100 items"
    assert describe_value("y" * 200).endswith('..."') and len(describe_value("y" * 200)) < 90


def test_type_text_of_every_key_reads_as_words():
    assert {name: key.type_text for name, key in spec_of(fake_adam).keys.items()} == {
        "lr": "a number > 0",
        "betas": "an array of 2 (a number, a number)",
        "schedule": 'one of "constant", "linear"',
        "name": "a string",
    }


def test_any_typed_annotations_still_accept_anything():
    def factory(*, options: dict[str, Any] | None = None):
        """A free-form table."""

    assert check(factory, options={"x": [1, 2], "y": "z"})[1] == []
    assert check(factory, options=[1])[1] == [("options", "expected a table, got an array [1]")]

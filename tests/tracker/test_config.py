"""Reading experiment files and `--set` overrides: TOML in, a plain dict out, problems as data."""

from __future__ import annotations

import copy

import pytest

from tracker.errors import Problem
from tracker.spec.parse import Override, RawExperiment, apply_overrides, parse_override, read_experiment

EXPERIMENT = """\
[experiment]
seed = 7

[optimizer]
use = "adamw"
lr = 5e-5

[metrics]
use = ["accuracy", "f1"]

[metrics.f1]
average = "macro"
"""


@pytest.fixture
def experiment_file(tmp_path):
    path = tmp_path / "mrpc.toml"
    path.write_text(EXPERIMENT, encoding="utf-8")
    return path


# --- reading files ---------------------------------------------------------------------------


def test_reads_a_file_into_a_plain_nested_dict(experiment_file):
    raw, problems = read_experiment(experiment_file)

    assert problems == []
    assert isinstance(raw, RawExperiment)
    assert raw.path == experiment_file
    assert raw.text == EXPERIMENT  # kept as written, for provenance
    assert raw.data == {
        "experiment": {"seed": 7},
        "optimizer": {"use": "adamw", "lr": 5e-5},
        "metrics": {"use": ["accuracy", "f1"], "f1": {"average": "macro"}},
    }
    assert raw.overrides == ()


def test_a_missing_file_is_a_problem_not_an_exception(tmp_path):
    path = tmp_path / "nope.toml"

    raw, problems = read_experiment(path)

    assert raw is None
    assert problems == [Problem(str(path), None, None, "file not found")]
    assert str(problems[0]) == f"{path}: file not found"


def test_a_directory_is_a_problem(tmp_path):
    raw, problems = read_experiment(tmp_path)

    assert raw is None
    assert "is a directory" in problems[0].message


def test_malformed_toml_reports_line_and_column(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[model]\nuse = "sequence_classification"\ncheckpoint = bert-base-uncased\n')

    raw, problems = read_experiment(path)

    assert raw is None
    [problem] = problems
    assert (problem.file, problem.section, problem.key) == (str(path), None, None)
    assert problem.message.startswith("invalid TOML: ")
    assert "line 3, column 14" in problem.message


def test_overrides_are_applied_and_recorded_but_the_text_is_kept(experiment_file):
    raw, _ = read_experiment(experiment_file, [parse_override("optimizer.lr=3e-5")])

    assert raw.data["optimizer"]["lr"] == 3e-5
    assert raw.overrides == ("optimizer.lr=3e-5",)
    assert raw.text == EXPERIMENT


# --- parsing --set ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "path", "value"),
    [
        ("optimizer.lr=3e-5", ("optimizer", "lr"), 3e-5),
        ("runner.epochs=3", ("runner", "epochs"), 3),
        ("optimizer.lr=1", ("optimizer", "lr"), 1),  # an int: validation accepts it for a float
        ("tracking.enabled=false", ("tracking", "enabled"), False),
        ("dataset.text_columns=['sentence1', 'sentence2']", ("dataset", "text_columns"), ["sentence1", "sentence2"]),
        ("dataset.max_rows={train = 500, eval = 100}", ("dataset", "max_rows"), {"train": 500, "eval": 100}),
        ('model.checkpoint="bert-base-uncased"', ("model", "checkpoint"), "bert-base-uncased"),
        ("metrics.f1.average=macro", ("metrics", "f1", "average"), "macro"),
        (" optimizer.lr = 3e-5 ", ("optimizer", "lr"), 3e-5),  # spaces around the parts are ignored
    ],
)
def test_override_values_are_parsed_as_toml(text, path, value):
    override = parse_override(text)

    assert override == Override(path, value, text)
    assert type(override.value) is type(value)


@pytest.mark.parametrize("text", ["model.checkpoint=bert-base-uncased", "experiment.description=a first try"])
def test_a_bare_word_that_is_not_toml_is_taken_as_a_string(text):
    _, _, word = text.partition("=")

    assert parse_override(text).value == word


@pytest.mark.parametrize("text", ["optimizer.lr", "lr=3e-5", "optimizer..lr=3e-5", ".lr=3e-5", "optimizer.=1", "=1"])
def test_bad_override_syntax_raises_value_error_with_an_example(text):
    with pytest.raises(ValueError, match=r'expected "section\.key=value", e\.g\. optimizer\.lr=3e-5'):
        parse_override(text)


# --- applying overrides ----------------------------------------------------------------------


def test_apply_overrides_returns_a_copy_and_leaves_the_input_alone():
    data = {"optimizer": {"use": "adamw", "lr": 5e-5}, "metrics": {"use": ["f1"], "f1": {"average": "binary"}}}
    before = copy.deepcopy(data)

    result = apply_overrides(data, [parse_override("optimizer.lr=3e-5"), parse_override("metrics.f1.average=macro")])

    assert result == {"optimizer": {"use": "adamw", "lr": 3e-5}, "metrics": {"use": ["f1"], "f1": {"average": "macro"}}}
    assert data == before


def test_apply_overrides_creates_missing_tables():
    result = apply_overrides({}, [parse_override("metrics.f1.average=macro")])

    assert result == {"metrics": {"f1": {"average": "macro"}}}


def test_apply_overrides_replaces_a_value_that_is_in_the_way_of_a_table():
    result = apply_overrides({"optimizer": "adamw"}, [parse_override("optimizer.lr=3e-5")])

    assert result == {"optimizer": {"lr": 3e-5}}


def test_later_overrides_win():
    overrides = [parse_override("optimizer.lr=1e-5"), parse_override("optimizer.lr=2e-5")]

    assert apply_overrides({}, overrides) == {"optimizer": {"lr": 2e-5}}

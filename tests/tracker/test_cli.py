"""The `xp` command line, with the installed built-in plugins: through click's CliRunner, and as
a real `python -m tracker` process where what matters is the process (exit code, imports).

The broken experiment files in tests/fixtures/broken hold one kind of mistake each (and one
holds many); every problem line reads `FILE: [section] key: message`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tracker import __version__
from tracker.cli import main

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO_ROOT = Path(__file__).resolve().parents[2]
BROKEN = REPO_ROOT / "tests" / "fixtures" / "broken"
HEAVY_MODULES = ("torch", "transformers", "datasets", "accelerate", "mlflow", "evaluate", "sklearn", "scipy")

# The MRPC recipe, valid with the built-in plugins; the broken fixtures are this file plus mistakes.
# Its data is the slice shipped in tests/data: a relative dataset path is read from the working
# directory, so every `xp` here runs from the repository root.
MRPC = """\
[experiment]
description = "BERT on GLUE MRPC"

[dataset]
use = "hf"
path = "tests/data/mrpc"
text_columns = ["sentence1", "sentence2"]

[tokenizer]
use = "auto"
max_length = 128

[collator]
use = "dynamic_padding"

[model]
use = "sequence_classification"
checkpoint = "bert-base-uncased"

[optimizer]
use = "adamw"
lr = 5e-5
weight_decay = 0.01

[scheduler]
use = "linear"
warmup_ratio = 0.1

[metrics]
use = ["accuracy", "f1"]

[metrics.f1]
average = "macro"

[runner]
use = "loop"
num_epochs = 3
"""

# fixture -> the problem lines it must produce, in order: (where, phrases the line contains)
EXPECTED_PROBLEMS = {
    "unknown_section.toml": [
        ("[traking]", ['unknown section (did you mean "tracking"?)', "Valid sections: experiment, task, dataset"]),
    ],
    "unknown_key.toml": [
        ("[optimizer] weigth_decay", ['unknown key (did you mean "weight_decay"?)', "Valid keys: lr, "]),
    ],
    "unknown_plugin.toml": [
        ("[optimizer] use", ['unknown optimizer "adam" (did you mean "adamw"?)', "Valid choices: ", "sgd"]),
        ("[metrics] use", ['unknown metric "acuracy" (did you mean "accuracy"?)', "Valid choices: ", "f1"]),
    ],
    "wrong_type.toml": [
        ("[dataset] text_columns", ['expected an array of non-empty strings (1 to 2 items), got "sentence1"']),
        ("[optimizer] lr", ['expected a number > 0, got "5e-5" (a string: write it without quotes)']),
        ("[hardware] precision", ['expected one of "fp32", "fp16", "bf16", got "fp8"']),
    ],
    "missing_required.toml": [
        ("[dataset] text_columns", ["missing required key (expected an array of non-empty strings (1 to 2 items))"]),
        ("[model] checkpoint", ["missing required key (expected a non-empty string)"]),
    ],
    "missing_section.toml": [
        ("[model]", ["missing section; add it with use = one of: ", "sequence_classification"]),
    ],
    "metric_options.toml": [
        ("[metrics] average", ["unknown key; options of a metric go in its own table, e.g. [metrics.f1]"]),
    ],
    "malformed.toml": [
        (None, ["invalid TOML: ", "line 19, column 14"]),
    ],
    "many_problems.toml": [
        ("seed", ["unknown top-level key", "seed goes in [experiment]"]),
        ("[mlflow]", ["unknown section. Valid sections: "]),
        ("[dataset] text_columns", ["missing required key"]),
        ("[model] dropout", ["unknown key. Valid keys: checkpoint"]),
        ("[optimizer] lr", ['expected a number > 0, got "fast"']),
        ("[scheduler] use", ['unknown scheduler "linear_warmup" (did you mean "linear"?)', "Valid choices: "]),
        ("[runner]", ["missing section; add it with use = one of: ", "loop"]),
    ],
}


@pytest.fixture
def cli(monkeypatch):
    monkeypatch.chdir(REPO_ROOT)  # where "tests/data/mrpc" names the shipped slice, as python_m_tracker runs

    def invoke(*args: str):
        result = CliRunner().invoke(main, list(args))
        # A bad experiment ends in sys.exit(2); any other exception is a bug in xp.
        assert result.exception is None or isinstance(result.exception, SystemExit), result.output
        assert "Traceback" not in result.output
        return result

    return invoke


@pytest.fixture
def mrpc_file(tmp_path) -> Path:
    path = tmp_path / "mrpc.toml"
    path.write_text(MRPC, encoding="utf-8")
    return path


def python_m_tracker(*args: str) -> subprocess.CompletedProcess:
    """`python -m tracker ARGS` from the repository root, with no XP_* setting of the caller's."""
    environment = {name: value for name, value in os.environ.items() if not name.startswith("XP_")}
    return subprocess.run(
        [sys.executable, "-m", "tracker", *args],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- xp validate -----------------------------------------------------------------------------


def test_every_broken_fixture_has_its_expectations():
    assert sorted(EXPECTED_PROBLEMS) == sorted(p.name for p in BROKEN.glob("*.toml"))


@pytest.mark.parametrize("fixture", sorted(EXPECTED_PROBLEMS))
def test_validate_reports_each_problem_of_a_broken_file_and_exits_2(cli, fixture):
    path = BROKEN / fixture

    result = cli("validate", str(path))

    assert result.exit_code == 2
    assert result.stdout == ""
    *lines, summary = result.stderr.splitlines()
    assert summary == "1 of 1 experiment file(s) invalid; nothing was run."
    expected = EXPECTED_PROBLEMS[fixture]
    assert len(lines) == len(expected), result.stderr  # exactly the mistakes the file was made with
    for line, (where, phrases) in zip(lines, expected, strict=True):
        assert line.startswith(f"{path}: {where}: " if where else f"{path}: "), line
        for phrase in phrases:
            assert phrase in line


def test_validate_a_valid_file(cli, mrpc_file):
    result = cli("validate", str(mrpc_file))

    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"ok: {mrpc_file}\n"


def test_validate_reports_every_file_before_exiting(cli, mrpc_file):
    result = cli("validate", str(mrpc_file), str(BROKEN / "unknown_key.toml"), str(BROKEN / "wrong_type.toml"))

    assert result.exit_code == 2
    assert "ok:" not in result.stdout  # nothing is half-accepted
    assert "unknown_key.toml: [optimizer] weigth_decay: unknown key" in result.stderr
    assert "wrong_type.toml: [optimizer] lr: expected a number" in result.stderr
    assert result.stderr.endswith("2 of 3 experiment file(s) invalid; nothing was run.\n")


def test_validate_a_missing_file(cli, tmp_path):
    missing = tmp_path / "nope.toml"

    result = cli("validate", str(missing))

    assert result.exit_code == 2
    assert f"{missing}: file not found" in result.stderr


def test_set_overrides_are_checked_like_the_file(cli, mrpc_file):
    result = cli("validate", str(mrpc_file), "--set", "optimizer.lr=fast", "--set", "runner.num_epoch=5")

    assert result.exit_code == 2
    assert f'{mrpc_file}: [optimizer] lr: expected a number > 0, got "fast"' in result.stderr
    assert f'{mrpc_file}: [runner] num_epoch: unknown key (did you mean "num_epochs"?)' in result.stderr


def test_set_with_bad_syntax_exits_2(cli, mrpc_file):
    result = cli("validate", str(mrpc_file), "--set", "optimizer.lr")

    assert result.exit_code == 2
    assert "Invalid value for '--set'" in result.stderr
    assert 'expected "section.key=value", e.g. optimizer.lr=3e-5' in result.stderr


def test_validate_as_a_process():
    result = python_m_tracker("validate", "tests/fixtures/broken/wrong_type.toml")

    assert result.returncode == 2
    assert result.stdout == ""
    assert (
        'tests/fixtures/broken/wrong_type.toml: [optimizer] lr: expected a number > 0, got "5e-5" '
        "(a string: write it without quotes)" in result.stderr
    )
    assert "Traceback" not in result.stderr


# --- xp show ---------------------------------------------------------------------------------


def test_show_prints_the_resolved_experiment_as_toml_with_overrides(cli, mrpc_file):
    result = cli("show", str(mrpc_file), "--set", "optimizer.lr=3e-5")

    assert result.exit_code == 0, result.stderr
    assert "lr = 3e-05\n" in result.stdout
    document = tomllib.loads(result.stdout)
    assert document["optimizer"]["lr"] == 3e-05
    assert document["experiment"]["name"] == "mrpc"  # defaults are written out
    assert document["hardware"]["device"] == "auto"
    assert document["metrics"]["use"] == ["accuracy", "f1"]
    assert document["metrics"]["f1"]["average"] == "macro"


def test_show_output_is_itself_a_valid_experiment(cli, mrpc_file, tmp_path):
    shown = tmp_path / "shown.toml"
    shown.write_text(cli("show", str(mrpc_file)).stdout)

    assert cli("validate", str(shown)).exit_code == 0


def test_show_a_broken_file_exits_2(cli):
    result = cli("show", str(BROKEN / "unknown_plugin.toml"))

    assert result.exit_code == 2
    assert result.stdout == ""
    assert 'unknown optimizer "adam"' in result.stderr


# --- xp plugins ------------------------------------------------------------------------------


def test_plugins_lists_the_built_ins_with_their_distribution(cli):
    result = cli("plugins")

    assert result.exit_code == 0
    assert f"  adamw  [xp-tracker {__version__}]  AdamW" in result.stdout
    assert "      lr: a number > 0; default 5e-05" in result.stdout
    for kind in ("dataset", "tokenizer", "collator", "model", "optimizer", "scheduler", "metric", "runner"):
        assert f"\n{kind}\n" in f"\n{result.stdout}"


def test_plugins_of_one_kind(cli):
    result = cli("plugins", "--kind", "optimizer")

    headings = [line for line in result.stdout.splitlines() if line and not line.startswith(" ")]
    assert headings[0] == "optimizer"
    assert "scheduler" not in headings
    assert "  sgd  [xp-tracker" in result.stdout
    assert "  linear  [" not in result.stdout


def test_plugins_of_an_unknown_kind_is_a_usage_error(cli):
    result = cli("plugins", "--kind", "optimiser")

    assert result.exit_code == 2
    assert "'optimiser' is not one of" in result.stderr


def test_plugins_as_json(cli):
    result = cli("plugins", "--json")

    listing = json.loads(result.stdout)
    assert set(listing) == {"plugins", "broken"}
    by_name = {(p["kind"], p["name"]): p for p in listing["plugins"]}
    adamw = by_name["optimizer", "adamw"]
    assert (adamw["distribution"], adamw["version"]) == ("xp-tracker", __version__)
    assert adamw["summary"].startswith("AdamW")
    lr = next(key for key in adamw["keys"] if key["name"] == "lr")
    assert lr == {"name": "lr", "type": "a number > 0", "required": False, "default": 5e-05}
    path = next(key for key in by_name["dataset", "hf"]["keys"] if key["name"] == "path")
    assert (path["type"], path["required"], path["default"]) == ("a non-empty string", True, None)
    assert ("runner", "loop") in by_name


def test_plugins_as_json_of_one_kind(cli):
    listing = json.loads(cli("plugins", "--kind", "metric", "--json").stdout)

    assert {p["kind"] for p in listing["plugins"]} == {"metric"}
    assert {"accuracy", "f1"} <= {p["name"] for p in listing["plugins"]}


# --- the process: help, version, and staying light -------------------------------------------


def test_help_as_a_process():
    result = python_m_tracker("--help")

    assert result.returncode == 0
    for command in ("validate", "run", "show", "plugins"):
        assert command in result.stdout


def test_version(cli):
    assert cli("--version").stdout == f"xp, version {__version__}\n"


def test_importing_the_cli_loads_no_heavy_library():
    code = f"import sys, tracker.cli; print([m for m in {HEAVY_MODULES!r} if m in sys.modules])"

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert result.stdout.strip() == "[]"


def test_validating_and_listing_plugins_load_no_heavy_library(mrpc_file):
    # Parse, then check, then build: only building may import torch and friends.
    code = f"""
import sys
from tracker.cli import main
for args in (["plugins", "--json"], ["validate", {str(mrpc_file)!r}]):
    try:
        main(args)
    except SystemExit as done:
        assert done.code == 0, (args, done.code)
print([m for m in {HEAVY_MODULES!r} if m in sys.modules], file=sys.stderr)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)

    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "[]"

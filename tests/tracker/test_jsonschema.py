"""`xp schema`: the JSON Schema of experiment files for editors, generated from the same
declarations the checker uses, and checked here with the `jsonschema` package."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from tracker.cli import main

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO_ROOT / "experiments").glob("*.toml"))


@pytest.fixture(scope="module")
def schema() -> dict:
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _errors(schema: dict, document: dict) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema)
    return [error.message for error in validator.iter_errors(document)]


def test_the_schema_is_a_valid_draft_2020_12_schema(schema):
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_experiment_fits_the_schema(schema, path):
    assert _errors(schema, tomllib.loads(path.read_text())) == []


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d["optimizer"].update(lr=-1),  # a bound
        lambda d: d["optimizer"].update(lr="fast"),  # a type
        lambda d: d["optimizer"].update(weigth_decay=0.01),  # an unknown key of the chosen plugin
        lambda d: d["optimizer"].update(use="adam"),  # an unknown plugin
        lambda d: d["runner"].update(batch_size=0),
        lambda d: d["scheduler"].update(warmup_ratio=1.5),
        lambda d: d["hardware"].update(precision="fp8"),
        lambda d: d.update(traking={"enabled": False}),  # an unknown section
        lambda d: d.pop("model"),  # a missing section
        lambda d: d["metrics"].update(use=["accuracy", "accuracy"]),
    ],
    ids=[
        "bound",
        "type",
        "unknown key",
        "unknown plugin",
        "batch size",
        "ratio",
        "choice",
        "section",
        "missing",
        "duplicate metric",
    ],
)
def test_a_wrong_file_fails_the_schema(schema, edit):
    document = tomllib.loads((REPO_ROOT / "experiments" / "quickstart.toml").read_text())
    edit(document)

    assert _errors(schema, document)


def test_a_component_section_has_one_branch_per_use_choice(schema):
    optimizer = schema["properties"]["optimizer"]

    assert [branch["properties"]["use"]["const"] for branch in optimizer["oneOf"]] == ["adafactor", "adamw", "sgd"]
    assert optimizer["properties"]["use"]["enum"] == ["adafactor", "adamw", "sgd"]


def test_keys_carry_their_description_default_and_bounds(schema):
    adamw = next(b for b in schema["properties"]["optimizer"]["oneOf"] if b["title"] == "adamw")
    lr = adamw["properties"]["lr"]

    assert lr["default"] == 5e-05 and lr["exclusiveMinimum"] == 0 and lr["description"]
    assert adamw["description"].startswith("AdamW")
    assert adamw["additionalProperties"] is False
    batch_size = next(b for b in schema["properties"]["runner"]["oneOf"] if b["title"] == "loop")["properties"][
        "batch_size"
    ]
    assert batch_size == {"default": 8, "description": "rows per batch, per device", "minimum": 1, "type": "integer"}


def test_the_metrics_section_takes_one_or_several_names_and_their_tables(schema):
    metrics = schema["properties"]["metrics"]

    assert _errors({**schema, **metrics}, {"use": "f1", "f1": {"average": "macro"}}) == []
    assert _errors({**schema, **metrics}, {"use": ["accuracy", "f1"]}) == []
    assert _errors({**schema, **metrics}, {"use": "f1", "f1": {"average": "sideways"}})


def test_schema_writes_a_file(tmp_path):
    target = tmp_path / "xp.schema.json"
    result = CliRunner().invoke(main, ["schema", "--output", str(target)])

    assert result.exit_code == 0, result.output
    jsonschema.Draft202012Validator.check_schema(json.loads(target.read_text()))

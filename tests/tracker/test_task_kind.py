"""The task is a plugin kind: `[task] use = "..."` names one, and a file without [task] means the
default task (sequence classification), with the same run names as before tasks were plugins."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.experiment_files import write_experiment
from tests.mlflow_helpers import QUICKSTART, quickstart_overrides, sqlite_store
from tracker.api import load
from tracker.cli import main

REPOSITORY = Path(__file__).resolve().parents[2]
# The experiments of sequence classification, which name no task nor adapter: every one xp 0.2 could run.
SHIPPED = sorted(
    path
    for path in (REPOSITORY / "experiments").glob("*.toml")
    if "[task]" not in path.read_text() and "[adapter]" not in path.read_text()
)
# The run names (file stem + config digest) of the shipped experiments as xp 0.2 wrote them
# ([model] use = "sequence_classification", no [task]): files written for 0.2 keep their names.
RUN_NAMES = {
    "mrpc_accelerate": "mrpc_accelerate-112dcefc",
    "mrpc_loop": "mrpc_loop-6b20662e",
    "mrpc_sweep": "mrpc_sweep-034750b3",
    "mrpc_trainer": "mrpc_trainer-ad335d4b",
    "quickstart": "quickstart-13135bd9",
}
DEFAULT_TASK = '[task]\nuse = "sequence_classification"\n\n'


def with_task_written(source: Path, folder: Path, task: str = DEFAULT_TASK) -> Path:
    """A copy of `source` in `folder` that says [task] first; relative paths still resolve."""
    copy = folder / source.name
    copy.write_text(task + source.read_text(encoding="utf-8"), encoding="utf-8")
    return copy


def as_written_for_version_2(source: Path, folder: Path) -> Path:
    """A copy of `source` as xp 0.2 had it: the model plugin under its old name."""
    copy = folder / source.name
    text = source.read_text(encoding="utf-8")
    assert '[model]\nuse = "auto"' in text
    copy.write_text(text.replace('[model]\nuse = "auto"', '[model]\nuse = "sequence_classification"'))
    return copy


def test_the_task_kind_is_listed_with_its_hook():
    listed = CliRunner().invoke(main, ["plugins", "--kind", "task", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [plugin["name"] for plugin in json.loads(listed.output)["plugins"]] == [
        "instruction_tuning",
        "question_answering",
        "seq2seq",
        "sequence_classification",
        "token_classification",
    ]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.stem)
def test_a_file_written_for_version_2_means_sequence_classification_under_its_old_run_name(path, tmp_path, monkeypatch):
    monkeypatch.chdir(REPOSITORY)  # the shipped files name their data relative to the repository
    experiment = load(as_written_for_version_2(path, tmp_path))
    assert experiment.components["task"].use == "sequence_classification"
    assert experiment.run_name == RUN_NAMES[path.stem]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.stem)
def test_writing_the_default_task_out_changes_nothing(path, tmp_path, monkeypatch):
    """Both spellings check to the same experiment: every component, setting and name equal, so
    everything built from them is too."""
    monkeypatch.chdir(REPOSITORY)
    implied, written = load(path), load(with_task_written(path, tmp_path))
    assert written.run_name == implied.run_name
    assert written.resolved() == implied.resolved()
    assert dict(written.components) == dict(implied.components)
    assert written.metrics == implied.metrics and written.settings == implied.settings


def test_a_task_that_is_not_the_default_names_its_runs_differently(tmp_path, tiny_checkpoint):
    """The digest leaves out only what leaving [task] out says; any other [task] is part of it."""
    path = write_experiment(tmp_path / "tiny.toml", tiny_checkpoint, None)
    implied = load(path)
    assert not dataclasses.replace(implied.components["task"], is_default=False).is_default
    assert implied.components["task"].is_default
    assert '[task]\nuse = "sequence_classification"' in CliRunner().invoke(main, ["show", str(path)]).output


def test_an_unknown_task_is_refused_with_the_choices(tmp_path, tiny_checkpoint):
    path = write_experiment(tmp_path / "tiny.toml", tiny_checkpoint, None, task={"use": "sequence_clasification"})
    checked = CliRunner().invoke(main, ["validate", str(path)])
    assert checked.exit_code == 2
    assert "[task] use: " in checked.output and "sequence_classification" in checked.output
    assert "Traceback" not in checked.output


def test_task_keys_are_checked_like_any_section(tmp_path, tiny_checkpoint):
    path = write_experiment(
        tmp_path / "tiny.toml", tiny_checkpoint, None, task={"use": "sequence_classification", "threshold": 0.5}
    )
    checked = CliRunner().invoke(main, ["validate", str(path)])
    assert checked.exit_code == 2
    assert "[task] threshold: unknown key" in checked.output


def test_the_schema_has_an_optional_task_section():
    schema = json.loads(CliRunner().invoke(main, ["schema"]).output)
    assert "task" in schema["properties"]
    assert "task" not in schema["required"] and "dataset" in schema["required"]


def test_a_tracked_run_of_a_file_that_writes_the_default_task_out(registry, tiny_checkpoint, tmp_path, monkeypatch):
    """It trains under the name a file without [task] gets; its model card names the task and
    the head's class, which is how `xp predict` and the tracking process load it again."""
    from tracker.model_export import ModelCard
    from tracker.recipe import run_tracked

    overrides = quickstart_overrides(tiny_checkpoint, tmp_path, sqlite_store(tmp_path), "runner.save_model=true")
    implied = load(QUICKSTART, overrides, registry)
    written = load(with_task_written(QUICKSTART, tmp_path), overrides, registry)
    monkeypatch.chdir(tmp_path)
    result = run_tracked(written, registry)
    assert result.tracked is not None and result.tracked.run_name == implied.run_name
    assert result.model_uri is not None  # logged to MLflow by the tracking process, as the card says
    card = ModelCard.read(result.model_dir)
    assert (card.task, card.model_class) == ("sequence_classification", "AutoModelForSequenceClassification")
    assert card.label_names == ("different", "paraphrase")


# --- the core names no task ----------------------------------------------------------------------

# What only a task knows: class names of the Auto classes and pipelines, the softmax of a
# classifier's logits, the majority class of a baseline, the built-in task's own name.
TASK_WORDS = re.compile(
    r"SequenceClassification|TokenClassification|QuestionAnswering|Seq2SeqLM|CausalLM"
    r"|text-classification|token-classification|question-answering|summarization|text-generation"
    r"|softmax|sigmoid|majority|sequence_classification|is_regression|num_labels|id2label",
    re.IGNORECASE,
)


def test_the_core_names_no_task():
    found = [
        f"{path.relative_to(REPOSITORY)}:{number}: {line.strip()}"
        for path in sorted((REPOSITORY / "tracker").rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if TASK_WORDS.search(line)
    ]
    assert found == []

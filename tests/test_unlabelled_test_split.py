"""A test split without labels is normal input: no test metrics, predictions for every row, and
the data's own id column carried into the predictions file under its own name."""

from __future__ import annotations

import csv

import pytest
from click.testing import CliRunner

from tests.experiment_files import write_experiment
from tracker.cli import main


@pytest.mark.parametrize("runner", ["loop", "trainer"])
def test_predictions_for_a_test_split_without_labels_keep_its_id_column(tmp_path, monkeypatch, tiny_checkpoint, runner):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.csv").write_text("text,label\n" + "".join(f"row {i},{'ab'[i % 2]}\n" for i in range(8)))
    (tmp_path / "test.csv").write_text("guid,text\n" + "".join(f"g-{i},new row {i}\n" for i in range(5)))
    path = write_experiment(
        tmp_path / "experiment.toml",
        tiny_checkpoint,
        {"train": "train.csv", "validation": "train.csv", "test": "test.csv"},
        dataset={"text_columns": ["text"]},
        runner={"use": runner, "max_steps": 2},
        metrics={"use": "accuracy"},
    )

    result = CliRunner().invoke(main, ["run", str(path)])

    assert result.exit_code == 0, result.output
    [predictions] = tmp_path.glob("outputs/*/predictions.csv")
    rows = list(csv.DictReader(predictions.open()))
    assert list(rows[0]) == ["guid", "label", "score"]
    assert [row["guid"] for row in rows] == [f"g-{i}" for i in range(5)]
    assert {row["label"] for row in rows} <= {"a", "b"}

"""`[checkpoint]` means the same for every runner: a checkpoint every `every_steps` optimizer
steps and/or after each evaluation, the newest `keep` kept, each saying which run and which
experiment it belongs to. Real runs of the tiny BERT on 24 rows in batches of 8 (3 steps an epoch)."""

from __future__ import annotations

import json

import pytest

from tests.experiment_files import write_experiment
from tests.plugins.test_trainer_short_runs import RUNNERS, run
from tracker.resume import saved_checkpoints


def checkpoints_of(result) -> list:
    [folder] = (result.output_dir / "checkpoints").iterdir()  # one run: one folder, named after its run id
    assert folder.name == "untracked"  # tracking is off in these runs
    return saved_checkpoints(folder)


@pytest.mark.parametrize("runner", RUNNERS)
def test_every_runner_checkpoints_every_n_steps_and_keeps_the_newest(tmp_path, tiny_checkpoint, short_run_data, runner):
    path = write_experiment(
        tmp_path / "every.toml",
        tiny_checkpoint,
        short_run_data,
        runner={"use": runner, "max_steps": 7, "eval_strategy": "no"},
        checkpoint={"every_steps": 2, "keep": 2},
    )
    result, _ = run(path)
    saved = checkpoints_of(result)
    assert [checkpoint.step for checkpoint in saved] == [4, 6]
    info = saved[-1].info
    assert (info.run_id, info.runner, info.experiment_file) == (None, runner, str(path.resolve()))
    assert len(info.config_digest) == 64
    stored = json.loads((saved[-1].folder / "xp-checkpoint.json").read_text())
    assert stored["step"] == 6 and stored["format"] == 1


@pytest.mark.parametrize("runner", RUNNERS)
def test_every_runner_checkpoints_after_each_evaluation(tmp_path, tiny_checkpoint, short_run_data, runner):
    path = write_experiment(
        tmp_path / "at-eval.toml",
        tiny_checkpoint,
        short_run_data,
        runner={"use": runner, "max_steps": 7, "eval_strategy": "steps", "eval_steps": 3},
        checkpoint={"at_evaluation": True, "keep": 5},
    )
    result, _ = run(path)
    # Every runner evaluates every eval_steps and at the last step, as the Trainer does.
    assert [checkpoint.step for checkpoint in checkpoints_of(result)] == [3, 6, 7]


@pytest.mark.parametrize("runner", RUNNERS)
def test_without_a_checkpoint_section_nothing_is_saved(tmp_path, tiny_checkpoint, short_run_data, runner):
    path = write_experiment(
        tmp_path / "none.toml", tiny_checkpoint, short_run_data, runner={"use": runner, "max_steps": 3}
    )
    result, _ = run(path)
    assert not (result.output_dir / "checkpoints").exists()

"""A run's checkpoint plan: when a checkpoint is due, that a save cut short never counts, that
only the newest `keep` stay, and that a checkpoint counts only once the logs before it are stored."""

from __future__ import annotations

import pytest

from tracker.resume import CheckpointPlan, latest_checkpoint, saved_checkpoints

IDENTITY = {
    "run_id": "0123abcd",
    "experiment_file": "/x/exp.toml",
    "overrides": ("optimizer.lr=1e-4",),
    "config_digest": "f" * 64,
    "runner": "loop",
}


def plan(folder, every_steps=None, at_evaluation=False, keep=2, flush_logs=lambda: None) -> CheckpointPlan:
    return CheckpointPlan(folder, every_steps, at_evaluation, keep, IDENTITY, flush_logs=flush_logs)


def test_due_every_n_steps_and_after_evaluations(tmp_path):
    assert [step for step in range(1, 10) if plan(tmp_path, every_steps=3).due(step, evaluated=False)] == [3, 6, 9]
    at_evaluation = plan(tmp_path, at_evaluation=True)
    assert at_evaluation.due(5, evaluated=True) and not at_evaluation.due(6, evaluated=False)
    assert not plan(tmp_path).saves and plan(tmp_path, every_steps=1).saves


def test_a_checkpoint_counts_once_its_block_ends_and_says_whose_it_is(tmp_path):
    checkpoints = plan(tmp_path, every_steps=1)
    with checkpoints.writing(5) as folder:
        (folder / "state.pt").write_bytes(b"state")
        assert latest_checkpoint(tmp_path) is None  # not while it is written
    saved = latest_checkpoint(tmp_path)
    assert saved.step == 5 and (saved.folder / "state.pt").read_bytes() == b"state"
    assert saved.info.run_id == "0123abcd" and saved.info.overrides == ("optimizer.lr=1e-4",)


def test_a_save_cut_short_leaves_no_checkpoint_and_the_last_good_one_stays(tmp_path):
    checkpoints = plan(tmp_path, every_steps=1)
    with checkpoints.writing(1):
        pass

    def cut_short() -> None:
        with checkpoints.writing(2) as folder:
            (folder / "half").write_bytes(b"x")
            raise OSError("No space left on device")

    with pytest.raises(OSError, match="No space left on device"):
        cut_short()
    assert [checkpoint.step for checkpoint in saved_checkpoints(tmp_path)] == [1]
    assert [path.name for path in tmp_path.iterdir()] == ["step-0000001"]  # nothing half-written left behind


def test_only_the_newest_checkpoints_are_kept(tmp_path):
    checkpoints = plan(tmp_path, every_steps=1, keep=2)
    for step in (1, 2, 3, 4):
        with checkpoints.writing(step):
            pass
    assert [checkpoint.step for checkpoint in saved_checkpoints(tmp_path)] == [3, 4]


def test_a_folder_without_its_info_file_is_no_checkpoint(tmp_path):
    (tmp_path / "checkpoint-9").mkdir()  # written by a runner, never marked: a save cut short
    assert latest_checkpoint(tmp_path) is None
    plan(tmp_path).mark(tmp_path / "checkpoint-9", 9)
    assert latest_checkpoint(tmp_path).step == 9


def test_logs_are_flushed_before_a_checkpoint_counts(tmp_path):
    seen = []
    checkpoints = plan(tmp_path, every_steps=1, flush_logs=lambda: seen.append(latest_checkpoint(tmp_path)))
    with checkpoints.writing(3):
        pass
    assert seen == [None]  # flushed while the checkpoint did not count yet

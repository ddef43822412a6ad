"""Checkpoints and resuming: when a run saves its training state, and `xp resume` continuing a
stopped run from the newest checkpoint, in the same MLflow run."""

from tracker.resume.checkpoints import (
    CHECKPOINTS_TAG,
    Checkpoint,
    CheckpointInfo,
    CheckpointPlan,
    Resume,
    checkpoint_plan,
    latest_checkpoint,
    saved_checkpoints,
)

__all__ = [
    "CHECKPOINTS_TAG",
    "Checkpoint",
    "CheckpointInfo",
    "CheckpointPlan",
    "Resume",
    "checkpoint_plan",
    "latest_checkpoint",
    "saved_checkpoints",
]

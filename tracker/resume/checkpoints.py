"""Where a run's training checkpoints live, when they are due, and what each says about its run.

A run checkpoints into `<output_dir>/<run name>/checkpoints/<run id>/`, one folder per save.
Every complete checkpoint holds `xp-checkpoint.json` (CheckpointInfo): the step, the MLflow run,
and how to rebuild the experiment (its file, the command line's overrides, a digest of the
resolved config). The runner writes everything else in the folder: its own state and format.
A save is made in a hidden folder renamed into place once whole, so a crash in the middle of one
never leaves a checkpoint that looks complete.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CHECKPOINTS_TAG = "xp.checkpoints"  # the run's tag naming its checkpoints folder, for `xp resume`
INFO_FILE = "xp-checkpoint.json"
FORMAT = 1
UNTRACKED = "untracked"  # the checkpoints folder of a run with tracking off


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint says about the run it belongs to."""

    step: int  # optimizer steps done
    run_id: str | None
    experiment_file: str  # absolute
    overrides: tuple[str, ...]  # as Experiment.overrides, secrets masked
    config_digest: str  # of the resolved experiment: resuming needs the same one
    runner: str
    format: int = FORMAT

    def write(self, folder: Path) -> None:
        (folder / INFO_FILE).write_text(json.dumps(asdict(self), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def read(cls, folder: Path) -> CheckpointInfo:
        data = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
        return cls(**{**data, "overrides": tuple(data["overrides"])})


@dataclass(frozen=True)
class Checkpoint:
    folder: Path
    info: CheckpointInfo

    @property
    def step(self) -> int:
        return self.info.step


def saved_checkpoints(folder: Path) -> list[Checkpoint]:
    """The complete checkpoints in `folder`, oldest first."""
    found = []
    for child in folder.iterdir() if folder.is_dir() else ():
        if child.is_dir() and not child.name.startswith(".") and (child / INFO_FILE).is_file():
            with contextlib.suppress(ValueError, TypeError, KeyError, OSError):  # unreadable: not a checkpoint
                found.append(Checkpoint(child, CheckpointInfo.read(child)))
    return sorted(found, key=lambda checkpoint: checkpoint.step)


def latest_checkpoint(folder: Path) -> Checkpoint | None:
    saved = saved_checkpoints(folder)
    return saved[-1] if saved else None


@dataclass(frozen=True)
class CheckpointPlan:
    """The `[checkpoint]` section of one run, with the folder its checkpoints go to and, when the
    run is being resumed, the checkpoint it continues from. Runners ask `due` after each optimizer
    step and save through `writing` (or, for a runner that writes folders itself, `mark`)."""

    folder: Path
    every_steps: int | None
    at_evaluation: bool
    keep: int
    identity: Mapping[str, Any] = field(default_factory=dict)  # CheckpointInfo's fields but the step
    resume_from: Checkpoint | None = None
    # Makes everything logged so far durable. A checkpoint counts only after it: a run killed
    # later and resumed from it then misses no metric step, and logs none twice.
    flush_logs: Callable[[], None] = lambda: None

    @property
    def saves(self) -> bool:
        return self.every_steps is not None or self.at_evaluation

    def due(self, step: int, evaluated: bool) -> bool:
        """A checkpoint is due after this optimizer step (and its evaluation, if it had one)."""
        return (self.every_steps is not None and step % self.every_steps == 0) or (self.at_evaluation and evaluated)

    @contextlib.contextmanager
    def writing(self, step: int) -> Iterator[Path]:
        """An empty folder for the checkpoint of `step`; once the block ends without error it is
        marked, moved into place and the oldest checkpoints beyond `keep` are deleted."""
        final = self.folder / f"step-{step:07d}"
        partial = self.folder / f".step-{step:07d}.partial"
        shutil.rmtree(partial, ignore_errors=True)  # left by a save that a crash cut short
        partial.mkdir(parents=True)
        try:
            yield partial
            self.mark(partial, step)
            shutil.rmtree(final, ignore_errors=True)
            partial.rename(final)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        self.prune()

    def mark(self, folder: Path, step: int) -> None:
        """Write the checkpoint's info into a folder the runner filled: from now on it counts."""
        self.flush_logs()
        CheckpointInfo(step=step, **self.identity).write(folder)

    def prune(self, protect: Path | None = None) -> None:
        """Delete the checkpoints older than the newest `keep`, except `protect`."""
        for old in saved_checkpoints(self.folder)[: -self.keep]:
            if protect is None or old.folder.resolve() != protect.resolve():
                shutil.rmtree(old.folder, ignore_errors=True)


def checkpoint_plan(
    settings: Mapping[str, Any],
    run_folder: Path,
    run_id: str | None,
    identity: Mapping[str, Any],
    resume_from: Checkpoint | None = None,
    flush_logs: Callable[[], None] = lambda: None,
) -> CheckpointPlan:
    """The plan of a run from its `[checkpoint]` settings; a resumed run keeps its folder."""
    folder = resume_from.folder.parent if resume_from else run_folder / "checkpoints" / (run_id or UNTRACKED)
    return CheckpointPlan(
        folder.resolve(),
        settings["every_steps"],
        settings["at_evaluation"],
        settings["keep"],
        {**identity, "run_id": run_id},
        resume_from,
        flush_logs,
    )


@dataclass(frozen=True)
class Resume:
    """A stopped run to continue: the MLflow run, its store, and the checkpoint to continue from."""

    run_id: str
    store: str
    checkpoint: Checkpoint

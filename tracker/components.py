"""What each kind of component hands to the next: small containers and protocols, no heavy imports.

The core assembles components through these shapes only, so it never needs to know which
dataset, model or optimizer a plugin provides. The task's own shapes are in tracker.task.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from tracker.console import Console

if TYPE_CHECKING:  # heavy types, for readers and type checkers only
    import numpy as np
    from datasets import Dataset

    from tracker.task import Head, Task


@dataclass(frozen=True)
class DataSource:
    """Where a task's rows came from, as the `datasets.load_dataset` arguments that read them again:
    local data by absolute paths, hub data by its id, config and commit."""

    path: str  # an absolute local folder, a packaged builder ("csv", "json", "parquet") or a hub id
    name: str | None = None  # the config; for hub data, the one datasets resolved
    revision: str | None = None  # hub data: the commit sha read, when datasets knows it; None for local data
    data_files: Mapping[str, tuple[str, ...]] | None = None  # files per split name, local ones absolute
    data_dir: str | None = None
    splits: Mapping[str, str] = field(default_factory=dict)  # task key -> split read: {"eval": "validation"}
    sampled: Mapping[str, int] = field(default_factory=dict)  # task key -> rows kept by the seeded max_rows sample
    seed: int | None = None  # the sample's seed

    def load_args(self, key: str) -> dict[str, Any]:
        """The `datasets.load_dataset` keywords that read the split under `key` ("train", "eval",
        "test") again, before any `max_rows` sample."""
        split = self.splits[key]
        base = split.split("[", 1)[0]
        files: dict[str, list[str]] | None = None
        if self.data_files is not None and base in self.data_files:
            # This split's files only: a packaged builder casts all its files to one schema, and
            # a test file may lack the label column the others have.
            files = {base: list(self.data_files[base])}
        elif self.data_files is not None:
            files = {name: list(paths) for name, paths in self.data_files.items()}
        return {
            "path": self.path,
            "name": self.name,
            "data_dir": self.data_dir,
            "data_files": files,
            "revision": self.revision,
            "split": split,
        }

    def __str__(self) -> str:
        parts = [self.path]
        for key in ("name", "revision", "data_dir"):
            if getattr(self, key):
                parts.append(f"{key}={getattr(self, key)}")
        if self.data_files:
            files = {name: list(paths) for name, paths in self.data_files.items()}
            parts.append(f"data_files={files}")
        if self.sampled:
            parts.append(f"sampled={dict(self.sampled)} seed={self.seed}")
        return " ".join(parts)


@dataclass
class TaskData:
    """A dataset plugin's result: splits under the fixed keys "train", "eval" and maybe "test".

    Every split has the `text_columns` and a `label` column of targets as the task encoded them
    (`Task.read_targets`).
    """

    splits: dict[str, Dataset]
    text_columns: tuple[str, ...]
    task: Task  # with its targets read
    source: DataSource | None = None  # where the rows came from, to log and reload them
    test_has_labels: bool = False
    ids: dict[str, Sequence[Any]] = field(default_factory=dict)  # row ids per split, for predictions
    id_column: str = "id"  # the ids' column name in the data, kept in the predictions file


class TextEncoder(Protocol):
    """A tokenizer plugin's result."""

    tokenizer: Any  # the Hugging Face tokenizer, saved with the model and given to collators
    max_length: int | None

    def encode(self, data: TaskData) -> dict[str, Dataset]:
        """Every split as the model takes it (`Task.encode` on each batch of rows), torch format."""


class Adapter(Protocol):
    """An adapter plugin's result ([adapter], optional): a few weights trained beside a frozen
    model (LoRA), saved alone, and put back on that model to predict."""

    save_merged: bool  # the run also saves the model with the adapter merged into its weights

    def describe(self) -> str:
        """The adapter in a few words, for the console: `LoRA r=8 on query, value`."""

    def attach(self, model: Any, head: Head) -> Any:
        """The model plugin's model (with the task's `head`) and the adapter on it: a torch module
        whose trainable parameters are the adapter's and those of the modules it trains whole (the
        head). A BuildError on the key to fix (a layer name no module has), before training."""

    def save(self, model: Any, folder: Path) -> None:
        """After the runner saved the trained `model` in `folder` with `save_pretrained` (which
        writes the adapter alone): whatever else `load` needs there."""

    def merge(self, model: Any) -> Any:
        """The trained model with the adapter merged into its weights (changing `model`): a plain
        transformers model, saved as any other."""

    def load(self, folder: Path, model_class: str, base_model: str | None) -> Any:
        """The model saved in `folder`, ready to predict: its base model (`base_model` when given,
        else the one the adapter records), as the transformers Auto class `model_class`, with the
        adapter. An OSError that says what is missing (the base model) and how to point to it."""


class Metric(Protocol):
    """A metric plugin's result: named scores from predictions and references."""

    def compute(self, predictions: np.ndarray, references: np.ndarray) -> dict[str, float]:
        """Class ids (or floats for regression) in, `{"accuracy": 0.85, ...}` out."""


@dataclass
class Parts:
    """Everything the recipe built for a runner, in the order it was built."""

    data: TaskData
    encoder: TextEncoder
    encoded: dict[str, Dataset]  # tokenized splits: "train", "eval", maybe "test"
    collator: Any
    model: Any
    optimizer: Any
    scheduler: Any
    metrics: Sequence[Metric]
    hardware: Any  # tracker.hardware.Hardware
    seed: int
    num_training_steps: int
    output_dir: Path  # where this run may write models and predictions
    console: Console = field(default_factory=Console)  # progress bars and phase lines, as verbose as asked
    # tracker.resume.CheckpointPlan: when to save checkpoints, where, and the one a resumed run continues from
    checkpoints: Any = None
    # Asked after each evaluation, with the step and the evaluation's metrics: True stops training
    # there (a sweep's pruner giving up on its trial). The runner then skips test predictions and
    # the model, and says so in RunResult.cut_short.
    should_stop: Callable[[int, Mapping[str, float]], bool] | None = None

    @property
    def task(self) -> Task:
        """The task, its targets read: how model outputs become predictions."""
        return self.data.task


@dataclass(frozen=True)
class TrackedRun:
    """Where a run lives in MLflow, and how to look at it."""

    run_id: str
    run_name: str
    experiment_name: str
    experiment_id: str
    tracking_uri: str  # passwords masked
    ui_command: str  # the command that opens the MLflow UI on this store
    run_url: str  # the run's page in that UI


@dataclass
class RunResult:
    """What a runner hands back: final metrics, the learning-curve reading, what it saved; the
    recipe adds where the run and its model were tracked."""

    eval_metrics: dict[str, float]
    test_metrics: dict[str, float] = field(default_factory=dict)
    curves: Any = None  # tracker.diagnosis.Curves: the training loss and every evaluation, by step
    predictions: Any = None  # tracker.diagnosis.PredictionStats of the last evaluation
    diagnosis: Any = None  # tracker.diagnosis.Diagnosis, which the recipe makes of the two
    best_step: int | None = None
    steps: int = 0
    predictions_path: Path | None = None
    model_dir: Path | None = None  # the plain save_pretrained copy, for from_pretrained
    output_dir: Path | None = None
    tracked: TrackedRun | None = None  # None when tracking is off
    model_uri: str | None = None  # models:/<model id>, when the model was logged
    registered_model: str | None = None  # "name/version" in the Model Registry
    cut_short: bool = False  # training stopped because Parts.should_stop said so

    @property
    def run_id(self) -> str | None:
        return self.tracked.run_id if self.tracked else None


class Runner(Protocol):
    """A runner plugin's result: owns the training settings and the train/evaluate/predict loop."""

    def setup(self, hardware: Any) -> None:
        """Prepare the device or the distributed processes, before any data is loaded."""

    @property
    def is_main_process(self) -> bool:
        """Only the main process logs, prints progress and saves."""

    def main_process_first(self) -> AbstractContextManager[None]:
        """Data preparation runs under this, so the main process fills the cache for the others."""

    def num_training_steps(self, train_rows: int) -> int:
        """Optimizer steps of the whole run, which the scheduler needs up front."""

    def run(self, parts: Parts, logger: Any) -> RunResult:
        """Train, evaluate, predict and save."""

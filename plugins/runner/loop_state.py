"""What the loop and Accelerate runners save in a checkpoint, and how they continue from one exactly.

A checkpoint folder holds `training.pt` (model, optimizer, scheduler, gradient scaler, the best
weights kept for early stopping, and `LoopProgress`) and one `rng-<process>.pt` per process (the
Python, NumPy, torch and CUDA random states). The data order is the training loader's own seeded
generator: its state when the current epoch began is saved, so resuming draws the same shuffle
again and skips the rows already trained on without loading them. Everything is read back with
`torch.load(weights_only=True)`: a checkpoint holds tensors and plain values, never code.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

TRAINING_FILE = "training.pt"


class ResumableSampler:
    """The training loader's sampler (shuffled, or grouped by length) that can skip the rows
    already trained on in its next pass, without loading them; it draws from `generator`."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.skip = 0

    @property
    def generator(self) -> Any:  # accelerate synchronizes this generator across processes
        return self.inner.generator

    def __len__(self) -> int:
        return len(self.inner)

    def __iter__(self) -> Iterator[int]:
        skip, self.skip = self.skip, 0
        for position, index in enumerate(self.inner):
            if position >= skip:
                yield index

    def order(self) -> Any:
        return self.generator.get_state()

    def replay(self, order: Any, skip_rows: int) -> None:
        """The next pass draws the order of a pass that began with the generator at `order`, and
        starts `skip_rows` rows into it."""
        self.generator.set_state(order)
        self.skip = skip_rows


@dataclass
class LoopProgress:
    """Where the loop stands: everything besides the model, optimizer and scheduler that a
    resumed run needs to go on as if it had never stopped."""

    step: int = 0  # optimizer steps done
    epoch: int = 0
    batches_done: int = 0  # batches of `epoch` trained on
    epoch_complete: bool = False  # `epoch` ended, its evaluation included
    epochs_done: float = 0.0  # the fraction of the data seen, as the Trainer counts it
    epoch_order: Any = None  # the training generator's state when `epoch` began
    order_now: Any = None  # its state now (saved with the checkpoint)
    stopped: bool = False  # early stopping said stop
    window: dict[str, Any] = field(default_factory=dict)  # training loss and counts since the last log
    early_stopping: dict[str, Any] | None = None
    best_metrics: dict[str, float] | None = None
    last_eval: tuple[int, dict[str, float]] | None = None
    train_curve: list[tuple[int, float]] = field(default_factory=list)
    evaluations: list[tuple[int, dict[str, float]]] = field(default_factory=list)  # (step, metrics) each
    prediction_stats: dict[str, Any] | None = None  # of the last evaluation (tracker.diagnosis.PredictionStats)


def save_checkpoint(
    folder: Path,
    backend: Any,
    model: Any,
    optimizer: Any,
    scheduler: Any,
    progress: LoopProgress,
    best_state: dict[str, Any] | None,
) -> None:
    """Every process writes its random states; the main process writes the rest."""
    import torch

    torch.save(_random_states(), folder / f"rng-{backend.process_index}.pt")
    if backend.is_main_process:
        scaler = backend.scaler
        torch.save(
            {
                "model": trained_state(backend.unwrap(model)),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict() if scaler else None,
                "best_model": best_state,
                "progress": asdict(progress),
            },
            folder / TRAINING_FILE,
        )


def load_checkpoint(
    folder: Path, backend: Any, model: Any, optimizer: Any, scheduler: Any
) -> tuple[LoopProgress, dict[str, Any] | None]:
    """Restore the model, optimizer, scheduler and scaler from `folder`: the progress and best
    weights it held. The random states are restored separately, last (`restore_random_states`)."""
    import torch

    saved = torch.load(folder / TRAINING_FILE, map_location="cpu", weights_only=True)
    load_trained_state(backend.unwrap(model), saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    if backend.scaler and saved["scaler"] is not None:
        backend.scaler.load_state_dict(saved["scaler"])
    known = {f.name for f in fields(LoopProgress)}  # a checkpoint of an older xp may hold keys since renamed
    return LoopProgress(**{k: v for k, v in saved["progress"].items() if k in known}), saved["best_model"]


def trained_state(model: Any) -> dict[str, Any]:
    """The model's state that training changes: all of it but the frozen weights (a base model
    under an adapter), which the model is built with again on resume."""
    frozen = _frozen(model)
    return {name: value for name, value in model.state_dict().items() if name not in frozen}


def load_trained_state(model: Any, state: dict[str, Any]) -> None:
    """Put back a `trained_state` of a model built the same way."""
    missing, unexpected = model.load_state_dict(state, strict=False)
    not_frozen = set(missing) - _frozen(model)
    if unexpected or not_frozen:
        raise RuntimeError(
            f"the checkpoint does not fit the model: unexpected {sorted(unexpected)[:5]}, "
            f"missing {sorted(not_frozen)[:5]}"
        )


def _frozen(model: Any) -> set[str]:
    return {name for name, param in model.named_parameters(remove_duplicate=False) if not param.requires_grad}


def restore_random_states(folder: Path, backend: Any) -> None:
    """This process's random states as they were at the save: dropout draws the same masks."""
    import numpy as np
    import torch

    states = torch.load(folder / f"rng-{backend.process_index}.pt", weights_only=True)
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy = states["numpy"]
    np.random.set_state(
        (
            numpy["bit_generator"],
            np.asarray(numpy["key"], dtype=np.uint32),
            numpy["pos"],
            numpy["has_gauss"],
            numpy["cached_gaussian"],
        )
    )
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _random_states() -> dict[str, Any]:
    import numpy as np
    import torch

    state = np.random.get_state(legacy=True)
    assert isinstance(state, tuple)  # the legacy form of the global generator's state: an MT19937 is a tuple
    bit_generator, key, pos, has_gauss, cached_gaussian = state
    return {
        "python": random.getstate(),
        "numpy": {
            "bit_generator": bit_generator,
            "key": key.tolist(),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }

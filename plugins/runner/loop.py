"""The `loop` runner: the hand-written PyTorch training loop of the course, on one device."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xp_plugins.runner.settings import TrainingSettings


@dataclass(kw_only=True)
class LoopRunner(TrainingSettings):
    """The course's hand-written loop: DataLoader, AdamW, scheduler, tqdm, evaluation each epoch."""

    def run(self, parts: Any, logger: Any) -> Any:
        from xp_plugins.runner.backends import PlainBackend
        from xp_plugins.runner.training_loop import train_and_evaluate

        backend = PlainBackend(self.hardware, self.gradient_accumulation_steps)
        return train_and_evaluate(self, parts, backend, logger)

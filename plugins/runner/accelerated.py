"""The `accelerate` runner: the same loop on `accelerate.Accelerator`, unchanged under
`accelerate launch` or `torchrun` with several processes."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, ClassVar

from xp_plugins.runner.settings import TrainingSettings


@dataclass(kw_only=True)
class AccelerateRunner(TrainingSettings):
    """The hand-written loop on Accelerate: many devices, mixed precision, gradient accumulation."""

    accelerator: Any = field(init=False, default=None, repr=False)
    # `xp run --processes N` may start it on N processes (tracker.launch).
    runs_on_several_processes: ClassVar[bool] = True

    def setup(self, hardware: Any) -> None:
        from accelerate import Accelerator

        super().setup(hardware)
        self.accelerator = Accelerator(
            mixed_precision=hardware.mixed_precision,
            gradient_accumulation_steps=self.gradient_accumulation_steps,
            cpu=hardware.device == "cpu",
        )

    @property
    def is_main_process(self) -> bool:
        return self.accelerator.is_main_process if self.accelerator else super().is_main_process

    def main_process_first(self) -> contextlib.AbstractContextManager[None]:
        return self.accelerator.main_process_first()

    def run(self, parts: Any, logger: Any) -> Any:
        from xp_plugins.runner.backends import AccelerateBackend
        from xp_plugins.runner.training_loop import train_and_evaluate

        return train_and_evaluate(self, parts, AccelerateBackend(self.accelerator), logger)

    def num_training_steps(self, train_rows: int) -> int:
        # A prepared scheduler steps once per process for each optimizer step (accelerate's
        # AcceleratedScheduler), so a fixed step budget is counted per process too.
        steps = super().num_training_steps(train_rows)
        return steps * self.accelerator.num_processes if self.max_steps else steps

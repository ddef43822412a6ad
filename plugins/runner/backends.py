"""The few operations where the plain loop and the Accelerate loop differ, behind one interface.

The training loop (`training_loop.py`) is written once against this; `PlainBackend` is the
course's hand-written loop on one device, `AccelerateBackend` runs it on `accelerate.Accelerator`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


class DeviceLoader:
    """A DataLoader whose batches arrive on the training device."""

    def __init__(self, loader: Any, device: Any):
        self.loader, self.device = loader, device

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for batch in self.loader:
            yield {key: value.to(self.device, non_blocking=True) for key, value in batch.items()}


class PlainBackend:
    """One process, one device: `loss.backward()`, `optimizer.step()`, torch.autocast."""

    is_main_process = True
    num_processes = 1
    process_index = 0

    def __init__(self, hardware: Any, accumulation_steps: int):
        import torch

        self.torch = torch
        self.device = torch.device(hardware.device)
        self.autocast_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(hardware.precision)
        # fp16 gradients underflow without loss scaling; bf16 has fp32's range and needs none.
        self.scaler = torch.amp.GradScaler(hardware.device) if hardware.precision == "fp16" else None
        self.accumulation_steps = accumulation_steps
        self.micro_step = 0
        self.sync_gradients = True

    def prepare(self, model: Any, optimizer: Any, scheduler: Any, *loaders: Any) -> tuple[Any, ...]:
        model.to(self.device)
        return (model, optimizer, scheduler, *(DeviceLoader(loader, self.device) for loader in loaders))

    @contextlib.contextmanager
    def accumulate(self, model: Any, last_batch: bool) -> Iterator[None]:
        self.micro_step += 1
        self.sync_gradients = last_batch or self.micro_step % self.accumulation_steps == 0
        if self.sync_gradients:
            self.micro_step = 0
        yield

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return self.torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def backward(self, loss: Any) -> None:
        loss = loss / self.accumulation_steps  # as accelerator.backward does
        (self.scaler.scale(loss) if self.scaler else loss).backward()

    def clip_grad_norm(self, model: Any, optimizer: Any, max_norm: float | None) -> Any:
        if self.scaler:
            self.scaler.unscale_(optimizer)
        # An infinite threshold clips nothing but still returns the norm we log.
        return self.torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm or float("inf"))

    def optimizer_step(self, optimizer: Any) -> None:
        if self.scaler:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()

    def gather_for_metrics(self, tensors: Any) -> Any:
        return tensors

    def pad_across_processes(self, tensor: Any, pad_index: int) -> Any:
        return tensor

    def reduce(self, tensor: Any, reduction: str) -> Any:
        return tensor

    def unwrap(self, model: Any) -> Any:
        return model

    def wait_for_everyone(self) -> None:
        pass


class AccelerateBackend:
    """The same operations through `accelerate.Accelerator`, for one or many processes."""

    def __init__(self, accelerator: Any):
        self.accelerator = accelerator
        self.device = accelerator.device

    @property
    def is_main_process(self) -> bool:
        return self.accelerator.is_main_process

    @property
    def num_processes(self) -> int:
        return self.accelerator.num_processes

    @property
    def process_index(self) -> int:
        return self.accelerator.process_index

    @property
    def scaler(self) -> Any:
        return self.accelerator.scaler

    @property
    def sync_gradients(self) -> bool:
        return self.accelerator.sync_gradients

    def prepare(self, model: Any, optimizer: Any, scheduler: Any, *loaders: Any) -> tuple[Any, ...]:
        return tuple(self.accelerator.prepare(model, optimizer, scheduler, *loaders))

    def accumulate(self, model: Any, last_batch: bool) -> contextlib.AbstractContextManager[Any]:
        return self.accelerator.accumulate(model)  # knows the end of the dataloader itself

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()  # prepare() already wrapped the model's forward in autocast

    def backward(self, loss: Any) -> None:
        self.accelerator.backward(loss)

    def clip_grad_norm(self, model: Any, optimizer: Any, max_norm: float | None) -> Any:
        return self.accelerator.clip_grad_norm_(model.parameters(), max_norm or float("inf"))

    def optimizer_step(self, optimizer: Any) -> None:
        optimizer.step()

    def gather_for_metrics(self, tensors: Any) -> Any:
        return self.accelerator.gather_for_metrics(tensors)

    def pad_across_processes(self, tensor: Any, pad_index: int) -> Any:
        """Rows of different lengths in each process (per-token outputs) padded to the longest,
        so that they can be gathered."""
        if tensor.ndim < 2:
            return tensor
        return self.accelerator.pad_across_processes(tensor, dim=1, pad_index=pad_index)

    def reduce(self, tensor: Any, reduction: str) -> Any:
        return self.accelerator.reduce(tensor, reduction)

    def unwrap(self, model: Any) -> Any:
        return self.accelerator.unwrap_model(model)

    def wait_for_everyone(self) -> None:
        self.accelerator.wait_for_everyone()

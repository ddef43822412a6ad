"""Turning `[hardware]` into the device and precision a run will really use, before any data loads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tracker.errors import BuildError


@dataclass(frozen=True)
class Hardware:
    device: str  # "cpu", "cuda" or "mps": never "auto"
    precision: str  # "fp32", "fp16" or "bf16"
    cpu_threads: int | None = None

    @property
    def mixed_precision(self) -> str:
        """The spelling Accelerate uses: "no", "fp16" or "bf16"."""
        return "no" if self.precision == "fp32" else self.precision


def resolve_hardware(settings: Mapping[str, Any]) -> Hardware:
    """Pick the device for "auto" and refuse requests this machine cannot honour."""
    import torch

    requested = settings["device"]
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": _mps_available(torch)}
    if requested == "auto":
        device = "cuda" if available["cuda"] else "mps" if available["mps"] else "cpu"
    elif not available[requested]:
        raise BuildError(
            "device",
            f'"{requested}" was requested but this machine has no {requested.upper()} '
            f'device that torch can use; use device = "auto" or "cpu"',
        )
    else:
        device = requested
    # The rules [hardware] declares (fp16 needs a GPU), now that "auto" has become a device.
    from tracker.spec.keys import run_rules
    from tracker.spec.sections import fixed_spec

    refused = run_rules(fixed_spec("hardware").rules, {**settings, "device": device})
    if refused:
        key, message = refused[0]
        raise BuildError(
            key, message if requested == device else f'{message} (device = "{requested}" is "{device}" on this machine)'
        )
    precision = settings["precision"]
    if precision == "bf16" and device == "cuda" and not torch.cuda.is_bf16_supported():
        raise BuildError("precision", 'this GPU does not support bf16; use precision = "fp16" or "fp32"')
    threads = settings.get("cpu_threads")
    if threads is not None:
        torch.set_num_threads(threads)
    return Hardware(device, precision, threads)


def _mps_available(torch: Any) -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())

"""Run a Python script or module with timing probes, identically for every benchmark variant.

    python bench/probe.py OUT.json script.py [args...]
    python bench/probe.py OUT.json -m tracker run experiments/mrpc_loop.toml [--set ...]

The probes see only what every variant has in common, so none of them needs instrumenting:
- a global optimizer post-step hook (torch.optim) stamps the time of every optimizer step,
  whether the loop, the Trainer or Accelerate calls `step()`;
- `datasets.Dataset.map` is timed, the tokenization of all three recipes;
- global torch module forward hooks stamp the end of the first forward pass of a whole model
  (the outermost module called: a prediction's first batch), then remove themselves;
- at exit: the peak resident memory of the process.
`BENCH_LAUNCHED_AT` (time.time() when the harness started the process) gives the time from
launch to the first optimizer step and to the end of the first forward pass, interpreter start-up
included.
"""

from __future__ import annotations

import atexit
import importlib.abc
import itertools
import json
import os
import resource
import runpy
import sys
import time

_launched_at = float(os.environ.get("BENCH_LAUNCHED_AT", time.time()))
_step_times: list[float] = []  # time.perf_counter() after each optimizer step
_first_step_wall: list[float] = []  # time.time() of the first step
_first_forward_wall: list[float] = []  # time.time() at the end of the first outermost forward pass
_map_seconds = [0.0]
_map_depth = [0]


def _after_optimizer_step(optimizer, args, kwargs) -> None:
    _step_times.append(time.perf_counter())
    if not _first_step_wall:
        _first_step_wall.append(time.time())


def _install_step_hook(optim) -> None:
    optim.register_optimizer_step_post_hook(_after_optimizer_step)


def _install_forward_stamp(module) -> None:
    """Hooks on every module's forward: a pre-hook counts the calls under way, and when the
    outermost one (the model) returns, its end is stamped and both hooks are removed."""
    depth = [0]

    def before(_module, _args) -> None:
        depth[0] += 1

    def after(_module, _args, _output) -> None:
        depth[0] -= 1
        if depth[0] == 0 and not _first_forward_wall:
            _first_forward_wall.append(time.time())
            for handle in handles:
                handle.remove()

    handles = [module.register_module_forward_pre_hook(before), module.register_module_forward_hook(after)]


def _install_map_timer(arrow_dataset) -> None:
    original = arrow_dataset.Dataset.map

    def timed_map(self, *args, **kwargs):
        _map_depth[0] += 1  # map may call map (num_proc); count the outermost call only
        started = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            _map_depth[0] -= 1
            if _map_depth[0] == 0:
                _map_seconds[0] += time.perf_counter() - started

    arrow_dataset.Dataset.map = timed_map


def _write(out_path: str) -> None:
    gaps = [b - a for a, b in itertools.pairwise(_step_times)]
    record = {
        "steps": len(_step_times),
        "step_times": _step_times,
        "step_gaps": gaps,
        "launch_to_first_step": _first_step_wall[0] - _launched_at if _first_step_wall else None,
        "launch_to_first_forward": _first_forward_wall[0] - _launched_at if _first_forward_wall else None,
        "map_seconds": _map_seconds[0],
        # ru_maxrss is in KiB on Linux
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    with open(out_path, "w") as file:
        json.dump(record, file)


class _WhenImported(importlib.abc.MetaPathFinder):
    """Runs a probe's installer right after the program itself imports the module it patches.
    The probes import nothing up front: a variant's imports happen when and in the order it
    makes them (xp starts its tracking process before importing torch; a probe that imported
    torch first would move that start later for xp alone)."""

    def __init__(self, installers: dict):
        self.installers = installers  # module name -> installer(module)

    def find_spec(self, name, path, target=None):
        if name not in self.installers:
            return None
        spec = next(
            (
                spec
                for finder in sys.meta_path
                if finder is not self and hasattr(finder, "find_spec")
                for spec in [finder.find_spec(name, path, target)]
                if spec is not None
            ),
            None,
        )
        if spec is None or spec.loader is None:
            return None
        install, execute = self.installers.pop(name), spec.loader.exec_module

        def exec_module(module):
            execute(module)
            install(module)

        spec.loader.exec_module = exec_module
        return spec


def main() -> None:
    out_path, target, *rest = sys.argv[1:]
    sys.meta_path.insert(
        0,
        _WhenImported(
            {
                "torch.optim.optimizer": _install_step_hook,
                "torch.nn.modules.module": _install_forward_stamp,
                "datasets.arrow_dataset": _install_map_timer,
            }
        ),
    )
    atexit.register(_write, out_path)
    if target == "-m":
        module, *args = rest
        sys.argv = [module, *args]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    else:
        sys.argv = [target, *rest]
        sys.path.insert(0, os.path.dirname(os.path.abspath(target)))
        runpy.run_path(target, run_name="__main__")


if __name__ == "__main__":
    main()

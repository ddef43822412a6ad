"""`xp run --processes N`: the same command again under torchrun, N training processes on this
machine, each running every experiment; only the first one logs and prints (RANK 0). Multi-node
launches are torchrun's or accelerate's own (docs/scale-out.md)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from tracker.errors import Problem


def already_launched() -> bool:
    """This process is one of several that torchrun or accelerate started."""
    return "WORLD_SIZE" in os.environ


def single_process_problems(experiments: Sequence[Any], registry: Any) -> list[Problem]:
    """Experiments whose runner cannot train on several processes."""
    problems = []
    for experiment in experiments:
        use = experiment.components["runner"].use
        factory = registry.find("runner", use).factory
        if not getattr(factory, "runs_on_several_processes", False):
            problems.append(
                Problem(
                    str(experiment.path),
                    "runner",
                    "use",
                    f'the {use} runner trains on one process; --processes needs use = "accelerate"',
                )
            )
    return problems


def relaunch(argv: Sequence[str], processes: int) -> NoReturn:
    """Replace this process by torchrun starting `processes` copies of the `xp` command `argv`
    (without its --processes): signals (Ctrl-C) reach torchrun, which passes them on."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(processes),
        "-m",
        "tracker",
        *without_processes(argv),
    ]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, command)


def without_processes(argv: Sequence[str]) -> list[str]:
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--processes":
            skip = True
        elif not arg.startswith("--processes="):
            kept.append(arg)
    return kept

"""One experiment of `xp run --executor ...`, in a process of its own: `python -m
tracker.executors.worker` reads its order (the file, the command line's edits) on stdin, runs the
experiment as `xp run` would, and writes how it ended to the result file the order names."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tracker.errors import EXIT_INTERRUPTED
from tracker.garbage_collection import collect_nothing_at_exit


def run_order(order: Mapping[str, Any]) -> dict[str, Any]:
    from tracker.api import load_experiments
    from tracker.console import Console
    from tracker.recipe import run_tracked
    from tracker.registry import load_registry
    from tracker.session import run_one, run_summary
    from tracker.spec.parse import parse_override, parse_unset

    registry = load_registry()
    experiments, problems = load_experiments(
        [order["file"]],
        [parse_override(text) for text in order["overrides"]],
        registry,
        [parse_unset(text) for text in order["unsets"]],
        order["allow_code"],
    )
    if problems:
        return {"status": "invalid", "seconds": 0.0, "error": "; ".join(str(p) for p in problems)}
    [experiment] = experiments
    console = Console(order["verbosity"])
    execute = functools.partial(run_tracked, console=console)
    try:
        outcome = run_one(experiment, registry, execute, lambda text: print(text, file=sys.stderr))
    except KeyboardInterrupt:
        return {"status": "killed", "seconds": 0.0, "error": "stopped"}
    result = outcome.result
    return {
        "status": outcome.status,
        "seconds": outcome.seconds,
        "error": outcome.error,
        "summary": run_summary(outcome),
        "eval_metrics": result.eval_metrics if result else {},
        "tracked": asdict(result.tracked) if result is not None and result.tracked is not None else None,
    }


def main() -> int:
    from tracker.executors import stop_with_parent
    from tracker.hub import offline_unless_the_hub_answers

    offline_unless_the_hub_answers()  # a Ray task's process: the command's answer stayed on its machine
    order = json.loads(sys.stdin.read())
    stop_with_parent(order)
    ended = run_order(order)
    Path(order["result"]).write_text(json.dumps(ended), encoding="utf-8")
    return {"finished": 0, "invalid": 2, "killed": EXIT_INTERRUPTED}.get(ended["status"], 1)


if __name__ == "__main__":
    collect_nothing_at_exit()
    sys.exit(main())

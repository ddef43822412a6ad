"""The one way the suites start a command: from the repository root (unless told otherwise),
offline, its console to a log file, timed; a failure stops the benchmark with the end of that log."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from variants import ROOT

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def timed_run(
    command: list[str], log_path: Path, what: str, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> float:
    """Wall seconds of `command`, run to its end in `cwd`; `what` names it if it fails."""
    with log_path.open("w") as log:
        started = time.perf_counter()
        finished = subprocess.run(
            command,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
            env={**os.environ, **OFFLINE, **(env or {})},
        )
        seconds = time.perf_counter() - started
    if finished.returncode != 0:
        raise SystemExit(f"{what} failed (exit {finished.returncode}); its output:\n{log_path.read_text()[-4000:]}")
    return seconds

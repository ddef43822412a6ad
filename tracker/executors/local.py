"""Jobs as processes of this machine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

from tracker.executors import PARENT


class LocalHandle:
    def __init__(self, process: subprocess.Popen, log: Any):
        self.process, self.log = process, log

    def wait(self, timeout: float) -> bool:
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        if self.log is not None:
            self.log.close()
        return True

    def stop(self, kill: bool = False) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)

    @property
    def returncode(self) -> int | None:
        return self.process.poll()

    @property
    def pid(self) -> int:
        return self.process.pid


class LocalExecutor:
    shares_console = True

    def start(
        self,
        module: str,
        order: Mapping[str, Any],
        log: str | None = None,
        cpus: float | None = None,
        gpus: float | None = None,
    ) -> LocalHandle:
        """`cpus` and `gpus` are for a scheduler: here every job takes what the machine has."""
        output = open(log, "w", encoding="utf-8") if log else None  # noqa: SIM115 - closed when the job ends
        # Its own session: the terminal's Ctrl-C reaches xp, which stops its jobs itself.
        process = subprocess.Popen(
            [sys.executable, "-m", module],
            stdin=subprocess.PIPE,
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            start_new_session=True,
        )
        assert process.stdin is not None  # stdin=PIPE
        process.stdin.write(json.dumps({**order, PARENT: os.getpid()}).encode())
        process.stdin.close()
        return LocalHandle(process, output)

    def close(self) -> None:
        pass

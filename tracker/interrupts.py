"""Ctrl-C and SIGTERM around a tracked run: the first one stops training (KeyboardInterrupt, or
Terminated for SIGTERM); any that follow, and any that come while the run is being ended
(metrics flushed, console log uploaded, status set), are noted but never cut that short, so the
run always ends KILLED or FINISHED in the store instead of staying RUNNING."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from typing import Any

STOPPING = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an exception so the run can be ended KILLED like on Ctrl-C."""


class Stops:
    """The stop signals that came during a run; after the first, or once `hold()` is called, they
    are only counted."""

    def __init__(self, say: Callable[[str], None]):
        self.say = say
        self.came: list[int] = []
        self.holding = False
        self.told = False

    def hold(self) -> None:
        """From now on a stop signal is noted, not raised: the run is being ended."""
        self.holding = True

    def handle(self, signum: int, frame: Any) -> None:
        self.came.append(signum)
        if not self.holding:
            self.holding = True
            raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()
        if not self.told:  # once, not at every key press
            self.told = True
            self.say("ending the run in the store first; it stops right after (kill -9 abandons it)")


@contextlib.contextmanager
def stops_of_run(say: Callable[[str], None]) -> Iterator[Stops]:
    """Ctrl-C and SIGTERM handled by a Stops for the block; the handlers that were there are put
    back after. Outside the main thread (tracker.run from a worker thread) signals cannot be
    handled, so nothing changes there."""
    stops = Stops(say)
    previous = {}
    try:
        for signum in STOPPING:
            previous[signum] = signal.signal(signum, stops.handle)
    except ValueError:  # not the main thread
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        yield stops
        return
    try:
        yield stops
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

"""Python's cyclic garbage collector in xp's processes: paused while a run starts, and skipped
when a process exits.

Start-up. Importing torch, transformers and datasets, then loading data and model (or, in the
tracking process, importing MLflow, SQLAlchemy and pandas), makes close to a million objects
that live as long as the process, and the collector scans all of them at every full collection:
on the way to the first training step of the MRPC loop, 7 full collections and 1.0 s of CPU in
the training process (the course script pays the same), 5 and 0.45 s in the tracking process.
Hardly any of it is garbage: 13,500 small objects (7.5 MiB) left over by imports, no tensor, as
many with 30 times the training rows. So while a run starts, the collector is off; when
training begins, what start-up made is frozen (`gc.freeze`: moved where collections never look)
and the collector is on again, so collections during training scan only what training makes.
When the run is over the frozen objects are handed back (`gc.unfreeze`), start-up's leftovers
with them.

Exit. An exiting interpreter collects again while it tears its modules down: 1.2 s after a
training run, 0.8 s in the tracking process, which the run waits for. The process's memory goes
back to the system anyway, so xp's processes freeze everything instead, once every other exit
handler has run (files flushed, children stopped, temporary folders removed).
"""

from __future__ import annotations

import atexit
import contextlib
import gc
from collections.abc import Iterator


class StartUp:
    """While it lasts, the collector is off until `over()`."""

    def __init__(self, enabled: bool, may_freeze: bool):
        self.enabled = enabled  # the collector's state before: a notebook may have turned it off
        # Objects frozen by someone else (a program embedding xp) would be handed back with ours.
        self.may_freeze = may_freeze
        self.frozen = False

    def over(self) -> None:
        """Start-up is over: what it made is frozen, and the collector works again."""
        if self.may_freeze and not self.frozen:
            gc.freeze()
            self.frozen = True
        if self.enabled:
            gc.enable()


@contextlib.contextmanager
def collector_paused() -> Iterator[StartUp]:
    """The collector is off from here until the start-up's `over()`; at the end everything is
    as it was, frozen objects handed back to the collector."""
    # What an earlier run of this process left (a notebook's, or `xp run a.toml b.toml`'s first)
    # goes now rather than being frozen with this start-up: a full collection, quick on the small
    # heap of a process that has not imported torch yet (20 ms), 0.6 s after a run.
    gc.collect()
    start_up = StartUp(gc.isenabled(), may_freeze=gc.get_freeze_count() == 0)
    gc.disable()
    try:
        yield start_up
    finally:
        if start_up.frozen:
            gc.unfreeze()
        if start_up.enabled:
            gc.enable()


def collect_nothing_at_exit() -> None:
    """For the entry point of an xp process: when it exits, the interpreter does not collect
    what it still holds. Registered first, the freeze runs after every exit handler registered
    later (they run last in, first out)."""
    atexit.register(gc.freeze)

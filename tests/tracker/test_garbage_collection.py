"""While a run starts (imports, data, model) Python's garbage collector is off; when training
starts, what start-up made is frozen where collections never look; when the run is over,
everything is as it was. xp's processes do not collect at exit (tracker.garbage_collection,
BENCHMARKS.md: time to the first step)."""

from __future__ import annotations

import gc
import io
import os
import queue
import subprocess
import sys
import threading
import weakref
from typing import ClassVar

import pytest

from tests.mlflow_helpers import QUICKSTART, quickstart_overrides, sqlite_store
from tracker.api import load
from tracker.garbage_collection import collector_paused
from tracker.hookspecs import hookimpl
from tracker.recipe import run_tracked
from tracker.registry import load_registry
from tracker.tracking import service
from tracker.tracking.spool import Spool
from xp_plugins.runner.loop import LoopRunner


@pytest.fixture(autouse=True)
def collector_as_python_starts_it():
    assert gc.isenabled() and gc.get_freeze_count() == 0
    yield
    gc.unfreeze()
    gc.enable()


def test_the_collector_is_off_while_starting_then_on_with_start_up_frozen():
    with collector_paused() as start_up:
        made_while_starting = [[]]  # a container: the collector tracks it
        assert not gc.isenabled()
        start_up.over()
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0
        assert not any(thing is made_while_starting for thing in gc.get_objects())  # out of its sight
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_a_start_up_that_fails_leaves_the_collector_on():
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("the model did not load")
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_a_collector_turned_off_by_the_caller_stays_off():
    gc.disable()  # a notebook's choice
    with collector_paused() as start_up:
        start_up.over()
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_objects_someone_else_froze_stay_frozen():
    gc.freeze()  # a program embedding xp, before forking its workers
    frozen = gc.get_freeze_count()
    with collector_paused() as start_up:
        start_up.over()
    assert gc.get_freeze_count() == frozen


def test_garbage_left_by_an_earlier_run_is_collected_not_frozen():
    class Cycle:
        pass

    left = Cycle()
    left.itself = left  # only the collector frees it
    alive = weakref.ref(left)
    del left
    with collector_paused():
        assert alive() is None


class ObservedRunner(LoopRunner):
    """The loop runner, noting the collector's state while the run is built and when it trains."""

    seen: ClassVar[dict[str, tuple[bool, int]]] = {}

    def num_training_steps(self, train_rows: int) -> int:  # asked while the run is built
        ObservedRunner.seen["building"] = (gc.isenabled(), gc.get_freeze_count())
        return super().num_training_steps(train_rows)

    def run(self, parts, logger):
        ObservedRunner.seen["training"] = (gc.isenabled(), gc.get_freeze_count())
        return super().run(parts, logger)


class ObservedPlugin:
    @hookimpl
    def xp_register_runners(self, register):
        register("observed", ObservedRunner)


def test_a_run_builds_with_the_collector_off_and_trains_with_its_start_up_frozen(tiny_checkpoint, tmp_path):
    registry = load_registry(extra_plugins=[(ObservedPlugin(), "observed")])
    experiment = load(
        QUICKSTART,
        quickstart_overrides(tiny_checkpoint, tmp_path, sqlite_store(tmp_path), 'runner.use="observed"'),
        registry,
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        run_tracked(experiment, registry)

    assert ObservedRunner.seen["building"] == (False, 0)
    enabled, frozen = ObservedRunner.seen["training"]
    assert enabled and frozen > 100_000  # torch, transformers, datasets, the model: out of the collector's sight
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_the_tracking_process_warms_up_with_the_collector_off_and_serves_with_it_on(tmp_path):
    seen = {}

    class Observed(service.Service):
        def warm_up(self):
            seen["warming up"] = (gc.isenabled(), gc.get_freeze_count())
            super().warm_up()  # MLflow imported, the store opened

        def take(self, records):
            seen.setdefault("serving", (gc.isenabled(), gc.get_freeze_count()))
            super().take(records)

    inbox: queue.Queue = queue.Queue()
    inbox.put(service._CLOSED)  # the training process went away before starting a run
    tracking = Observed(
        sqlite_store(tmp_path), Spool(tmp_path / "spool"), service.Answers(io.BytesIO()), os.getpid(), tmp_path
    )
    assert tracking.run(inbox, threading.Event()) == 0

    assert seen["warming up"] == (False, 0)
    enabled, frozen = seen["serving"]
    assert enabled and frozen > 0
    assert gc.isenabled() and gc.get_freeze_count() == 0


# Registered before the process's own exit handlers, so it runs after them (last in, first out).
SAYS_IF_FROZEN_AT_EXIT = """
import atexit, gc, runpy, sys
atexit.register(lambda: print("frozen at exit:", gc.get_freeze_count() > 0, file=sys.stderr))
sys.argv = [{module!r}, *{args!r}]
runpy.run_module({module!r}, run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize(
    ("module", "args", "stdin"),
    [
        ("tracker", ["--version"], ""),
        ("tracker.tracking.service", ["--uri", "{store}", "--spool", "{folder}/spool", "--parent", "1"], ""),
        ("tracker.sweep.trial", [], "{}"),  # an empty order: it fails, and exits
        ("tracker.executors.worker", [], "{}"),
    ],
    ids=["xp", "tracking process", "sweep trial", "executor job"],
)
def test_xp_processes_skip_the_collection_at_exit(tmp_path, module, args, stdin):
    args = [arg.format(store=sqlite_store(tmp_path), folder=tmp_path) for arg in args]
    result = subprocess.run(
        [sys.executable, "-c", SAYS_IF_FROZEN_AT_EXIT.format(module=module, args=args)],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.stderr.strip().splitlines()[-1] == "frozen at exit: True", result.stderr[-2000:]

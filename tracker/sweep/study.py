"""The Optuna study behind a sweep: where it lives, what counts as done, and the next trial.

The study is a real database (by default `optuna.db` next to a local MLflow store), so a sweep
stopped any way at all continues where it was, and several `xp sweep` processes share its trials.
Trials are claimed one at a time under a lock, so a study never runs more than its `trials`.

A trial is *counted* when it finished (complete, pruned, failed for a reason of its own) or is
running or waiting; a trial stopped because its sweep stopped (Ctrl-C, SIGTERM, SIGKILL of the
sweep) is failed with `xp.interrupted` and its values are queued again, so the study runs them
once more instead of losing that point.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import threading
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tracker.experiment import Experiment
from tracker.metric_names import better_lower, evaluation_name
from tracker.redact import mask_uri
from tracker.stores import StoreError, sqlite_database
from tracker.sweep.space import Choice, Dimension, Range, grid_axis, grid_points, trial_overrides

HOST = socket.gethostname()
# A running trial of another machine whose sweep has not beaten for this long is taken as stopped.
STALE_AFTER_SECONDS = 120.0
HEARTBEAT_SECONDS = 15.0
INTERRUPTED = "xp.interrupted"  # user attr of a trial its sweep stopped: not counted, run again
INVALID = "xp.invalid"  # user attr of a failed trial whose values make an invalid experiment: why
RUN_ID = "xp.run_id"  # user attr: the trial's MLflow run
CONTINUES = "xp.continues"  # user attr: the run of an interrupted trial with the same values this one continues
PARENT_RUN = "xp.parent_run_id"  # study user attr: the MLflow run the trials nest under
DIGEST = "xp.digest"  # study user attr: what the study was created for


@dataclass(frozen=True)
class SweepSettings:
    """[sweep], every default resolved against the experiment."""

    method: str
    trials: int
    seed: int
    metric: str  # "eval_f1"
    direction: Literal["maximize", "minimize"]
    parallel: int
    pruner: str
    pruner_startup_trials: int
    study: str
    storage: str
    digest: str

    def shown(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "trials": self.trials,
            "seed": self.seed,
            "metric": self.metric,
            "direction": self.direction,
            "parallel": self.parallel,
            "pruner": self.pruner,
            "pruner_startup_trials": self.pruner_startup_trials,
            "study": self.study,
            "storage": mask_uri(self.storage),
        }


def sweep_settings(experiment: Experiment, tracking_uri: str) -> SweepSettings:

    sweep, space = experiment.sweep, experiment.space
    assert sweep is not None  # sweep_settings_of refuses an experiment without [sweep]
    runner_metric = experiment.components["runner"].options.get("metric_for_best") or "eval_loss"
    metric = evaluation_name(sweep["metric"] or runner_metric)
    direction: Literal["maximize", "minimize"] = sweep["direction"] or (
        "minimize" if better_lower(metric) else "maximize"
    )
    seed = experiment.seed if sweep["seed"] is None else sweep["seed"]
    # The study is what is searched, how, and for what: more trials, more processes or another
    # pruner continue the same study.
    identity = {
        "config": experiment.config_digest,
        "method": sweep["method"],
        "seed": seed,
        "metric": metric,
        "direction": direction,
        "space": {d.key: repr(d.values) for d in space},
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    points = len(grid_points(space)) if sweep["method"] == "grid" else None
    trials = min(sweep["trials"] or points, points) if points is not None else sweep["trials"]
    return SweepSettings(
        sweep["method"],
        trials,
        seed,
        metric,
        direction,
        sweep["parallel"],
        sweep["pruner"],
        sweep["pruner_startup_trials"],
        sweep["study"] or f"{experiment.path.stem}-{digest[:8]}",
        sweep["storage"] or default_storage(tracking_uri),
        digest,
    )


def default_storage(tracking_uri: str) -> str:
    """`optuna.db` beside a local MLflow database; for a tracking server, in ./mlruns."""
    database = sqlite_database(tracking_uri)
    folder = database.parent if database is not None else Path("mlruns")
    return f"sqlite:///{(folder / 'optuna.db').as_posix()}"


def make_pruner(settings: SweepSettings) -> Any:
    import optuna

    if settings.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=settings.pruner_startup_trials)
    if settings.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner()
    return optuna.pruners.NopPruner()


def make_sampler(settings: SweepSettings, trial_number: int) -> Any:
    """A sampler seeded for this trial number: a trial draws the same values whichever process
    runs it, and every trial of a study different ones."""
    import optuna

    seed = (settings.seed + trial_number) % 2**32
    if settings.method == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


def open_storage(url: str) -> Any:
    """Optuna's RDB storage on `url`; a new SQLite database is created under a file lock, so
    sweeps started together do not race to create its tables. A StoreError when the file exists
    but is no Optuna study database (an MLflow store, a text file): it stays as it is."""
    import optuna

    from tracker.preflight import OPTUNA_STUDY, not_the_store

    database = sqlite_database(url)
    if database is None:
        return optuna.storages.RDBStorage(url)
    database.parent.mkdir(parents=True, exist_ok=True)
    with _locked(database.with_name(database.name + ".lock")):
        other = not_the_store(database, OPTUNA_STUDY, mask_uri(url), "study storage") if database.exists() else None
        if other:
            raise StoreError(other)
        # Waits for a busy database rather than failing at once: several processes share it.
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})


@dataclass
class Claimed:
    """A trial this process runs: its Optuna number and id, and the values it sets."""

    number: int
    trial_id: int
    values: dict[str, Any]  # dotted key -> value, in the order of the space (tables of keys spelled out)
    # The run of the interrupted trial with these values, which this one continues from its newest
    # checkpoint (when it saved any); None: a new run.
    continues: str | None = None


class Study:
    """One sweep's study, as this process sees it."""

    def __init__(self, settings: SweepSettings, space: Sequence[Dimension]):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        self.settings, self.space = settings, tuple(space)
        self.storage = open_storage(settings.storage)
        self.lock = threading.Lock()
        self.created = False
        try:
            self.study = optuna.create_study(
                storage=self.storage,
                study_name=settings.study,
                direction=settings.direction,
                pruner=make_pruner(settings),
            )
            self.study.set_user_attr(DIGEST, settings.digest)
            self.created = True
        except optuna.exceptions.DuplicatedStudyError:
            self.study = optuna.load_study(
                storage=self.storage, study_name=settings.study, pruner=make_pruner(settings)
            )

    def belongs(self) -> str | None:
        """Why this study is not the one the sweep describes, or None."""
        digest = self.study.user_attrs.get(DIGEST)
        if digest is not None and digest != self.settings.digest:
            return (
                f'the study "{self.settings.study}" in {mask_uri(self.settings.storage)} was made for another '
                "experiment or space; give this one another name ([sweep] study) or remove that study"
            )
        if self.study.direction.name.lower() != self.settings.direction:
            return f'the study "{self.settings.study}" {self.study.direction.name.lower()}s its metric'
        return None

    @property
    def parent_run_id(self) -> str | None:
        return self.study.user_attrs.get(PARENT_RUN)

    def set_parent_run_id(self, run_id: str) -> None:
        self.study.set_user_attr(PARENT_RUN, run_id)

    def trials(self) -> list[Any]:
        return self.study.get_trials(deepcopy=False)

    def counted(self, trials: Sequence[Any] | None = None) -> list[Any]:
        from optuna.trial import TrialState

        return [
            t
            for t in (self.trials() if trials is None else trials)
            if t.state != TrialState.FAIL or INTERRUPTED not in t.user_attrs
        ]

    def finished(self) -> list[Any]:
        return [t for t in self.counted() if t.state.is_finished()]

    def remaining(self) -> int:
        return max(0, self.settings.trials - len(self.counted()))

    def stale_trials(self) -> list[Any]:
        """Running trials whose sweep is gone: a dead process of this machine, or no heartbeat
        from another machine for STALE_AFTER_SECONDS."""
        from optuna.trial import TrialState

        stale = []
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            host, pid = trial.user_attrs.get("xp.host"), trial.user_attrs.get("xp.pid")
            beat = trial.user_attrs.get("xp.heartbeat", 0)
            if pid == os.getpid() and host == HOST:
                continue
            if (host == HOST and pid is not None and not _alive(pid)) or time.time() - beat > STALE_AFTER_SECONDS:
                stale.append(trial)
        return stale

    def interrupt(self, trial: Any, reason: str, run_id: str | None) -> None:
        """Fail a trial its sweep stopped, and queue its values to be run again."""
        from optuna.trial import TrialState

        with self.lock, self._claim_lock():
            self.storage.set_trial_user_attr(trial._trial_id, INTERRUPTED, reason)
            if run_id is not None:
                self.storage.set_trial_user_attr(trial._trial_id, RUN_ID, run_id)
            self.storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
            if self.settings.method != "grid":  # a grid finds its missing points by itself
                self.study.enqueue_trial(dict(trial.params), user_attrs={"xp.retry_of": trial.number})

    def claim(self) -> Claimed | None:
        """The next trial to run, or None when the study has all its trials."""
        import optuna

        with self.lock, self._claim_lock():
            trials = self.trials()
            if len(self.counted(trials)) >= self.settings.trials:
                return None
            if self.settings.method == "grid":
                taken = [t.params for t in self.counted(trials)]
                missing = [point for point in grid_points(self.space) if point not in taken]
                if missing:
                    self.study.enqueue_trial(missing[0])
            grid = self.settings.method == "grid"
            study = optuna.load_study(
                storage=self.storage,
                study_name=self.settings.study,
                sampler=make_sampler(self.settings, len(trials)),
                pruner=make_pruner(self.settings),
            )
            trial = study.ask()
            values = {
                key: value
                for dimension, suggested in trial_overrides(
                    self.space, lambda dimension, chosen: _suggest(trial, dimension, grid)
                )
                for key, value in dimension.sets(suggested)
            }
            continues = _run_to_continue(trials, trial.params)
            attrs = {"xp.host": HOST, "xp.pid": os.getpid(), "xp.heartbeat": time.time(), CONTINUES: continues}
            for key, value in attrs.items():
                if value is not None:
                    trial.set_user_attr(key, value)
            return Claimed(trial.number, trial._trial_id, values, continues)

    def beat(self, claimed: Claimed) -> None:
        with contextlib.suppress(Exception):  # a busy database: the next beat tries again
            self.storage.set_trial_user_attr(claimed.trial_id, "xp.heartbeat", time.time())

    def tell(self, claimed: Claimed, state: str, value: float | None, attrs: Mapping[str, Any]) -> None:
        from optuna.trial import TrialState

        for key, attr in attrs.items():
            self.storage.set_trial_user_attr(claimed.trial_id, key, attr)
        if state == "COMPLETE":
            self.study.tell(claimed.number, value)
        else:
            self.study.tell(claimed.number, state=TrialState[state])

    @contextlib.contextmanager
    def _claim_lock(self) -> Iterator[None]:
        """Sweeps of this machine on a local study claim one at a time."""
        database = sqlite_database(self.settings.storage)
        if database is None:
            yield
            return
        with _locked(database.with_name(f"{database.name}.{self.settings.study}.claim.lock")):
            yield


def _run_to_continue(trials: Sequence[Any], params: Mapping[str, Any]) -> str | None:
    """The run of the newest interrupted trial with `params`, unless a running trial continues it."""
    from optuna.trial import TrialState

    taken = {t.user_attrs.get(CONTINUES) for t in trials if t.state == TrialState.RUNNING}
    interrupted = [t for t in trials if INTERRUPTED in t.user_attrs and t.params == params and RUN_ID in t.user_attrs]
    newest = max(interrupted, key=lambda t: t.number, default=None)
    return newest.user_attrs[RUN_ID] if newest is not None and newest.user_attrs[RUN_ID] not in taken else None


def state_of(trial: Any) -> str:
    """How a trial ended, as xp says it: Optuna's state, or INTERRUPTED (its sweep stopped it) or
    INVALID (its values make an experiment that fails the checks), both failures to Optuna."""
    if INTERRUPTED in trial.user_attrs:
        return "INTERRUPTED"
    return "INVALID" if INVALID in trial.user_attrs else trial.state.name


def _suggest(trial: Any, dimension: Dimension, grid: bool) -> Any:
    """The trial's value for `dimension`: sampled, or the queued one (a grid point, a retry)."""
    values = dimension.values
    if isinstance(values, Choice):
        return trial.suggest_categorical(dimension.key, list(values.values))
    assert isinstance(values, Range)
    if grid:  # a grid's range is the list of its steps
        return trial.suggest_categorical(dimension.key, list(grid_axis(dimension)))
    if values.integer:
        return trial.suggest_int(dimension.key, values.low, values.high, step=values.step or 1, log=values.log)
    return trial.suggest_float(dimension.key, values.low, values.high, step=values.step, log=values.log)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or the process dies
        yield

"""Tracking records into an MLflow store: the tracking process applies each record a run sends
(start, params, tags, metrics, artifacts, dataset inputs, the model, the end) in order, and
`xp sync` applies a spool's the same way. Applying a record again is harmless: a metric point
already stored is not stored twice, a param or tag gets the same value, an artifact the same file.

Only this module (and MLflow's own modules it calls) runs MLflow code; the training process
never imports MLflow.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tracker.heartbeat import Heartbeat
from tracker.metric_names import runner_name
from tracker.tracking.uris import tracked_run

ATTEMPT_TAG = "xp.attempt"  # 2 and up: how many times the run was started, `xp resume` included
ERROR_TAG = "xp.error"
# MLflow's codes for a store that could not answer now: worth trying again. The REST client says
# INTERNAL_ERROR for a server it cannot reach, as a server does for its own 5xx failures.
_AWAY_CODES = {"TEMPORARILY_UNAVAILABLE", "INTERNAL_ERROR", "REQUEST_LIMIT_EXCEEDED"}
EXPERIMENT_KIND_TAG = ("mlflow.experimentKind", "custom_model_development")
DIAGNOSIS_TAG = "xp.diagnosis"  # tracker.diagnosis.report.TAG, without importing the diagnosis here
MAX_METRICS_PER_BATCH = 1000  # MLflow's limit for one log_batch
MAX_PARAMS_PER_BATCH = 100
MAX_RECORDS_PER_WRITE = 200  # consecutive metrics records sent in one write, at most


class StoreUnavailable(Exception):
    """The store did not take a record now; it may later."""


class NoRun(Exception):
    """A record before its run's start record: it can never be applied."""


def store_away(error: BaseException) -> bool:
    """True when `error` says the store could not be reached or could not answer now (a server
    down, a network gone, a database locked or unreachable); anything else means the store, or
    xp, refused the record itself, and sending it again would not help."""
    if getattr(error, "error_code", None) in _AWAY_CODES:
        return True
    module = type(error).__module__
    if module.startswith(("requests", "urllib3", "sqlalchemy")) and "Integrity" not in type(error).__name__:
        return True
    return isinstance(error, (ConnectionError, TimeoutError))


class StoreWriter:
    """Applies one run's records to the store at `uri` through `client`; `answer` tells the
    training process (or `xp sync`) what happened: the run created, the model logged, the end."""

    def __init__(
        self, client: Any, uri: str, answer: Callable[[dict[str, Any]], None], scratch: Path, live: bool = True
    ):
        """`live`: the run's process is training (the tracking process), so the run gets a
        heartbeat and system metrics; `xp sync` sends records of a run that is over."""
        self.client, self.uri, self.answer, self.scratch, self.live = client, uri, answer, scratch, live
        self.run: dict[str, str] | None = None  # run_id, run_name, experiment_id
        self.history: dict[str, list[tuple[int, float]]] = {}  # runner names, for the curve figures
        self.diagnosis: Mapping[str, str] | None = None  # the xp.diagnosis tags, once the run has them
        self.logged_until: dict[str, int] = {}  # a resumed run: the last step of each metric it has
        self.heartbeat: Heartbeat | None = None
        self.monitor: Any = None
        self.ended = False
        self.refusals: list[str] = []  # what the store refused: a run that "finished" so did not end well
        self.attempt = 1  # the run's attempt (xp resume starts the next)
        self.environment: str | None = None  # installed packages, listed ahead (warm_up)

    def apply(self, records: list[dict[str, Any]]) -> None:
        """Apply `records` (one record, or consecutive metrics records) to the store.
        StoreUnavailable when the store cannot take them now; a record it refuses is reported
        and skipped, so one bad value does not hold back the rest of the run."""
        kind = records[0]["kind"]
        try:
            if kind == "metrics":
                self._metrics([point for record in records for point in record["metrics"]])
            else:
                getattr(self, f"_{kind}")(records[0])
        except Exception as error:
            if store_away(error):
                raise StoreUnavailable(f"{type(error).__name__}: {error}") from error
            self.refusals.append(f"{kind}: {type(error).__name__}: {error}")
            self.answer({"refused": self.refusals[-1]})

    # One method a record kind.

    def _start(self, record: Mapping[str, Any]) -> None:
        if self.run is not None:  # sent again after an outage: the run exists
            return
        if record.get("resume"):
            run = self._reopen(record["resume"])
        else:
            experiment_id = self._experiment_id(record["experiment"])
            run = self.client.create_run(experiment_id, run_name=record["run_name"], tags=_start_tags(record["tags"]))
        self.run = {
            "run_id": run.info.run_id,
            "run_name": run.info.run_name,
            "experiment_id": run.info.experiment_id,
            "experiment": record["experiment"],
        }
        self.answer({"run": self.run})
        if self.live:
            self.heartbeat = Heartbeat(self.client, run.info.run_id).start()
            if record.get("system_metrics"):
                self.monitor = _system_metrics(run.info.run_id, self.uri, resumed=bool(record.get("resume")))

    def _reopen(self, run_id: str) -> Any:
        """A stopped run made RUNNING again for its next attempt. The error that stopped the last
        attempt, if any, is no longer its own; its metric history is kept for the curves, and
        steps it has are not logged again."""
        from mlflow.entities import RunTag
        from mlflow.exceptions import MlflowException

        run = self.client.get_run(run_id)
        self.load_history(run)
        self.logged_until = {
            key: max((step for step, _ in self.history.get(runner_name(key), [])), default=-1)
            for key in run.data.metrics
        }
        self.attempt = int(run.data.tags.get(ATTEMPT_TAG, "1")) + 1
        self.client.update_run(run_id, status="RUNNING")
        self.client.log_batch(run_id, tags=[RunTag(ATTEMPT_TAG, str(self.attempt))])
        if ERROR_TAG in run.data.tags:
            with contextlib.suppress(MlflowException):
                self.client.delete_tag(run_id, ERROR_TAG)
        return self.client.get_run(run_id)

    def _params(self, record: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(key, value) for key, value in record["params"].items()]
        for start in range(0, len(items), MAX_PARAMS_PER_BATCH):
            self.client.log_batch(self.run_id, params=items[start : start + MAX_PARAMS_PER_BATCH])

    def _tags(self, record: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(self.run_id, tags=[RunTag(key, str(value)) for key, value in record["tags"].items()])
        if DIAGNOSIS_TAG in record["tags"]:  # the run's verdict: drawn on its curves
            self.diagnosis = record["tags"]
            self._draw_curves()

    def _metrics(self, points: list[list[Any]]) -> None:
        from mlflow.entities import Metric

        # A resumed run computes again the steps its stopped attempt logged after its checkpoint.
        fresh = [point for point in points if point[3] > self.logged_until.get(point[0], -1)]
        metrics = [Metric(key, float(value), int(timestamp), int(step)) for key, value, timestamp, step in fresh]
        for start in range(0, len(metrics), MAX_METRICS_PER_BATCH):
            self.client.log_batch(self.run_id, metrics=metrics[start : start + MAX_METRICS_PER_BATCH])
        evaluated = False
        for key, value, _, step in fresh:
            name = runner_name(key)
            if not key.startswith("system/"):
                self.history.setdefault(name, []).append((int(step), float(value)))
            evaluated = evaluated or name == "eval_loss"
        if evaluated:  # refresh the learning-curve figures at each evaluation
            self._draw_curves()

    def _artifact(self, record: Mapping[str, Any]) -> None:
        path = Path(record["path"])
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path), record.get("folder") or path.name)
        elif path.exists():
            self.client.log_artifact(self.run_id, str(path), record.get("folder"))
        else:
            raise FileNotFoundError(f"{path}: the file is gone")

    def _console(self, record: Mapping[str, Any]) -> None:
        """The console of this attempt: console.log, then console-2.log for the first resume..."""
        import shutil

        name = "console.log" if self.attempt == 1 else f"console-{self.attempt}.log"
        copy = self.scratch / "console" / name
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(record["path"], copy)
        self.client.log_artifact(self.run_id, str(copy))

    def _inputs(self, record: Mapping[str, Any]) -> None:
        from tracker.dataset_inputs import log_dataset_inputs

        log_dataset_inputs(self.client, self.run_id, record["inputs"])

    def _model(self, record: Mapping[str, Any]) -> None:
        from tracker.model_export import ModelCard, log_model_folder
        from tracker.stores import current_tracking_uri
        from tracker.task import Export

        with current_tracking_uri(self.uri):
            logged = log_model_folder(
                Path(record["folder"]),
                ModelCard.from_record(record["card"]),
                Export(**record["export"]),
                experiment_id=self.started["experiment_id"],
                run_id=self.run_id,
                step=record["step"],
                register_as=record.get("register_as"),
            )
        self.answer({"model": {"uri": logged.model_uri, "registered": logged.registered}})

    def _environment(self, record: Mapping[str, Any]) -> None:
        """The Python environment: this process runs in the training process's interpreter."""
        from tracker.provenance import installed_packages

        path = self.scratch / "requirements.txt"
        path.write_text(self.environment or installed_packages(), encoding="utf-8")
        self.client.log_artifact(self.run_id, str(path), "environment")

    def _flush(self, record: Mapping[str, Any]) -> None:
        self.answer({"durable": record["seq"]})

    def _end(self, record: Mapping[str, Any]) -> None:
        if self.run is None:  # the run never started: nothing to end
            self.ended = True
            return
        self.stop_helpers()
        status, error = record["status"], record.get("error")
        if status == "FINISHED" and self.refusals:  # the store kept part of the run from being recorded
            status, error = "FAILED", f"while recording the run, the store refused {self.refusals[0]}"
        if error:
            self.client.set_tag(self.run_id, ERROR_TAG, error[:5000])
        self.client.set_terminated(self.run_id, status)
        self.ended = True
        self.answer({"ended": status})

    # Helpers.

    def warm_up(self, system_metrics: bool) -> None:
        """Pay now, while the training process loads data and model, what applying a run's first
        records would cost once (imports, MLflow's context tags and system-metrics probes, the
        environment listing), so they are quick to apply when training starts."""
        import matplotlib
        import mlflow.data
        import mlflow.data.huggingface_dataset_source  # noqa: F401
        import pandas  # noqa: F401
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor
        from mlflow.tracking.context.registry import resolve_tags

        from tracker.provenance import installed_packages

        matplotlib.use("Agg")  # as tracker.plots draws: no display
        import matplotlib.pyplot

        resolve_tags({})
        if system_metrics:
            SystemMetricsMonitor("warm-up", sampling_interval=10, tracking_uri=self.uri)  # never started
        self.environment = installed_packages()

    def go_on(self, state: Mapping[str, Any]) -> None:
        """Take up a run where a tracking process stopped (its spool's state)."""
        self.run = state.get("run")
        self.logged_until = dict(state.get("logged_until") or {})
        self.refusals = list(state.get("refusals") or [])
        if self.run is not None:
            self.load_history(self.client.get_run(self.run["run_id"]))

    def load_history(self, run: Any) -> None:
        """The metrics the store has for the run, for the curve figures."""
        for key in run.data.metrics:
            if not key.startswith("system/"):
                points = self.client.get_metric_history(run.info.run_id, key)
                self.history[runner_name(key)] = sorted((point.step, point.value) for point in points)

    @property
    def started(self) -> dict[str, str]:
        """The run's ids; NoRun before its start record."""
        if self.run is None:
            raise NoRun("a record came before the run's start record")
        return self.run

    @property
    def run_id(self) -> str:
        return self.started["run_id"]

    def stop_helpers(self) -> None:
        """The heartbeat and the system-metrics sampler stop: the run is ending."""
        if self.heartbeat is not None:
            self.heartbeat.stop()
            self.heartbeat = None
        if self.monitor is not None:
            with contextlib.suppress(Exception):
                self.monitor.finish()
            self.monitor = None

    def tracked(self) -> Any:
        run = self.started
        return tracked_run(run["run_id"], run["run_name"], run["experiment"], run["experiment_id"], self.uri)

    def _experiment_id(self, name: str) -> str:
        return experiment_named(self.client, name)

    def _draw_curves(self) -> None:
        from tracker.plots import loss_and_metric_figures

        verdict = since = None
        if self.diagnosis is not None:
            verdict, since = self.diagnosis[DIAGNOSIS_TAG], self.diagnosis.get(f"{DIAGNOSIS_TAG}.since_step")
        for figure in loss_and_metric_figures(
            self.history, self.scratch / "curves", verdict, int(since) if since else None
        ):
            self.client.log_artifact(self.run_id, str(figure), "curves")


def _start_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The run's own tags over those MLflow's `start_run` sets (user, source type). MLflow's git
    context reads the repository of the running script, here xp's own: the run's git tags come
    from the experiment file's folder, or there are none."""
    from mlflow.tracking.context.registry import resolve_tags

    resolved = resolve_tags(dict(tags))
    for key in [key for key in resolved if key.startswith("mlflow.source.git.") and key not in tags]:
        del resolved[key]
    return resolved


def _system_metrics(run_id: str, uri: str, resumed: bool) -> Any:
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    # resume_logging: a resumed run's system metrics go on from its last step
    monitor = SystemMetricsMonitor(run_id, sampling_interval=10, tracking_uri=uri, resume_logging=resumed)
    monitor.start()
    return monitor


def group(pending: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The next record, or the run of consecutive metrics records at the head: one write."""
    first = pending[0]
    if first["kind"] != "metrics":
        return [first]
    found: list[dict[str, Any]] = []
    for record in pending:
        if record["kind"] != "metrics" or len(found) >= MAX_RECORDS_PER_WRITE:
            break
        found.append(record)
    return found


def send_spool(spool: Any, writer: StoreWriter, after_each: Callable[[], None] = lambda: None) -> int:
    """Every record of `spool` the store does not have, in order, marking progress as it goes
    (StoreUnavailable stops it where it got to); how many were sent."""
    sent = 0
    unsent = spool.unsent()
    while unsent:
        records = group([record for _, record in unsent])
        writer.apply(records)
        spool.mark_sent(unsent[len(records) - 1][0])
        after_each()
        sent += len(records)
        unsent = unsent[len(records) :] or spool.unsent()  # records may have come in the meantime
    return sent


def experiment_named(client: Any, name: str) -> str:
    """The id of MLflow experiment `name`, created if missing (two runs starting at once may both
    try), marked for the UI's classic view unless it already says what kind it is."""
    from mlflow.exceptions import MlflowException

    key, kind = EXPERIMENT_KIND_TAG
    found = client.get_experiment_by_name(name)
    if found is None:
        try:
            return client.create_experiment(name, tags={key: kind})
        except MlflowException:
            found = client.get_experiment_by_name(name)  # created by the other run in the meantime
            if found is None:
                raise
    if key not in found.tags:  # made by an older xp, or by hand before its first run
        client.set_experiment_tag(found.experiment_id, key, kind)
    return found.experiment_id

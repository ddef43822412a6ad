"""MLflow tracking of one run: params, metrics at optimizer steps, curves, artifacts, provenance.

The run is created only after every component was built (an invalid experiment creates no
run), only by the main process, and always ends FINISHED, FAILED or KILLED.
"""
from __future__ import annotations

import contextlib
import math
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

from tracker import tomlwrite
from tracker.components import Parts, TrackedRun
from tracker.console import Console
from tracker.dataset_inputs import log_dataset_inputs
from tracker.experiment import Experiment
from tracker.heartbeat import PROCESS_TAG, Heartbeat
from tracker.interrupts import stops_of_run
from tracker.metric_names import runner_name, stored_name
from tracker.params import as_params
from tracker.plots import loss_and_metric_figures
from tracker.provenance import git_state, installed_packages, version_tags
from tracker.redact import Redactor, mask_uri
from tracker.recipe import run_name
from tracker.registry import Registry
from tracker.reporting import ConsoleLogger, FanOut, NullLogger
from tracker.stores import current_tracking_uri, open_store_for_runs, patient_uri

DEFAULT_STORE = "sqlite:///mlruns/mlflow.db"
UI_ADDRESS = "http://127.0.0.1:5000"  # where `xp ui` serves a store that is not a server itself
# What kind of experiment this is, for MLflow and its UI's default; but MLflow 3.17's UI picks
# between its GenAI and its classic machine-learning view (runs, charts, models) from the URL's
# workflowType first, then the reader's last choice, so every link xp prints carries CLASSIC_VIEW.
EXPERIMENT_KIND_TAG = ("mlflow.experimentKind", "custom_model_development")
CLASSIC_VIEW = "workflowType=machine_learning"
# Metrics logged within this many seconds of the last send go to the store together: at most
# one write a second however often a runner logs, so logging at every step stays cheap.
SEND_INTERVAL_SECONDS = 1.0
MAX_METRICS_PER_BATCH = 1000  # MLflow's limit for one log_batch
ATTEMPT_TAG = "xp.attempt"  # 2 and up: how many times the run was started, `xp resume` included


def tracking_uri(settings: Mapping[str, Any]) -> str:
    """`[tracking] uri`, else MLFLOW_TRACKING_URI, else the embedded store under ./mlruns."""
    return settings.get("uri") or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_STORE


class MlflowLogger:
    """Sends a runner's metrics to one MLflow run, asynchronously, and refreshes its curves on a
    thread of their own: training never waits for the store or for matplotlib.

    Metric names are stored as `prefix/name` (tracker.metric_names); the runner's own names are
    kept for the curves."""

    def __init__(self, client: Any, tracked_run: TrackedRun, scratch: Path, register_as: str | None = None,
                 logged: Mapping[str, list[Any]] | None = None):
        """`logged`: the metric history a resumed run has in the store already (stored name ->
        MLflow Metric entities); steps up to the last of each are not logged again."""
        from concurrent.futures import ThreadPoolExecutor

        self.client, self.tracked_run, self.scratch = client, tracked_run, scratch
        self.run_id, self.register_as = tracked_run.run_id, register_as
        self.history: dict[str, list[tuple[int, float]]] = {
            runner_name(key): [(point.step, point.value) for point in points] for key, points in (logged or {}).items()}
        self.logged_until = {key: max(point.step for point in points) for key, points in (logged or {}).items() if points}
        self.pending: list[Any] = []  # mlflow Metric entities not yet sent
        self.in_flight: list[Any] = []  # MLflow's handles on queued batches, to wait for at the end
        self.last_sent = -math.inf
        # One drawer, so figures are drawn and uploaded in order: the newest drawing done means all are.
        self.drawer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="xp-curves")
        self.drawing: Any = None  # the Future of the newest figures

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        timestamp = int(time.time() * 1000)
        if self.logged_until:  # a resumed run computes again steps its stopped attempt had logged
            metrics = {key: value for key, value in metrics.items()
                       if step > self.logged_until.get(stored_name(key), -1)}
        self.pending += [Metric(stored_name(key), float(value), timestamp, step) for key, value in metrics.items()]
        for key, value in metrics.items():
            self.history.setdefault(key, []).append((step, float(value)))
        evaluation = "eval_loss" in metrics
        if evaluation or time.monotonic() - self.last_sent >= SEND_INTERVAL_SECONDS:
            self.send()
        if evaluation:  # refresh the learning-curve figures at each evaluation
            if self.drawing is not None:
                self.drawing.cancel()  # if it has not started: the newer history supersedes it
            history = {key: list(points) for key, points in self.history.items()}
            self.drawing = self.drawer.submit(self._draw, history)

    def _draw(self, history: Mapping[str, list[tuple[int, float]]]) -> None:
        for figure in loss_and_metric_figures(history, self.scratch / "curves"):
            self.client.log_artifact(self.run_id, str(figure), "curves")

    def send(self) -> None:
        """Queue the pending metrics for MLflow's sending thread: training does not wait on the store."""
        for start in range(0, len(self.pending), MAX_METRICS_PER_BATCH):
            self.in_flight.append(self.client.log_batch(
                self.run_id, metrics=self.pending[start:start + MAX_METRICS_PER_BATCH], synchronous=False))
        self.pending = []
        self.last_sent = time.monotonic()

    def flush(self) -> None:
        """Until every metric and tag logged so far is in the store (before a checkpoint counts)."""
        self.send()
        for operation in self.in_flight:
            operation.wait()
        self.in_flight = []

    def wait(self) -> None:
        """Until every queued batch and the newest curves are in the store; if drawing them failed,
        it raises here, at the end, not in the middle of training."""
        self.flush()
        drawing, self.drawing = self.drawing, None
        if drawing is not None:
            drawing.result()

    def close(self) -> None:
        """Wait for everything, then let the drawing thread go."""
        try:
            self.wait()
        finally:
            self.drawer.shutdown(wait=True, cancel_futures=True)

    def log_artifact(self, path: Path, folder: str | None = None) -> None:
        if Path(path).is_dir():
            self.client.log_artifacts(self.run_id, str(path), folder or Path(path).name)
        else:
            self.client.log_artifact(self.run_id, str(path), folder)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        from mlflow.entities import RunTag

        self.in_flight.append(self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()],
                                                    synchronous=False))

    def log_model(self, model: Any, tokenizer: Any, card: Any, task: Any, step: int) -> Any:
        """The model as the run's Logged Model, linked to the metrics logged at `step`."""
        from tracker.model_export import log_transformers_model

        self.wait()  # the final evaluation must be in the store to be linked to the model
        return log_transformers_model(model, tokenizer, card, task, experiment_id=self.tracked_run.experiment_id,
                                      run_id=self.run_id, step=step, register_as=self.register_as)


def start_run_with(registry: Registry, console: Console = Console(), resume: Any = None):
    """The recipe's `start_run`: an MLflow run when tracking is on, for the main process only;
    with `resume` (tracker.resume.Resume), that stopped run, reopened."""

    @contextlib.contextmanager
    def start_run(experiment: Experiment, parts: Parts, runner: Any) -> Iterator[Any]:
        if not runner.is_main_process:
            yield NullLogger()
        elif not experiment.settings["tracking"]["enabled"]:
            yield ConsoleLogger(console)
        else:
            with _mlflow_run(experiment, parts, runner, registry, console, resume) as logger:
                yield logger

    return start_run


@contextlib.contextmanager
def _mlflow_run(experiment: Experiment, parts: Parts, runner: Any, registry: Registry,
                console: Console, resume: Any = None) -> Iterator[Any]:
    settings = experiment.settings["tracking"]
    uri = resume.store if resume is not None else tracking_uri(settings)
    writes_to = patient_uri(uri)  # every write of the run, whatever does it; `uri` is what people see
    client = open_store_for_runs(writes_to)
    experiment_id = _experiment_id(client, experiment.name) if resume is None else None
    # Stop signals are handled from before the run exists: a kill right after create_run must not
    # leave it RUNNING.
    with stops_of_run(lambda text: console.say("stopping", text)) as stops, current_tracking_uri(writes_to), \
            tempfile.TemporaryDirectory(prefix="xp-run-") as scratch_name:
        if resume is None:
            run = client.create_run(experiment_id, run_name=run_name(experiment), tags=_start_tags(experiment))
            logged, attempt = {}, 1
        else:
            run, logged, attempt = _reopen(client, resume.run_id)
        run_id, scratch = run.info.run_id, Path(scratch_name)
        status, heartbeat, monitor = "FAILED", None, None
        logger = MlflowLogger(client, _tracked_run(run, experiment, uri), scratch, settings["register_as"], logged)
        console_name = "console.log" if attempt == 1 else f"console-{attempt}.log"  # one per attempt
        with _console_copy(scratch / console_name, experiment.redactor) as console_log:
            try:
                heartbeat = Heartbeat(client, run_id).start()
                if resume is None:  # a resumed run has its params, inputs and provenance already
                    _log_start(client, run_id, experiment, parts, runner, registry, scratch)
                if settings["system_metrics"]:
                    monitor = _system_metrics(run_id, writes_to, resumed=resume is not None)
                yield FanOut([ConsoleLogger(console), logger])
                status = "FINISHED"
            except KeyboardInterrupt:
                status = "KILLED"
                raise
            except BaseException as error:
                _record_error(client, run_id, experiment.redactor, error)
                raise
            finally:
                stops.hold()
                closing = [step for step in (heartbeat and heartbeat.stop, monitor and monitor.finish) if step] + \
                    [logger.close, console_log.flush, lambda: client.log_artifact(run_id, str(console_log.path))]
                status = _end_run(client, run_id, status, closing, experiment.redactor)
                if stops.came and status == "FINISHED":  # Ctrl-C while a finished run was being ended
                    raise KeyboardInterrupt


def _reopen(client: Any, run_id: str) -> tuple[Any, dict[str, list[Any]], int]:
    """A stopped run made RUNNING again, for its next attempt: the run, its metric history, and
    the attempt's number. The error that stopped the last attempt, if any, is no longer its own."""
    from mlflow.entities import RunTag
    from mlflow.exceptions import MlflowException

    run = client.get_run(run_id)
    logged = {key: client.get_metric_history(run_id, key) for key in run.data.metrics}
    attempt = int(run.data.tags.get(ATTEMPT_TAG, "1")) + 1
    client.update_run(run_id, status="RUNNING")
    client.log_batch(run_id, tags=[RunTag(ATTEMPT_TAG, str(attempt)), RunTag(PROCESS_TAG, _this_process())])
    if "xp.error" in run.data.tags:
        with contextlib.suppress(MlflowException):
            client.delete_tag(run_id, "xp.error")
    return client.get_run(run_id), logged, attempt


def _this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _end_run(client: Any, run_id: str, status: str, closing: list[Any], redactor: Redactor) -> str:
    """Run every closing step even when one fails (a full disk, a store gone), then set the status:
    a run is never left RUNNING by its own ending. A closing step that fails fails a run that had
    finished. The status it ended with."""
    for step in closing:
        try:
            step()
        except Exception as error:  # noqa: BLE001 - every step must get its chance, and the status last
            if status == "FINISHED":
                status = "FAILED"
                _record_error(client, run_id, redactor, error, "while ending the run: ")
    client.set_terminated(run_id, status)
    return status


def _record_error(client: Any, run_id: str, redactor: Redactor, error: BaseException, context: str = "") -> None:
    """The error as the run's `xp.error` tag, secrets masked; a store that refuses it (the very
    fault that failed the run, maybe) does not hide the error itself."""
    with contextlib.suppress(Exception):
        client.set_tag(run_id, "xp.error", redactor.text(f"{context}{type(error).__name__}: {error}")[:5000])


def _experiment_id(client: Any, name: str) -> str:
    """The MLflow experiment `name`, created if missing (two runs starting at once may both
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


def _start_tags(experiment: Experiment) -> dict[str, str]:
    """The tags MLflow's own `start_run` sets (user, source, git commit), the file's tags and notes."""
    from mlflow.tracking.context.registry import resolve_tags

    shown = experiment.shown()["experiment"]  # a tag named like a credential keeps its name, not its value
    tags = {f"{key}": value for key, value in (shown["tags"] or {}).items()}
    if shown["description"]:
        tags["mlflow.note.content"] = shown["description"]
    # The source is the experiment file (MLflow would name the `xp` script), absolute so the run
    # can be traced back from anywhere; xp.file keeps the spelling of the command line.
    tags["mlflow.source.name"] = str(experiment.path.resolve())
    tags["xp.file"] = str(experiment.path)
    tags["xp.file.absolute"] = str(experiment.path.resolve())
    tags[PROCESS_TAG] = _this_process()
    return resolve_tags(tags)


def _tracked_run(run: Any, experiment: Experiment, uri: str) -> TrackedRun:
    shown_uri = mask_uri(uri)
    served = uri.startswith(("http://", "https://"))
    base = uri.rstrip("/") if served else UI_ADDRESS
    ui_command = ("open it in a browser" if served else
                  "xp ui" if uri == DEFAULT_STORE else f"xp ui --uri '{shown_uri}'")
    return TrackedRun(run_id=run.info.run_id, run_name=run.info.run_name, experiment_name=experiment.name,
                      experiment_id=run.info.experiment_id, tracking_uri=shown_uri, ui_command=ui_command,
                      run_url=mask_uri(f"{base}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
                                           f"?{CLASSIC_VIEW}"))


def _log_start(client: Any, run_id: str, experiment: Experiment, parts: Parts, runner: Any,
               registry: Registry, scratch: Path) -> None:
    """Params, provenance tags, config and environment artifacts and dataset inputs."""
    from mlflow.entities import Param, RunTag

    redactor = experiment.redactor
    params, overflow = as_params({**experiment.shown(), "derived": redactor.document(_derived(parts, runner))})
    items = [Param(k, v) for k, v in params.items()]
    for start in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
        client.log_batch(run_id, params=items[start:start + 100])
    for key, value in overflow.items():
        _write(scratch / "params" / f"{key}.txt", value)
        client.log_artifact(run_id, str(scratch / "params" / f"{key}.txt"), "params")

    git_tags, diff = git_state(experiment.path.resolve().parent)
    tags = {**git_tags, **version_tags(experiment, registry), "xp.device": parts.hardware.device,
            "xp.precision": parts.hardware.precision}
    client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
    if diff:  # the diff may hold the very file with its secrets
        client.log_artifact(run_id, str(_write(scratch / "git.diff", redactor.text(diff))), "provenance")
    config = scratch / "config"
    client.log_artifact(run_id, str(_write(config / experiment.path.name, experiment.shown_text)), "config")
    client.log_artifact(run_id, str(_write(config / "resolved.toml", tomlwrite.dumps(experiment.shown()))), "config")
    client.log_artifact(run_id, str(_write(scratch / "requirements.txt", installed_packages())), "environment")
    log_dataset_inputs(client, run_id, parts.task, redactor.text)


def _derived(parts: Parts, runner: Any) -> dict[str, Any]:
    """Values that the config implies but does not say."""
    trainable = sum(p.numel() for p in parts.model.parameters() if p.requires_grad)
    derived = {
        "effective_batch_size": getattr(runner, "batch_size", 0) * getattr(runner, "gradient_accumulation_steps", 1)
        * int(os.environ.get("WORLD_SIZE", "1")),
        "total_optimizer_steps": parts.num_training_steps,
        "trainable_parameters": trainable,
        "label_names": list(parts.task.labels.names or ["(regression)"]),
        "device": parts.hardware.device,
        "precision": parts.hardware.precision,
    }
    derived.update({f"rows.{split}": len(data) for split, data in parts.task.splits.items()})
    return derived


def _system_metrics(run_id: str, uri: str, resumed: bool) -> Any:
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    # resume_logging: a resumed run's system metrics go on from its last step
    monitor = SystemMetricsMonitor(run_id, sampling_interval=10, tracking_uri=uri, resume_logging=resumed)
    monitor.start()
    return monitor


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


class _Tee:
    """A text stream that also copies everything written to a file (the run's console log), with
    the experiment's secrets masked in both. Each write is masked on its own: a secret split
    across two writes would slip through, but print() and loggers write whole messages."""

    def __init__(self, stream: Any, file: Any, redactor: Redactor):
        self.stream, self.file, self.redactor = stream, file, redactor

    def write(self, text: str) -> int:
        shown = self.redactor.text(text)
        self.file.write(shown)
        self.stream.write(shown)
        return len(text)

    def flush(self) -> None:
        self.file.flush()
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


class _ConsoleLog:
    def __init__(self, path: Path):
        self.path = path
        self.file = path.open("w", encoding="utf-8")

    def flush(self) -> None:
        self.file.flush()


@contextlib.contextmanager
def _console_copy(path: Path, redactor: Redactor) -> Iterator[_ConsoleLog]:
    log = _ConsoleLog(path)
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Tee(stdout, log.file, redactor), _Tee(stderr, log.file, redactor)
    try:
        yield log
    finally:
        sys.stdout, sys.stderr = stdout, stderr
        log.file.close()

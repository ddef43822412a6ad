"""MLflow tracking of one run, seen from the training process: params, metrics at optimizer steps,
artifacts, provenance, the model, all sent as records to the run's tracking process
(tracker.tracking.service), which alone talks to MLflow. Training never waits for the store.

The tracking process starts as soon as the experiment is checked (`prepare`); the MLflow run is
created only after every component was built (an invalid experiment creates no run), only by
the main process, and always ends FINISHED, FAILED or KILLED: by the records of this process, or,
when this process dies without a word, by the tracking process.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracker import tomlwrite
from tracker.components import Parts, TrackedRun
from tracker.console import VERBOSE, Console
from tracker.experiment import Experiment
from tracker.heartbeat import PROCESS_TAG
from tracker.interrupts import stops_of_run
from tracker.metric_names import stored_name
from tracker.provenance import git_state
from tracker.registry import Registry
from tracker.reporting import ConsoleLogger, FanOut, NullLogger
from tracker.tracking.channel import ServiceGone, TrackingChannel
from tracker.tracking.console_copy import console_copy
from tracker.tracking.spool import SPOOLS
from tracker.tracking.uris import tracked_run, tracking_uri

FLUSH_SECONDS = 120.0  # how long a checkpoint waits for the run's logs to be stored or spooled
NO_RUN_GRACE_SECONDS = 10.0  # for a tracking process whose run never started to notice and exit


class RunNotRecorded(Exception):
    """The run trained, but the store refused part of its record (a full disk under its artifacts):
    it ended FAILED, with the reason."""


class ServiceLogger:
    """A runner's logger: each call is one record for the tracking process. Metric names are
    stored as `prefix/name` (tracker.metric_names)."""

    def __init__(self, channel: TrackingChannel, uri: str, experiment_name: str, register_as: str | None):
        self.channel, self.uri, self.experiment_name, self.register_as = channel, uri, experiment_name, register_as

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        timestamp = int(time.time() * 1000)
        self.channel.send(
            "metrics", metrics=[[stored_name(key), float(value), timestamp, step] for key, value in metrics.items()]
        )

    def log_artifact(self, path: Path, folder: str | None = None) -> None:
        self.channel.send("artifact", path=str(Path(path).resolve()), folder=folder)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self.channel.send("tags", tags={key: str(value) for key, value in tags.items()})

    def flush(self) -> None:
        seq = self.channel.send("flush")
        self.channel.wait_for(lambda answers: answers.get("durable", 0) >= seq, FLUSH_SECONDS)

    def log_model(self, folder: Path, card: Any, export: Any, step: int) -> Any:
        """The saved model as the run's Logged Model, once the tracking process logged it (None
        when the store is away: it is logged when the spool is sent)."""
        from dataclasses import asdict

        from tracker.model_export import LoggedModel

        self.channel.answers.pop("model", None)
        self.channel.send(
            "model",
            folder=str(Path(folder).resolve()),
            export=asdict(export),
            step=step,
            register_as=self.register_as,
            card=card.as_record(),
        )
        answer = self.channel.wait_for(
            lambda answers: (
                answers.get("model") or answers.get("away") or str(answers.get("refused", "")).startswith("model:")
            )
        )
        model = answer if isinstance(answer, dict) else None
        return LoggedModel(model["uri"], model["uri"].rsplit("/", 1)[-1], model["registered"]) if model else None

    @property
    def tracked_run(self) -> TrackedRun | None:
        """Where the run is; None while the store has been away since the run started."""
        try:
            answer = self.channel.wait_for(lambda answers: answers.get("run") or answers.get("away"))
        except ServiceGone:
            answer = self.channel.answers.get("run")
        run = answer if isinstance(answer, dict) else None
        return (
            tracked_run(run["run_id"], run["run_name"], self.experiment_name, run["experiment_id"], self.uri)
            if run
            else None
        )


@dataclass(frozen=True)
class RunLabels:
    """A name and tags a run gets besides its own: a sweep's trial is named after its study and
    nests under the study's run."""

    name: str
    tags: Mapping[str, str]


def start_run_with(
    registry: Registry, console: Console | None = None, resume: Any = None, labels: RunLabels | None = None
) -> Tracking:
    """The recipe's `start_run` (with `prepare`): an MLflow run when tracking is on, for the main
    process only; with `resume` (tracker.resume.Resume), that stopped run, reopened."""
    return Tracking(registry, console if console is not None else Console(), resume, labels)


class Tracking:
    def __init__(self, registry: Registry, console: Console, resume: Any, labels: RunLabels | None = None):
        self.registry, self.console, self.resume, self.labels = registry, console, resume, labels
        self.channel: TrackingChannel | None = None

    @contextlib.contextmanager
    def prepare(self, experiment: Experiment, runner: Any) -> Iterator[None]:
        """From the checked experiment to the end of its run: the tracking process starts now,
        importing MLflow and opening the store while data and model load."""
        if runner.is_main_process and experiment.settings["tracking"]["enabled"]:
            self.channel = self.launch(experiment)
        try:
            yield
        finally:
            channel, self.channel = self.channel, None
            if channel is not None and channel.process.poll() is None:  # no run started: nothing to store
                channel.close(grace=NO_RUN_GRACE_SECONDS)

    def launch(self, experiment: Experiment) -> TrackingChannel:
        return TrackingChannel(
            self.uri(experiment),
            spool_folder(experiment),
            verbose=self.console.verbosity >= VERBOSE,
            system_metrics=experiment.settings["tracking"]["system_metrics"],
        )

    def uri(self, experiment: Experiment) -> str:
        return self.resume.store if self.resume is not None else tracking_uri(experiment.settings["tracking"])

    @contextlib.contextmanager
    def __call__(self, experiment: Experiment, parts: Parts, runner: Any) -> Iterator[Any]:
        if not runner.is_main_process:
            yield NullLogger()
        elif not experiment.settings["tracking"]["enabled"]:
            yield ConsoleLogger(self.console)
        else:
            channel, self.channel = self.channel, None
            channel = channel or self.launch(experiment)
            with self._run(experiment, parts, runner, channel) as logger:
                yield logger

    @contextlib.contextmanager
    def _run(self, experiment: Experiment, parts: Parts, runner: Any, channel: TrackingChannel) -> Iterator[Any]:
        settings, redactor, resume = experiment.settings["tracking"], experiment.redactor, self.resume
        say = self.console.say
        with (
            stops_of_run(lambda text: say("stopping", text)) as stops,
            tempfile.TemporaryDirectory(prefix="xp-run-") as scratch_name,
        ):
            scratch = Path(scratch_name)
            status, error = "FAILED", None
            with console_copy(scratch / "console.log", redactor) as console_log:
                try:
                    git_tags, diff = git_state(experiment.path.resolve().parent)
                    labels = self.labels
                    channel.send(
                        "start",
                        experiment=experiment.name,
                        run_name=labels.name if labels else experiment.run_name,
                        tags={**_start_tags(experiment), **git_tags, **(labels.tags if labels else {})},
                        resume=resume.run_id if resume else None,
                        system_metrics=settings["system_metrics"],
                    )
                    if resume is None:  # a resumed run has its params, inputs and provenance already
                        _log_start(channel, experiment, parts, runner, self.registry, scratch, git_tags, diff)
                    yield FanOut(
                        [
                            ConsoleLogger(self.console),
                            ServiceLogger(channel, self.uri(experiment), experiment.name, settings["register_as"]),
                        ]
                    )
                    status = "FINISHED"
                except KeyboardInterrupt:
                    status = "KILLED"
                    raise
                except BaseException as failure:
                    error = redactor.text(f"{type(failure).__name__}: {failure}")
                    raise
                finally:
                    stops.hold()
                    console_log.flush()
                    channel.send("console", path=str(console_log.path))
                    channel.send("end", status=status, error=error)
                    self._close(channel, stops, settings["wait_for_store"])
            if stops.came and status == "FINISHED":  # Ctrl-C while a finished run was being ended
                raise KeyboardInterrupt
            refusals = [note["refused"] for note in channel.notes if "refused" in note]
            if status == "FINISHED" and channel.answers.get("ended") == "FAILED" and refusals:
                raise RunNotRecorded(
                    f"the tracking store refused {refusals[0]}"
                    + (f" (and {len(refusals) - 1} more records)" if len(refusals) > 1 else "")
                )

    def _close(self, channel: TrackingChannel, stops: Any, grace: float) -> None:
        """Wait for the tracking process to store the run's end: while the store answers, for as
        long as that takes (Ctrl-C only waits); for a store that is away, up to `grace` seconds (a
        Ctrl-C then stops waiting), and say where the records wait and how to send them."""

        def waiting() -> None:
            self.console.write(
                f"tracking   the store is unreachable ({channel.answers.get('store_error')}); "
                f"waiting up to {grace:.0f}s for it (Ctrl-C again: stop waiting)"
            )

        stored = channel.close(grace, stops, waiting)
        if channel.process.returncode not in (0, None) and not stops.came and stored:
            self.console.write(
                f"tracking   the tracking process failed: {channel.failure()} (its log: {channel.log_path})"
            )
        if (not stored or channel.answers.get("away")) and channel.spool.exists():
            self.console.write(
                f"tracking   the store did not take all of the run; the rest waits in "
                f"{channel.spool}: `xp sync {channel.spool}` sends it"
            )


def spool_folder(experiment: Experiment) -> Path:
    """Where the run's records wait while its store is away: under the run's output folder."""
    launch = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    return (experiment.run_folder / SPOOLS / launch).resolve()


def _start_tags(experiment: Experiment) -> dict[str, str]:
    """The file's tags and notes, and where the run comes from."""
    shown = experiment.shown()["experiment"]  # a tag named like a credential keeps its name, not its value
    tags = {f"{key}": value for key, value in (shown["tags"] or {}).items()}
    if shown["description"]:
        tags["mlflow.note.content"] = shown["description"]
    # The source is the experiment file (MLflow would name the `xp` script), absolute so the run
    # can be traced back from anywhere; xp.file keeps the spelling of the command line.
    tags["mlflow.source.name"] = str(experiment.path.resolve())
    tags["xp.file"] = str(experiment.path)
    tags["xp.file.absolute"] = str(experiment.path.resolve())
    tags[PROCESS_TAG] = f"{socket.gethostname()}:{os.getpid()}"
    return tags


def _log_start(
    channel: TrackingChannel,
    experiment: Experiment,
    parts: Parts,
    runner: Any,
    registry: Registry,
    scratch: Path,
    git_tags: Mapping[str, str],
    diff: str | None,
) -> None:
    """Params, provenance tags, config and environment artifacts and dataset inputs."""
    from tracker.dataset_inputs import describe_inputs
    from tracker.params import as_params, parameter_counts
    from tracker.provenance import version_tags

    redactor = experiment.redactor
    shown = experiment.shown()
    shown["model"] = {**shown["model"], **parameter_counts(parts.model)}
    params, overflow = as_params({**shown, "derived": redactor.document(_derived(parts, runner))})
    channel.send("params", params=params)
    for key, value in overflow.items():
        channel.send("artifact", path=str(_write(scratch / "params" / f"{key}.txt", value)), folder="params")
    tags = {
        **git_tags,
        **version_tags(experiment, registry),
        "xp.device": parts.hardware.device,
        "xp.precision": parts.hardware.precision,
    }
    channel.send("tags", tags=tags)
    if diff:  # the diff may hold the very file with its secrets
        channel.send("artifact", path=str(_write(scratch / "git.diff", redactor.text(diff))), folder="provenance")
    config = scratch / "config"
    channel.send("artifact", path=str(_write(config / experiment.path.name, experiment.shown_text)), folder="config")
    channel.send(
        "artifact", path=str(_write(config / "resolved.toml", tomlwrite.dumps(experiment.shown()))), folder="config"
    )
    channel.send("environment")
    channel.send("inputs", inputs=describe_inputs(parts.data, redactor.text))


def _derived(parts: Parts, runner: Any) -> dict[str, Any]:
    """Values that the config implies but does not say."""
    derived = {
        "effective_batch_size": getattr(runner, "batch_size", 0)
        * getattr(runner, "gradient_accumulation_steps", 1)
        * int(os.environ.get("WORLD_SIZE", "1")),
        "total_optimizer_steps": parts.num_training_steps,
        "targets": parts.task.describe(),
        "device": parts.hardware.device,
        "precision": parts.hardware.precision,
    }
    if parts.task.label_names is not None:
        derived["label_names"] = list(parts.task.label_names)
    derived.update({f"rows.{split}": len(rows) for split, rows in parts.data.splits.items()})
    return derived


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path

"""One experiment from checked config to results, in a straight line: seed, data, tokenize,
collator, model, optimizer, scheduler, then the runner trains, evaluates, predicts and saves.

This is the only place components are built, always through `Builder`: registry lookup,
keyword arguments from the section, positional ones from what was built before.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tracker.components import Parts, RunResult
from tracker.console import Console
from tracker.errors import BuildError, ExperimentError, Problem
from tracker.experiment import ComponentSpec, Experiment
from tracker.garbage_collection import StartUp, collector_paused
from tracker.hardware import resolve_hardware
from tracker.registry import Registry
from tracker.reporting import ConsoleLogger
from tracker.resume import CHECKPOINTS_TAG, checkpoint_plan
from tracker.task import prepare_tokenizer

MERGED_MODEL = "merged-model"  # beside model/ in the run's folder, and the artifact's name
# start_run(experiment, parts, runner) -> a context manager yielding the run's logger
StartRun = Callable[[Experiment, Parts, Any], contextlib.AbstractContextManager[Any]]


class Builder:
    """Builds the components of one experiment and blames build errors on their section."""

    def __init__(self, experiment: Experiment, registry: Registry):
        self.experiment = experiment
        self.registry = registry

    def build(self, spec: ComponentSpec, *positional: Any) -> Any:
        component = self.registry.find(spec.kind, spec.use)
        with self.blame(spec.section):
            return component.factory(*positional, **spec.options)

    def section(self, section: str, *positional: Any) -> Any:
        return self.build(self.experiment.components[section], *positional)

    @contextlib.contextmanager
    def blame(self, section: str) -> Iterator[None]:
        """Turn a plugin's BuildError into a located problem: FILE: [section] key: message."""
        try:
            yield
        except BuildError as error:
            raise ExperimentError([Problem(str(self.experiment.path), section, error.key, error.message)]) from None


def build_tokenizer(build: Builder, experiment: Experiment) -> Any:
    """The tokenizer, from its own checkpoint or else the model's: a bad model checkpoint is
    blamed on [model], where the user wrote it, even though the tokenizer meets it first."""
    tokenizer, model_checkpoint = (
        experiment.components["tokenizer"],
        experiment.components["model"].options.get("checkpoint"),
    )
    try:
        return build.section("tokenizer", model_checkpoint)
    except ExperimentError as error:
        if tokenizer.options.get("checkpoint") is None:
            error.problems = [
                Problem(p.file, "model", p.key, p.message) if p.section == "tokenizer" and p.key == "checkpoint" else p
                for p in error.problems
            ]
        raise


@contextlib.contextmanager
def console_only(experiment: Experiment, parts: Parts, runner: Any) -> Iterator[Any]:
    yield ConsoleLogger(parts.console)


def check_machine(experiment: Experiment, study_storage: str | None = None) -> Any:
    """The hardware this machine can give the experiment, after checking that it can, that the
    output folder can really be written (it is made now), that the tracking store (and the
    study's database, for a sweep) is reachable, takes the credentials and is what it is named
    as: seconds, before any data or model loads and before any run."""
    from tracker.preflight import folder_problem

    problems = []
    try:
        hardware = resolve_hardware(experiment.settings["hardware"])
    except BuildError as error:
        hardware = None
        problems.append(Problem(str(experiment.path), "hardware", error.key, error.message))
    unwritable = folder_problem(experiment.output_dir)
    if unwritable:
        problems.append(Problem(str(experiment.path), "experiment", "output_dir", unwritable))
    tracking = experiment.settings["tracking"]
    if tracking["enabled"]:
        from tracker.preflight import check_tracking
        from tracker.spec.paths import tracking_uri as checked_tracking_uri
        from tracker.tracking import DEFAULT_STORE, tracking_uri

        uri = tracking_uri(tracking)
        origin = (
            "uri"
            if tracking["uri"]
            else "uri (from MLFLOW_TRACKING_URI)"
            if os.environ.get("MLFLOW_TRACKING_URI")
            else f"uri (default: {DEFAULT_STORE})"
        )
        try:  # a URI from the environment has not been through the file's checks
            checked_tracking_uri(uri)
            unreachable = check_tracking(uri)
        except ValueError as error:
            unreachable = str(error)
        if unreachable:
            problems.append(Problem(str(experiment.path), "tracking", origin, unreachable))
    if study_storage is not None:
        from tracker.preflight import check_storage

        unusable = check_storage(study_storage)
        if unusable:
            given = experiment.sweep is not None and experiment.sweep["storage"]
            key = "storage" if given else "storage (default: optuna.db beside the tracking store)"
            problems.append(Problem(str(experiment.path), "sweep", key, unusable))
    if problems:
        raise ExperimentError(problems)
    return hardware


def load_data(experiment: Experiment, registry: Registry, build: Builder | None = None) -> Any:
    """The task, then the dataset (its targets read by the task), checked against every
    component's data rules (metric against task, model config overrides, ...)."""
    from tracker.spec.data import data_problems

    build = build or Builder(experiment, registry)
    data = build.section("dataset", build.section("task"), experiment.seed)
    problems = data_problems(experiment, registry, data)
    if problems:
        raise ExperimentError(problems)
    return data


def encoding_note(data: Any, encoded: Any, tokenizer: Any) -> str | None:
    """What the task says of the tokenized splits (words a token task cut off), if it says anything:
    `Task.encoding_note` is optional."""
    note = getattr(data.task, "encoding_note", None)
    return note(data, encoded, tokenizer) if note is not None else None


def check_data(experiment: Experiment, registry: Registry) -> str | None:
    """`xp validate --data`: the data loaded and checked (load_data), then tokenized, which is
    where the tokenizer finds what it cannot take (a sentence too long for the model). The
    tokenized splits land in the datasets cache, where the run finds them. What the task says of
    them (`encoding_note`: rows left out, windows made) is returned, for the person to read."""
    build = Builder(experiment, registry)
    with Console().libraries_quiet():
        data = load_data(experiment, registry, build)
        encoder = build_tokenizer(build, experiment)
        with build.blame("tokenizer"):
            prepared = prepare_tokenizer(data.task, encoder.tokenizer)
            encoded = encoder.encode(data)
        notes = [note for note in (prepared, encoding_note(data, encoded, encoder.tokenizer)) if note]
        return "; ".join(notes) or None


def run_experiment(
    experiment: Experiment,
    registry: Registry,
    start_run: StartRun = console_only,
    console: Console | None = None,
    resume: Any = None,
    should_stop: Any = None,
) -> RunResult:
    """Build every component of `experiment` and hand them to its runner; `resume`
    (tracker.resume.Resume) continues a stopped run from its checkpoint; `should_stop` is asked
    after each evaluation (Parts.should_stop)."""
    if console is None:
        console = Console()
    build = Builder(experiment, registry)
    runner = build.section("runner")
    # What takes time in tracking (the tracking process importing MLflow, opening the store)
    # starts first, before this process imports transformers and datasets (to quiet them), torch,
    # and loads data and model: its work then runs beside this process's imports, not beside
    # the first training step, which takes both CPUs of a small machine. Until training starts,
    # the garbage collector does not scan what the imports and the loading make (1.0 s of CPU).
    prepare = getattr(start_run, "prepare", None)
    with (
        collector_paused() as start_up,
        prepare(experiment, runner) if prepare else contextlib.nullcontext(),
        console.libraries_quiet(),
    ):
        return _build_and_run(experiment, registry, start_run, console, resume, build, runner, should_stop, start_up)


def run_tracked(
    experiment: Experiment,
    registry: Registry,
    console: Console | None = None,
    resume: Any = None,
    labels: Any = None,
    should_stop: Any = None,
) -> RunResult:
    """A checked experiment to a tracked run (an MLflow run when [tracking] is on): the one path
    `xp run`, `xp resume`, the Python API, an executor's worker and a sweep's trial all take.
    `labels` (tracker.tracking.run.RunLabels) names the run and tags it, for a trial."""
    from tracker.tracking import start_run_with

    return run_experiment(
        experiment,
        registry,
        start_run=start_run_with(registry, console, resume=resume, labels=labels),
        console=console,
        resume=resume,
        should_stop=should_stop,
    )


def _build_and_run(
    experiment: Experiment,
    registry: Registry,
    start_run: StartRun,
    console: Console,
    resume: Any,
    build: Builder,
    runner: Any,
    should_stop: Any,
    start_up: StartUp,
) -> RunResult:
    from transformers import set_seed

    hardware = check_machine(experiment)
    runner.setup(hardware)
    set_seed(experiment.seed)
    say = console.say if runner.is_main_process else (lambda phase, text: None)

    with runner.main_process_first():
        data = load_data(experiment, registry, build)
        say("data", describe_data(data))
        encoder = build_tokenizer(build, experiment)
        with build.blame("tokenizer"):
            prepared = prepare_tokenizer(data.task, encoder.tokenizer)
            if prepared:
                say("data", prepared)
            encoded = encoder.encode(data)
        note = encoding_note(data, encoded, encoder.tokenizer)
        if note:
            say("data", note)
    collator = build.section("collator", encoder.tokenizer, data.task)
    model = build.section("model", data.task.head())
    adapter = build.section("adapter") if "adapter" in experiment.components else None
    if adapter is not None:
        with build.blame("adapter"):
            model = adapter.attach(model, data.task.head())
    say("model", describe_model(experiment, model, hardware, adapter))
    optimizer = build.section("optimizer", model)
    with build.blame("runner"):
        num_training_steps = runner.num_training_steps(len(encoded["train"]))
    scheduler = build.section("scheduler", optimizer, num_training_steps)
    metrics = [build.build(spec, data) for spec in experiment.metrics]

    output_dir = experiment.run_folder
    parts = Parts(
        data,
        encoder,
        encoded,
        collator,
        model,
        optimizer,
        scheduler,
        metrics,
        hardware,
        experiment.seed,
        num_training_steps,
        output_dir,
        console,
        should_stop=should_stop,
    )
    with start_run(experiment, parts, runner) as logger, build.blame("runner"):
        parts = dataclasses.replace(parts, checkpoints=checkpoint_plan_of(experiment, output_dir, logger, resume))
        if resume is not None:
            say("resuming", f"from the checkpoint of step {resume.checkpoint.step} ({resume.checkpoint.folder})")
        elif parts.checkpoints.saves:
            logger.set_tags({CHECKPOINTS_TAG: str(parts.checkpoints.folder)})
        say("training", f"{num_training_steps} optimizer steps, {experiment.components['runner'].use} runner")
        start_up.over()
        try:
            result = runner.run(parts, logger)
        except KeyboardInterrupt:
            if runner.is_main_process:
                console.write(how_to_resume(parts.checkpoints, logger.tracked_run))
            raise
        result.output_dir, result.tracked = output_dir, logger.tracked_run
        if runner.is_main_process:
            report_diagnosis(experiment, data, metrics, result, logger)
        if result.model_dir is not None:
            save_and_log_model(experiment, parts, adapter, result, logger)
        return result


def save_and_log_model(experiment: Experiment, parts: Parts, adapter: Any, result: RunResult, logger: Any) -> None:
    """The model the runner saved, completed with its card (what `xp predict` needs to load, feed
    and read it) and, with an adapter, what loading the adapter needs; the merged model when the
    adapter says so; then logged as the run's MLflow model."""
    from tracker.model_export import ModelCard, adapter_export

    assert result.model_dir is not None and result.output_dir is not None
    data, max_length = parts.data, parts.encoder.max_length
    card = ModelCard.of(experiment.components["task"], data, max_length, experiment.components.get("adapter"))
    if adapter is not None:
        adapter.save(parts.model, result.model_dir)
    card.write(result.model_dir)
    say = parts.console.say
    export = data.task.export(data, max_length)
    if adapter is not None:
        export = adapter_export(export, data, parts.model.name_or_path)
        if adapter.save_merged:  # last: merging changes the trained model
            merged = result.output_dir / MERGED_MODEL
            adapter.merge(parts.model).save_pretrained(merged)
            parts.encoder.tokenizer.save_pretrained(merged)
            ModelCard.of(experiment.components["task"], data, max_length).write(merged)
            say("saving", f"merged model to {merged}")
            logger.log_artifact(merged, MERGED_MODEL)
    say("saving", "model as an MLflow model" if result.tracked else f"model to {result.model_dir}")
    with parts.console.hushed():
        logged = logger.log_model(result.model_dir, card, export, result.steps)
    if logged is not None:
        result.model_uri, result.registered_model = logged.model_uri, logged.registered


def report_diagnosis(experiment: Experiment, task: Any, metrics: Any, result: RunResult, logger: Any) -> None:
    """The verdict on the run's learning curves: on the result, as tags and as diagnosis.txt."""
    from tracker.diagnosis.report import diagnosis_of, tags_of, write_text

    made = diagnosis_of(task, metrics, result, experiment.settings.get("diagnosis"))
    if made is None:
        return
    assert result.output_dir is not None  # set by _build_and_run before the diagnosis
    result.diagnosis, evidence, thresholds = made
    logger.set_tags(tags_of(result.diagnosis))
    logger.log_artifact(write_text(result.output_dir / "diagnosis.txt", result.diagnosis, evidence, thresholds))


def checkpoint_plan_of(experiment: Experiment, output_dir: Path, logger: Any, resume: Any) -> Any:
    """When and where this run saves checkpoints, each saying how to rebuild the experiment."""
    settings = experiment.settings["checkpoint"]
    saves = settings["every_steps"] is not None or settings["at_evaluation"]
    # The run id names the checkpoints' folder: waited for only when there will be checkpoints.
    tracked = logger.tracked_run if saves else None
    identity = {
        "experiment_file": str(experiment.path.resolve()),
        "overrides": tuple(experiment.redactor.text(text) for text in experiment.overrides),
        "config_digest": experiment.config_digest,
        "runner": experiment.components["runner"].use,
    }
    return checkpoint_plan(
        settings,
        output_dir,
        tracked.run_id if tracked else None,
        identity,
        resume.checkpoint if resume is not None else None,
        logger.flush,
    )


def how_to_resume(plan: Any, tracked: Any) -> str:
    """What a stopped run can do next, in one line."""
    from tracker.resume import latest_checkpoint

    if tracked is None or not plan.saves:
        return "stopped    (no checkpoints: a run continues with `xp resume` when [checkpoint] is set and tracked)"
    saved = latest_checkpoint(plan.folder)
    if saved is None:
        return f"stopped    before the first checkpoint of run {tracked.run_name}: `xp run` starts it again"
    return f"stopped    at or after step {saved.step}; continue from there with: xp resume {tracked.run_id[:12]}"


def describe_data(data: Any) -> str:
    """`240 train, 60 eval rows; 2 labels: not_equivalent, equivalent; text: sentence1, sentence2`."""
    rows = ", ".join(f"{len(rows)} {split}" for split, rows in data.splits.items())
    return f"{rows} rows; {data.task.describe()}; text: {', '.join(data.text_columns)}"


def describe_model(experiment: Experiment, model: Any, hardware: Any, adapter: Any) -> str:
    """`<checkpoint>, 22.8M parameters, 74.5K trained (0.33%: LoRA r=8 on query, value), on cpu in fp32`."""
    from tracker.params import parameter_counts

    checkpoint = experiment.components["model"].options.get("checkpoint", experiment.components["model"].use)
    counts = parameter_counts(model)
    total, trained = counts["parameters"], counts["trainable_parameters"]
    share = f" ({trained / total:.2%}: {adapter.describe()})" if adapter is not None else ""
    return (
        f"{checkpoint}, {_count(total)} parameters, {_count(trained)} trained{share}, "
        f"on {hardware.device} in {hardware.precision}"
    )


def _count(number: int) -> str:
    """22.7M, 74.5K, 512."""
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if number >= size:
            return f"{number / size:.1f}{unit}"
    return str(number)

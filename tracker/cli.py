"""The `xp` command line. Heavy libraries are imported only by the commands that build things."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from tracker import __version__, cli_store
from tracker.cli_options import (
    Edits,
    ExecutorChoice,
    comma_list,
    edit_options,
    executor_options,
    files_argument,
    main_process,
    registry_or_exit,
    store_option,
    verbosity_options,
    writable_output_or_exit,
)
from tracker.errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED
from tracker.garbage_collection import collect_nothing_at_exit
from tracker.hub import offline_unless_the_hub_answers
from tracker.redact import Redactor
from tracker.registry import KINDS, Registry


def _load_or_exit(files: Sequence[str], edits: Edits, registry: Registry):
    from tracker.api import load_experiments

    experiments, problems = load_experiments(files, edits.overrides, registry, edits.unsets, edits.allow_code)
    for problem in problems:  # a URI password in a message is masked; a secret key's value never appears
        click.echo(Redactor().text(str(problem)), err=True)
    if problems:
        bad = len({p.file for p in problems})
        click.echo(f"{bad} of {len(files)} experiment file(s) invalid; nothing was run.", err=True)
        sys.exit(EXIT_BAD_INPUT)
    return experiments


def entry_point() -> None:
    """The `xp` process (`xp`, `python -m tracker`): the command line, in a process that does not
    collect its garbage at exit (tracker.garbage_collection)."""
    collect_nothing_at_exit()
    main()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="xp")
def main() -> None:
    """xp: declarative experiments for fine-tuning Hugging Face transformers, tracked in MLflow."""


@main.command()
@files_argument
@edit_options
@click.option(
    "--data",
    is_flag=True,
    help="Also load each dataset and check it against the experiment "
    "(labels against metrics and model), the hardware and the tracking store.",
)
def validate(files: Sequence[str], edits: Edits, data: bool) -> None:
    """Check experiment files without training: every problem of every file at once."""
    if data:
        offline_unless_the_hub_answers()
    registry = registry_or_exit()
    experiments = _load_or_exit(files, edits, registry)
    if not data:
        for experiment in experiments:
            click.echo(f"ok: {experiment.path}")
        return
    from tracker.errors import ExperimentError
    from tracker.recipe import check_data, check_machine
    from tracker.sweep import storage_of

    failed = 0
    for experiment in experiments:
        try:
            check_machine(experiment, storage_of(experiment))
            note = check_data(experiment, registry)
        except ExperimentError as error:
            failed += 1
            for problem in error.problems:
                click.echo(experiment.redactor.text(str(problem)), err=True)
        else:
            click.echo(f"ok (data checked): {experiment.path}" + (f" ({note})" if note else ""))
    if failed:
        click.echo(f"{failed} of {len(files)} experiment file(s) invalid; nothing was run.", err=True)
        sys.exit(EXIT_BAD_INPUT)


def _run_and_exit(experiments: Sequence, registry: Registry, console, resume=None) -> None:
    """Run the experiments one by one, print a summary of each and the table; exit 1 when one
    failed, 2 when one was invalid."""
    from tracker.recipe import run_tracked
    from tracker.session import run_one, run_summary, summary_table

    outcomes = []
    for experiment in experiments:
        console.say("experiment", f"{experiment.path} ({experiment.components['runner'].use} runner)")
        execute = functools.partial(run_tracked, console=console, resume=resume)
        outcome = run_one(experiment, registry, execute, lambda text: click.echo(text, err=True))
        if main_process():
            click.echo(run_summary(outcome), err=True)
        outcomes.append(outcome)
    if main_process():
        click.echo(summary_table(outcomes), nl=False)
    statuses = {outcome.status for outcome in outcomes}
    sys.exit(1 if "failed" in statuses else EXIT_BAD_INPUT if "invalid" in statuses else 0)


def _run_on_executor_and_exit(experiments: Sequence, edits: Edits, choice: ExecutorChoice, console) -> None:
    from tracker.executors.runs import run_all
    from tracker.session import summary_table

    executor = choice.open_or_exit()
    outcomes, stopped = run_all(
        executor, experiments, edits, console.verbosity, lambda text: click.echo(text, err=True)
    )
    click.echo(summary_table(outcomes), nl=False)
    statuses = {outcome.status for outcome in outcomes}
    failed = statuses & {"failed", "killed"}
    sys.exit(EXIT_INTERRUPTED if stopped else 1 if failed else EXIT_BAD_INPUT if "invalid" in statuses else 0)


@main.command()
@files_argument
@edit_options
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    default=1,
    metavar="N",
    help="Train on N processes of this machine (torchrun; the accelerate runner): one MLflow run, "
    "logged by the first process.",
)
@executor_options
@verbosity_options
def run(files: Sequence[str], edits: Edits, processes: int, executor: ExecutorChoice, console) -> None:
    """Validate every file, then run the experiments one by one and print a summary. With
    --executor ray, every experiment at once as a Ray task."""
    offline_unless_the_hub_answers()
    registry = registry_or_exit()
    experiments = _load_or_exit(files, edits, registry)
    if executor.name == "ray":
        _run_on_executor_and_exit(experiments, edits, executor, console)
    if processes > 1:
        from tracker import launch

        if not launch.already_launched():
            problems = launch.single_process_problems(experiments, registry)
            for problem in problems:
                click.echo(str(problem), err=True)
            if problems:
                sys.exit(EXIT_BAD_INPUT)
            launch.relaunch(sys.argv[1:], processes)
    for experiment in experiments:
        if experiment.sweep is not None:
            console.say(
                "note",
                f"{experiment.path} has a [sweep]: `xp run` runs the experiment as written, "
                f"`xp sweep {experiment.path}` runs the study",
            )
    _run_and_exit(experiments, registry, console)


@main.command()
@click.argument("selector", metavar="RUN")
@store_option
@edit_options
@verbosity_options
def resume(selector: str, uri: str | None, edits: Edits, console) -> None:
    """Continue a stopped run (Ctrl-C, SIGTERM, a crash, a kill) from its newest checkpoint, in the
    same MLflow run: steps go on where the checkpoint left them, and the run ends as any other.

    RUN is a run id, a unique prefix of one, or a run name. The run's experiment file is read again
    with the overrides the run was started with, and must resolve to the same settings. A FINISHED
    run has nothing to resume. --set gives again the values of overrides that were secrets, which
    are never stored.
    """
    from tracker.errors import ExperimentError
    from tracker.resume.command import NothingToResume, ResumeError, find_resumable
    from tracker.stores import StoreError, store_uri

    offline_unless_the_hub_answers()
    registry = registry_or_exit()
    try:
        experiment, where = find_resumable(
            selector, store_uri(uri), edits.overrides, edits.unsets, edits.allow_code, registry
        )
    except NothingToResume as finished:
        click.echo(str(finished), err=True)
        return
    except (ResumeError, StoreError) as error:
        click.echo(f"error: {Redactor().text(str(error))}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except ExperimentError as error:
        for problem in error.problems:
            click.echo(Redactor().text(str(problem)), err=True)
        sys.exit(EXIT_BAD_INPUT)
    _run_and_exit([experiment], registry, console, resume=where)


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@edit_options
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the plan (study, space, each trial's effective batch size and training steps) and run nothing.",
)
@executor_options
@verbosity_options
def sweep(file: str, edits: Edits, dry_run: bool, executor: ExecutorChoice, console) -> None:
    """Run the hyperparameter study of FILE's [sweep] section with Optuna: each trial an MLflow run
    nested under the study's run.

    The study lives in a database (by default mlruns/optuna.db, beside the MLflow store): the same
    command again continues an interrupted study and runs nothing once it is complete; two
    processes on one study share its trials. --set sweep.KEY=VALUE changes the sweep, as any key.
    """
    from tracker.errors import ExperimentError
    from tracker.sweep import dry_run as plan
    from tracker.sweep import run_sweep

    offline_unless_the_hub_answers()
    registry = registry_or_exit()
    [experiment] = _load_or_exit([file], edits, registry)
    try:
        if dry_run:
            with console.libraries_quiet():
                text = plan(experiment, registry, edits)
            click.echo(text, nl=False)
            return
        code = run_sweep(experiment, registry, edits, console, executor)
    except ExperimentError as error:
        for problem in error.problems:
            click.echo(experiment.redactor.text(str(problem)), err=True)
        click.echo("nothing was run.", err=True)
        sys.exit(EXIT_BAD_INPUT)
    sys.exit(code)


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@edit_options
def show(file: str, edits: Edits) -> None:
    """Print the resolved experiment as TOML: every default filled in, overrides applied, secrets hidden."""
    from tracker import tomlwrite

    [experiment] = _load_or_exit([file], edits, registry_or_exit())
    click.echo(tomlwrite.dumps(experiment.shown()), nl=False)


@main.command()
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the schema to this file instead of printing it.",
)
def schema(output: Path | None) -> None:
    """The JSON Schema (draft 2020-12) of experiment files for the installed plugins, for editors."""
    from tracker.spec.jsonschema import experiment_schema

    if output is not None:
        writable_output_or_exit("-o", output)
    text = json.dumps(experiment_schema(registry_or_exit()), indent=2) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)


@main.command()
@click.option("--kind", type=click.Choice(KINDS), help="Only plugins of this kind.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--markdown", "as_markdown", is_flag=True, help="A Markdown reference (as in docs/plugins-reference.md).")
def plugins(kind: str | None, as_json: bool, as_markdown: bool) -> None:
    """List every registered plugin with its keys, and plugins that failed to load."""
    from tracker import listing

    registry = registry_or_exit()
    components = [c for c in registry.all() if kind is None or c.kind == kind]
    if as_json:
        click.echo(json.dumps(listing.as_json(components, registry.broken), indent=2))
    elif as_markdown:
        click.echo(listing.as_markdown(components), nl=False)
    else:
        click.echo(listing.as_text(components, registry.broken), nl=False)


@main.command()
@click.argument("source", metavar="FOLDER|FILE|HUB_ID")
@click.option(
    "--output",
    "-o",
    metavar="FILE",
    help="Where to write the experiment (- prints it) [default: experiments/<name>.toml when "
    "./experiments exists, else ./<name>.toml].",
)
@click.option(
    "--config", "config_name", metavar="NAME", help="The config of a hub dataset (nyu-mll/glue --config mrpc)."
)
@click.option("--text-columns", metavar="A[,B]", callback=comma_list, help="The text column(s), instead of guessing.")
@click.option("--label-column", metavar="NAME", help="The label column, instead of guessing.")
@click.option(
    "--task",
    "task_name",
    metavar="NAME",
    help="The task to train (xp plugins --kind task) [default: the default task].",
)
@click.option("--force", is_flag=True, help="Overwrite the experiment file if it exists.")
def init(
    source: str,
    output: str | None,
    config_name: str | None,
    text_columns: list[str] | None,
    label_column: str | None,
    task_name: str | None,
    force: bool,
) -> None:
    """Write a commented starter experiment for a data folder, a data file or a hub dataset.

    FOLDER holds CSV, JSON Lines or Parquet files named by split, as a hub dataset lays them out
    (train.csv, validation.csv or dev.csv, test.csv). The rows are read to find the text column(s)
    and what the task learns from (for the default task: the label column, class names or numbers
    for regression); metrics and a model are chosen to fit, and the file passes `xp validate
    --data` as written. A HUB_ID is read from the hub, or from the local datasets cache when
    offline.
    """
    import shlex

    from tracker.starter import (
        InitError,
        check_writable,
        default_checkpoint,
        default_output,
        experiment_name,
        propose,
        starter_text,
        task_of,
        write_starter,
    )

    offline_unless_the_hub_answers()
    registry = registry_or_exit()
    name = experiment_name(source, config_name)
    path = None if output == "-" else Path(output) if output else default_output(name)
    checkpoint = default_checkpoint()
    given_task = task_name
    try:
        task_name, task = task_of(registry, task_name)
        if path is not None:
            check_writable(path, force)  # before the data is read, which may take a while
        click.echo(f"reading {source} ...", err=True)
        found = propose(registry, source, task, config_name, text_columns, label_column)
        if found.task is not None and given_task is not None and found.task != given_task:
            raise InitError(
                f'--task: the {found.use} dataset plugin reads {source} for the task "{found.task}", not "{given_task}"'
            )
        task_name = found.task or task_name
        shown = shlex.quote(str(path)) if path else "FILE"
        written_task = None if task_name == registry.defaults.get("task") else task_name
        text = starter_text(source, found, written_task, path.stem if path else name, checkpoint, shown)
        if path is not None:
            write_starter(path, text, force)
    except InitError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    for note in found.notes:
        click.echo(f"note: {note}", err=True)
    if path is None:
        click.echo(text, nl=False)
        return
    click.echo(
        f"wrote {path}\n  rows: {found.rows_summary}\n  text: {found.proposal.inputs}\n"
        f"  label: {found.proposal.targets}\n  model: {found.proposal.checkpoint or checkpoint}"
    )
    click.echo(f"next: xp run {shown}")


for _command in (cli_store.ui, cli_store.runs, cli_store.compare, cli_store.predict, cli_store.sync):
    main.add_command(_command)

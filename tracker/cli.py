"""The `xp` command line. Heavy libraries are imported only by the commands that build things."""
from __future__ import annotations

import functools
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import click

from tracker import __version__
from tracker.errors import EXIT_BAD_INPUT
from tracker.redact import Redactor
from tracker.registry import KINDS, Registry, RegistryError, load_registry
from tracker.spec.parse import Override, Unset, parse_override, parse_unset


def _parsed(parse):
    def callback(ctx, param, values: Sequence[str]) -> list:
        try:
            return [parse(text) for text in values]
        except ValueError as error:
            raise click.BadParameter(str(error)) from None

    return callback


@dataclass(frozen=True)
class Edits:
    """What the command line changes in every file it names, and what it allows."""

    overrides: Sequence[Override] = ()
    unsets: Sequence[Unset] = ()
    allow_code: bool = False


def edit_options(command):
    """--set, --unset and --allow-code, folded into one `edits` argument."""
    @click.option("--set", "overrides", multiple=True, callback=_parsed(parse_override), metavar="SECTION.KEY=VALUE",
                  help="Override a key; the value is parsed as TOML (--set optimizer.lr=3e-5). Repeatable.")
    @click.option("--unset", "unsets", multiple=True, callback=_parsed(parse_unset), metavar="SECTION.KEY",
                  help="Remove a key the file sets, so it takes its default (--unset runner.max_steps). Repeatable.")
    @click.option("--allow-code", is_flag=True,
                  help="Allow keys that run code not from an installed plugin (trust_remote_code, evaluate scripts).")
    @functools.wraps(command)
    def wrapper(*args, overrides, unsets, allow_code, **kwargs):
        return command(*args, edits=Edits(overrides, unsets, allow_code), **kwargs)

    return wrapper


files_argument = click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))

uri_option = click.option("--uri", default=None, metavar="URI",
                          help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, else sqlite:///mlruns/mlflow.db).")
# Commands that read runs take any spelling of a store (tracker.stores), and never create one.
store_option = click.option("--uri", default=None, metavar="STORE",
                            help="The tracking store: a folder holding mlflow.db (mlruns), a .db file, sqlite:///PATH "
                                 "or http(s)://HOST (default: MLFLOW_TRACKING_URI, else mlruns/mlflow.db).")


def _registry() -> Registry:
    try:
        return load_registry()
    except RegistryError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_BAD_INPUT)


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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="xp")
def main() -> None:
    """xp: declarative experiments for fine-tuning Hugging Face transformers, tracked in MLflow."""


@main.command()
@files_argument
@edit_options
@click.option("--data", is_flag=True, help="Also load each dataset and check it against the experiment "
                                           "(labels against metrics and model), the hardware and the tracking store.")
def validate(files: Sequence[str], edits: Edits, data: bool) -> None:
    """Check experiment files without training: every problem of every file at once."""
    registry = _registry()
    experiments = _load_or_exit(files, edits, registry)
    if not data:
        for experiment in experiments:
            click.echo(f"ok: {experiment.path}")
        return
    from tracker.errors import ExperimentError
    from tracker.recipe import check_machine, load_task

    failed = 0
    for experiment in experiments:
        try:
            check_machine(experiment)
            load_task(experiment, registry)
        except ExperimentError as error:
            failed += 1
            for problem in error.problems:
                click.echo(experiment.redactor.text(str(problem)), err=True)
        else:
            click.echo(f"ok (data checked): {experiment.path}")
    if failed:
        click.echo(f"{failed} of {len(files)} experiment file(s) invalid; nothing was run.", err=True)
        sys.exit(EXIT_BAD_INPUT)


def verbosity_options(command):
    @click.option("-v", "--verbose", is_flag=True, help="Also show library logs, warnings and model load reports.")
    @click.option("-q", "--quiet", is_flag=True, help="Print only the summary of each run and the final table.")
    @functools.wraps(command)
    def wrapper(*args, verbose, quiet, **kwargs):
        from tracker.console import NORMAL, QUIET, VERBOSE, Console

        if verbose and quiet:
            raise click.UsageError("-v and -q contradict each other; give one")
        # Under torchrun / accelerate launch every process runs this; only rank 0 talks.
        quiet = quiet or not _main_process()
        return command(*args, console=Console(VERBOSE if verbose else QUIET if quiet else NORMAL), **kwargs)

    return wrapper


def _main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


def _run_and_exit(experiments: Sequence, registry: Registry, console, resume=None) -> None:
    """Run the experiments one by one, print a summary of each and the table; exit 1 when one
    failed, 2 when one was invalid."""
    from tracker.recipe import run_experiment
    from tracker.session import run_one, run_summary, summary_table
    from tracker.tracking import start_run_with

    outcomes = []
    for experiment in experiments:
        console.say("experiment", f"{experiment.path} ({experiment.components['runner'].use} runner)")
        execute = functools.partial(run_experiment, start_run=start_run_with(registry, console, resume),
                                    console=console, resume=resume)
        outcome = run_one(experiment, registry, execute, lambda text: click.echo(text, err=True))
        if _main_process():
            click.echo(run_summary(outcome), err=True)
        outcomes.append(outcome)
    if _main_process():
        click.echo(summary_table(outcomes), nl=False)
    statuses = {outcome.status for outcome in outcomes}
    sys.exit(1 if "failed" in statuses else EXIT_BAD_INPUT if "invalid" in statuses else 0)


@main.command()
@files_argument
@edit_options
@verbosity_options
def run(files: Sequence[str], edits: Edits, console) -> None:
    """Validate every file, then run the experiments one by one and print a summary."""
    registry = _registry()
    _run_and_exit(_load_or_exit(files, edits, registry), registry, console)


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

    registry = _registry()
    try:
        experiment, where = find_resumable(selector, store_uri(uri), edits.overrides, edits.unsets, edits.allow_code,
                                           registry)
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
def show(file: str, edits: Edits) -> None:
    """Print the resolved experiment as TOML: every default filled in, overrides applied, secrets hidden."""
    from tracker import tomlwrite

    [experiment] = _load_or_exit([file], edits, _registry())
    click.echo(tomlwrite.dumps(experiment.shown()), nl=False)


@main.command()
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the schema to this file instead of printing it.")
def schema(output: Path | None) -> None:
    """The JSON Schema (draft 2020-12) of experiment files for the installed plugins, for editors."""
    from tracker.spec.jsonschema import experiment_schema

    text = json.dumps(experiment_schema(_registry()), indent=2) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)


@main.command()
@click.option("--kind", type=click.Choice(KINDS), help="Only plugins of this kind.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--markdown", "as_markdown", is_flag=True, help="A Markdown reference (as in the README).")
def plugins(kind: str | None, as_json: bool, as_markdown: bool) -> None:
    """List every registered plugin with its keys, and plugins that failed to load."""
    from tracker import listing

    registry = _registry()
    components = [c for c in registry.all() if kind is None or c.kind == kind]
    if as_json:
        click.echo(json.dumps(listing.as_json(components, registry.broken), indent=2))
    elif as_markdown:
        click.echo(listing.as_markdown(components), nl=False)
    else:
        click.echo(listing.as_text(components, registry.broken), nl=False)


@main.command()
@uri_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; 0.0.0.0 exposes it.")
@click.option("--port", default=5000, show_default=True, type=int)
def ui(uri: str | None, host: str, port: int) -> None:
    """Start the MLflow UI on the tracking store and print its URL."""
    import subprocess

    from tracker.tracking import CLASSIC_VIEW, DEFAULT_STORE, tracking_uri

    store = tracking_uri({"uri": uri})
    if store == DEFAULT_STORE:
        Path("mlruns").mkdir(exist_ok=True)
    address = f"http://{host}:{port}/#/experiments?{CLASSIC_VIEW}"
    click.echo(f"MLflow UI: {address}  (store: {store}; Ctrl-C stops it)", err=True)
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", store, "--host", host, "--port", str(port)]
    try:
        sys.exit(subprocess.call(command))
    except KeyboardInterrupt:
        sys.exit(0)


@main.command()
@click.argument("selectors", nargs=-1, required=True, metavar="RUNS...")
@store_option
@click.option("--png", default=Path("compare.png"), show_default=True,
              type=click.Path(dir_okay=False, path_type=Path), help="Where to write the figure overlaying the runs' curves.")
@click.option("--no-png", is_flag=True, help="Write no figure.")
def compare(selectors: Sequence[str], uri: str | None, png: Path, no_png: bool) -> None:
    """Compare runs: the params that differ and the final and best metrics, side by side, and one
    figure of their curves.

    Each of RUNS is a run id or a unique prefix of one, a run name (every run of that name), an
    experiment name (every run of it), or an experiment file (every run of that .toml file, however
    its path was spelled). Runs are shown in the order named, oldest first within each.
    """
    from tracker.compare import comparison, comparison_table, find_runs, plot_comparison
    from tracker.stores import StoreError, open_store, store_uri

    try:
        store = store_uri(uri)
        client = open_store(store)
        found = comparison(client, find_runs(client, selectors, store))
    except StoreError as error:
        for line in str(error).splitlines():  # one per selector that found nothing
            click.echo(f"error: {line}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    click.echo(comparison_table(found), nl=False)
    if not no_png:
        figure = plot_comparison(found, png)
        drawn = f"curves: {figure}" if figure else "curves: none drawn (no run logged train/loss or an eval metric)"
        click.echo(drawn, err=True)


@main.command()
@click.argument("experiments", nargs=-1, metavar="[EXPERIMENT]...")
@store_option
@click.option("--stale-after", default=None, type=click.FloatRange(min=0), metavar="SECONDS",
              help="A RUNNING run silent this long is stale: its process died. [default: 300, ten missed heartbeats]")
@click.option("--end-stale", is_flag=True, help="End every stale run listed as FAILED, with the reason.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1), help="The newest runs, at most.")
def runs(experiments: Sequence[str], uri: str | None, stale_after: float | None, end_stale: bool, limit: int) -> None:
    """List runs, newest first: name, id, status, main metric, start, duration, runner.

    RUNNING runs whose heartbeat stopped (the process was killed, ran out of memory, or the machine
    stopped) are flagged stale; --end-stale ends them as FAILED, saying why. EXPERIMENT names
    narrow the list (default: every experiment).
    """
    from tracker.heartbeat import STALE_AFTER_SECONDS
    from tracker.run_list import end_stale_runs, list_runs, runs_table
    from tracker.stores import StoreError, open_store, store_uri

    try:
        client = open_store(store_uri(uri))
        listed = list_runs(client, experiments, STALE_AFTER_SECONDS if stale_after is None else stale_after,
                           limit=limit)
    except StoreError as error:
        click.echo(f"error: {Redactor().text(str(error))}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    click.echo(runs_table(listed), nl=False)
    stale = sum(entry.stale for entry in listed)
    if end_stale:
        for run in end_stale_runs(client, listed):
            click.echo(f"ended {run.info.run_name} ({run.info.run_id[:12]}) as FAILED: no heartbeat", err=True)
    elif stale:
        click.echo(f"{stale} stale run(s): `xp runs --end-stale` ends them as FAILED", err=True)


def _comma_list(ctx, param, value: str | None) -> list[str] | None:
    return [name.strip() for name in value.split(",") if name.strip()] if value else None


@main.command()
@click.argument("model")
@click.option("--input", "-i", "input_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The rows to predict: .csv, .jsonl or .parquet, with the text columns the model was trained on.")
@click.option("--output", "-o", metavar="FILE",
              help="Where to write them (.csv, .jsonl or .parquet; - prints CSV) "
                   "[default: <input stem>.predictions.<input extension>, next to the input].")
@click.option("--text-columns", metavar="A[,B]", callback=_comma_list,
              help="The input's text column(s), when they are not named as in training or the model does not say.")
@click.option("--probabilities", is_flag=True, help="Also write one prob_<label> column per class.")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1))
@click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda", "mps"]),
              help="auto: CUDA if available, else MPS, else the CPU.")
@store_option
def predict(model: str, input_path: Path, output: str | None, text_columns: list[str] | None, probabilities: bool,
            batch_size: int, device: str, uri: str | None) -> None:
    """Predict labels for a table of texts with a trained model.

    MODEL is a run id (or a unique prefix of one), a run name, runs:/<run id>/model,
    models:/<name>/<version>, models:/<name>@<alias>, a Logged Model id (m-...), or a local folder.
    Writes every input column plus label, label_id and score (the predicted value, for regression).
    """
    from tracker.predict import PredictError, predict_file
    from tracker.stores import StoreError

    try:
        outcome = predict_file(model, input_path, output, uri=uri, text_columns=text_columns,
                               probabilities=probabilities, batch_size=batch_size, device=device,
                               say=lambda text: click.echo(text, err=True))
    except (PredictError, StoreError) as error:  # a password in a tracking URI is masked
        click.echo(f"error: {Redactor().text(str(error))}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    if outcome.output != "-":
        click.echo(f"wrote {outcome.output} ({outcome.rows} rows)", err=True)


@main.command()
@click.argument("source", metavar="FOLDER|FILE|HUB_ID")
@click.option("--output", "-o", metavar="FILE",
              help="Where to write the experiment (- prints it) [default: experiments/<name>.toml when "
                   "./experiments exists, else ./<name>.toml].")
@click.option("--config", "config_name", metavar="NAME", help="The config of a hub dataset (nyu-mll/glue --config mrpc).")
@click.option("--text-columns", metavar="A[,B]", callback=_comma_list, help="The text column(s), instead of guessing.")
@click.option("--label-column", metavar="NAME", help="The label column, instead of guessing.")
@click.option("--force", is_flag=True, help="Overwrite the experiment file if it exists.")
def init(source: str, output: str | None, config_name: str | None, text_columns: list[str] | None,
         label_column: str | None, force: bool) -> None:
    """Write a commented starter experiment for a data folder, a data file or a hub dataset.

    FOLDER holds CSV, JSON Lines or Parquet files named by split, as a hub dataset lays them out
    (train.csv, validation.csv or dev.csv, test.csv). The rows are read to find the text column(s)
    and the label column (class names, or numbers for regression); metrics and a model are chosen
    to fit, and the file passes `xp validate --data` as written. A HUB_ID is read from the hub, or
    from the local datasets cache when offline.
    """
    import shlex

    from tracker.starter import InitError, check_writable, default_checkpoint, default_output, experiment_name, \
        inspect_data, starter_text, write_starter

    name = experiment_name(source, config_name)
    path = None if output == "-" else Path(output) if output else default_output(name)
    checkpoint = default_checkpoint()
    try:
        if path is not None:
            check_writable(path, force)  # before the data is read, which may take a while
        click.echo(f"reading {source} ...", err=True)
        task = inspect_data(source, config_name, text_columns, label_column)
        shown = shlex.quote(str(path)) if path else "FILE"
        text = starter_text(task, path.stem if path else name, checkpoint, shown)
        if path is not None:
            write_starter(path, text, force)
    except InitError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    for note in task.notes:
        click.echo(f"note: {note}", err=True)
    if path is None:
        click.echo(text, nl=False)
        return
    click.echo(f"wrote {path}\n  rows: {task.rows_summary}\n  text: {task.text_summary}\n"
               f"  label: {task.label_summary}\n  model: {checkpoint}")
    click.echo(f"next: xp run {shown}")

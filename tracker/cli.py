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


@main.command()
@files_argument
@edit_options
def run(files: Sequence[str], edits: Edits) -> None:
    """Validate every file, then run the experiments one by one and print a summary."""
    from tracker.recipe import run_experiment
    from tracker.session import run_one, summary_table
    from tracker.tracking import start_run_with

    registry = _registry()
    experiments = _load_or_exit(files, edits, registry)
    # Under torchrun / accelerate launch every process runs this; only rank 0 talks.
    say = click.echo if os.environ.get("RANK", "0") == "0" else (lambda *args, **kwargs: None)
    outcomes = []
    for experiment in experiments:
        say(f"== {experiment.path} ({experiment.components['runner'].use})", err=True)
        execute = functools.partial(run_experiment, start_run=start_run_with(registry))
        outcome = run_one(experiment, registry, execute, lambda text: click.echo(text, err=True))
        if outcome.result is not None and outcome.result.diagnosis is not None:
            say(f"learning curves: {outcome.result.diagnosis.verdict}: "
                f"{outcome.result.diagnosis.explanation}", err=True)
        outcomes.append(outcome)
    say(summary_table(outcomes))
    statuses = {outcome.status for outcome in outcomes}
    sys.exit(1 if "failed" in statuses else EXIT_BAD_INPUT if "invalid" in statuses else 0)


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


uri_option = click.option("--uri", default=None, metavar="URI",
                          help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, else sqlite:///mlruns/mlflow.db).")


@main.command()
@uri_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; 0.0.0.0 exposes it.")
@click.option("--port", default=5000, show_default=True, type=int)
def ui(uri: str | None, host: str, port: int) -> None:
    """Start the MLflow UI on the tracking store and print its URL."""
    import subprocess

    from tracker.tracking import DEFAULT_STORE, tracking_uri

    store = tracking_uri({"uri": uri})
    if store == DEFAULT_STORE:
        Path("mlruns").mkdir(exist_ok=True)
    click.echo(f"MLflow UI: http://{host}:{port}  (store: {store}; Ctrl-C stops it)", err=True)
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", store, "--host", host, "--port", str(port)]
    try:
        sys.exit(subprocess.call(command))
    except KeyboardInterrupt:
        sys.exit(0)


@main.command()
@click.argument("selectors", nargs=-1, required=True, metavar="FILES_OR_RUN_IDS...")
@uri_option
@click.option("--png", type=click.Path(dir_okay=False, path_type=Path), help="Also write the validation curves here.")
def compare(selectors: Sequence[str], uri: str | None, png: Path | None) -> None:
    """Compare runs: the params that differ and the final metrics, side by side."""
    from mlflow import MlflowClient

    from tracker.compare import comparison_table, find_runs, plot_validation_curves
    from tracker.tracking import tracking_uri

    client = MlflowClient(tracking_uri({"uri": uri}))
    try:
        runs = find_runs(client, selectors)
    except LookupError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    click.echo(comparison_table(runs))
    if png is not None:
        click.echo(f"validation curves: {plot_validation_curves(client, runs, png)}", err=True)

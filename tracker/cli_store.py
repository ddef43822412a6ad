"""The `xp` commands that read and repair tracked runs: ui, runs, compare, predict, sync."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import click

from tracker.cli_options import comma_list, registry_or_exit, store_option, writable_output_or_exit
from tracker.errors import EXIT_BAD_INPUT
from tracker.redact import Redactor


@click.command()
@store_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on; 0.0.0.0 exposes it.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
def ui(uri: str | None, host: str, port: int) -> None:
    """Start the MLflow UI on the tracking store and print its URL once it answers; Ctrl-C,
    SIGTERM or SIGHUP stops it, every process of it."""
    from tracker.stores import StoreError, store_uri
    from tracker.ui_server import UIError, serve

    try:
        store = store_uri(uri)
    except StoreError as error:
        click.echo(f"error: {Redactor().text(str(error))}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    if store.startswith(("http://", "https://")):  # a server shows its own UI: nothing to start
        from tracker.tracking import CLASSIC_VIEW

        shown = Redactor().text(store.rstrip("/"))
        click.echo(f"MLflow UI: {shown}/#/experiments?{CLASSIC_VIEW}  (the store is a server: open it)", err=True)
        return
    try:
        serve(store, host, port, lambda text: click.echo(text, err=True))
    except UIError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_BAD_INPUT if error.bad_input else 1)


@click.command()
@click.argument("selectors", nargs=-1, required=True, metavar="RUNS...")
@store_option
@click.option(
    "--png",
    default=Path("compare.png"),
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the figure overlaying the runs' curves.",
)
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
        if not no_png:
            writable_output_or_exit("--png", png)
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


@click.command()
@click.argument("experiments", nargs=-1, metavar="[EXPERIMENT]...")
@store_option
@click.option(
    "--stale-after",
    default=None,
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="A RUNNING run silent this long is stale: its process died. [default: 300, ten missed heartbeats]",
)
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
        listed = list_runs(
            client, experiments, STALE_AFTER_SECONDS if stale_after is None else stale_after, limit=limit
        )
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


@click.command()
@click.argument("folders", nargs=-1, type=click.Path(exists=True, file_okay=False, path_type=Path))
@store_option
def sync(folders: Sequence[Path], uri: str | None) -> None:
    """Send to the tracking store what runs logged while it was unreachable and could not send
    before they ended: the spools under FOLDERS (default: ./outputs), in order, each record once.

    A run ended while its store was away keeps its records in <output_dir>/<run name>/tracking-spool/;
    `xp run` says where. --uri names the store when its URI held a password (never stored).
    """
    from tracker.stores import StoreError
    from tracker.tracking.sync import sync_spools

    try:
        synced = sync_spools(list(folders) or [Path("outputs")], uri, lambda text: click.echo(text, err=True))
    except StoreError as error:
        click.echo(f"error: {Redactor().text(str(error))}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    for done in synced:
        click.echo(f"sent {done.records} records of run {done.run or '(not started)'} from {done.spool}", err=True)


@click.command()
@click.argument("model")
@click.option(
    "--input",
    "-i",
    "input_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The rows to predict: .csv, .jsonl or .parquet, with the text columns the model was trained on.",
)
@click.option(
    "--output",
    "-o",
    metavar="FILE",
    help="Where to write them (.csv, .jsonl or .parquet; - prints CSV) "
    "[default: <input stem>.predictions.<input extension>, next to the input].",
)
@click.option(
    "--text-columns",
    metavar="A[,B]",
    callback=comma_list,
    help="The input's text column(s), when they are not named as in training or the model does not say.",
)
@click.option("--probabilities", is_flag=True, help="Also write one prob_<label> column per class.")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--device",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "cpu", "cuda", "mps"]),
    help="auto: CUDA if available, else MPS, else the CPU.",
)
@click.option(
    "--base-model",
    metavar="FOLDER|HUB_ID",
    help="For a model trained as an adapter: its base model, when not where the run found it.",
)
@click.option(
    "--set",
    "task_overrides",
    multiple=True,
    metavar="task.KEY=VALUE",
    help="Change a key of the [task] section the model was trained with, e.g. how it generates: "
    "--set task.num_beams=4 --set task.max_new_tokens=32 (repeatable).",
)
@store_option
def predict(
    model: str,
    input_path: Path,
    output: str | None,
    text_columns: list[str] | None,
    probabilities: bool,
    batch_size: int,
    device: str,
    base_model: str | None,
    task_overrides: tuple[str, ...],
    uri: str | None,
) -> None:
    """Apply a trained model to a table of texts.

    MODEL is a run id (or a unique prefix of one), a run name, runs:/<run id>/model,
    models:/<name>/<version>, models:/<name>@<alias>, a Logged Model id (m-...), or a local folder.
    Writes every input column plus what the model's task predicts (a classifier: label, label_id
    and score; regression: score, the value).
    """
    from tracker.predict import PredictError, predict_file
    from tracker.stores import StoreError

    registry = registry_or_exit()
    try:
        outcome = predict_file(
            model,
            input_path,
            output,
            registry=registry,
            uri=uri,
            text_columns=text_columns,
            probabilities=probabilities,
            batch_size=batch_size,
            device=device,
            base_model=base_model,
            task_overrides=task_overrides,
            say=lambda text: click.echo(text, err=True),
        )
    except (PredictError, StoreError) as error:  # a password in a tracking URI is masked
        click.echo(f"error: {Redactor().text(str(error))}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    if outcome.output != "-":
        click.echo(f"wrote {outcome.output} ({outcome.rows} rows)", err=True)

"""What several `xp` commands share: options, and how bad input ends a command."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import click

from tracker.errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED
from tracker.registry import Registry, RegistryError, load_registry
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

    @click.option(
        "--set",
        "overrides",
        multiple=True,
        callback=_parsed(parse_override),
        metavar="SECTION.KEY=VALUE",
        help="Override a key; the value is parsed as TOML (--set optimizer.lr=3e-5). Repeatable.",
    )
    @click.option(
        "--unset",
        "unsets",
        multiple=True,
        callback=_parsed(parse_unset),
        metavar="SECTION.KEY",
        help="Remove a key the file sets, so it takes its default (--unset runner.max_steps). Repeatable.",
    )
    @click.option(
        "--allow-code",
        is_flag=True,
        help="Allow keys that run code not from an installed plugin (trust_remote_code, evaluate scripts).",
    )
    @functools.wraps(command)
    def wrapper(*args, overrides, unsets, allow_code, **kwargs):
        return command(*args, edits=Edits(overrides, unsets, allow_code), **kwargs)

    return wrapper


files_argument = click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))

uri_option = click.option(
    "--uri",
    default=None,
    metavar="URI",
    help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, else sqlite:///mlruns/mlflow.db).",
)
# Commands that read runs take any spelling of a store (tracker.stores), and never create one.
store_option = click.option(
    "--uri",
    default=None,
    metavar="STORE",
    help="The tracking store: a folder holding mlflow.db (mlruns), a .db file, sqlite:///PATH "
    "or http(s)://HOST (default: MLFLOW_TRACKING_URI, else mlruns/mlflow.db).",
)


def registry_or_exit() -> Registry:
    try:
        return load_registry()
    except RegistryError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_BAD_INPUT)


def writable_output_or_exit(option: str, path: Path) -> None:
    """Every -o/--output/--png: a missing folder is created, as xp creates every folder it writes
    to; a file that cannot be written is one line and exit 2, before the command's work."""
    from tracker.preflight import output_file_problem

    problem = output_file_problem(path)
    if problem:
        click.echo(f"error: {option} {path}: {problem}", err=True)
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
        quiet = quiet or not main_process()
        return command(*args, console=Console(VERBOSE if verbose else QUIET if quiet else NORMAL), **kwargs)

    return wrapper


def main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


def comma_list(ctx, param, value: str | None) -> list[str] | None:
    return [name.strip() for name in value.split(",") if name.strip()] if value else None


@dataclass(frozen=True)
class ExecutorChoice:
    """Where runs or trials go: this machine's processes, or a Ray cluster."""

    name: str = "local"
    address: str | None = None
    cpus: float | None = None
    gpus: float | None = None

    def open_or_exit(self):
        """The executor; a Ray that is not installed or cannot be reached ends the command (exit 2)."""
        from tracker.executors import executor_named

        try:
            return executor_named(self.name, self.address, self.cpus, self.gpus)
        except KeyboardInterrupt:  # while waiting for the cluster: nothing was started yet
            click.echo(f"stopped    before the Ray cluster at {self.address or 'this machine'} answered", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except Exception as error:
            if type(error).__name__ != "RayUnavailable":
                raise
            click.echo(f"error: {error}", err=True)
            sys.exit(EXIT_BAD_INPUT)


def executor_options(command):
    """--executor, --address, --cpus and --gpus, folded into one `executor` argument."""

    @click.option(
        "--executor",
        "executor_name",
        type=click.Choice(["local", "ray"]),
        default="local",
        help='Where runs go: "local" (this machine, one after another) or "ray" (tasks on a Ray cluster).',
    )
    @click.option(
        "--address",
        default=None,
        metavar="ADDRESS",
        help="The Ray cluster: auto, HOST:PORT or ray://HOST:PORT [default: a Ray started on this machine].",
    )
    @click.option(
        "--cpus",
        type=click.FloatRange(min=0),
        default=None,
        help="CPUs each run asks Ray for [default: [hardware] cpu_threads, else 1].",
    )
    @click.option(
        "--gpus",
        type=click.FloatRange(min=0),
        default=None,
        help='GPUs each run asks Ray for [default: 1 with device = "cuda", else 0].',
    )
    @functools.wraps(command)
    def wrapper(*args, executor_name, address, cpus, gpus, **kwargs):
        if executor_name != "ray" and (address or cpus is not None or gpus is not None):
            raise click.UsageError("--address, --cpus and --gpus are for --executor ray")
        return command(*args, executor=ExecutorChoice(executor_name, address, cpus, gpus), **kwargs)

    return wrapper

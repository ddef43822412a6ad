"""The `pruning` suite: one small MRPC study run twice by `xp sweep experiments/mrpc_sweep.toml`,
with the pruner "none" and "median", each into a fresh store; what each trained and what it found.

Both studies draw their trials with the random sampler from the same seed, so they try the same
configurations in the same order: the median pruner is the only difference. Compute is counted
from the stores, not the clock (the machine may be shared): the rows each trial trained on
(MLflow's `train/epoch` at its last evaluation × the training rows) and its optimizer steps.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from launch import timed_run
from variants import ROOT

EXPERIMENT = ROOT / "experiments" / "mrpc_sweep.toml"
PRUNERS = ("none", "median")


@dataclass(frozen=True)
class StudySize:
    """How big the study is: trials, rows, and its [sweep.space] as a TOML inline table."""

    trials: int
    startup_trials: int  # trials the median pruner lets finish before it prunes any
    train_rows: int
    eval_rows: int | None  # None: the whole validation split
    space: str

    def max_rows(self) -> str:
        rows = {"train": self.train_rows, "eval": self.eval_rows}
        return "{" + ", ".join(f"{split} = {n}" for split, n in rows.items() if n is not None) + "}"


# The example file's space with 3 or 4 epochs (2 to 4 in the file): every trial evaluates at least
# three times. 600 training rows: fewer, and most trials stay at the F1 of always answering
# "equivalent", which is then the median every trial reaches, and nothing is pruned.
FULL = StudySize(
    trials=8,
    startup_trials=3,
    train_rows=600,
    eval_rows=None,
    space=(
        '{"optimizer.lr" = {low = 1e-5, high = 1e-4, log = true}, "runner.batch_size" = [8, 16, 32], '
        '"scheduler.warmup_ratio" = {low = 0.0, high = 0.2}, "runner.num_epochs" = {low = 3, high = 4}}'
    ),
)
SMOKE = StudySize(
    trials=3,
    startup_trials=1,
    train_rows=16,
    eval_rows=16,
    space=(
        '{"optimizer.lr" = {low = 1e-5, high = 1e-3, log = true}, "runner.batch_size" = [8, 16], '
        '"runner.num_epochs" = [2]}'
    ),
)


def suite_pruning(bench, args: argparse.Namespace) -> dict:
    size = SMOKE if args.smoke else FULL
    studies = {}
    for pruner in PRUNERS:
        print(f"study with pruner {pruner}: {size.trials} trials", file=sys.stderr)
        studies[pruner] = run_study(bench, size, pruner)
    none, median = studies["none"], studies["median"]
    return {
        "trials": size.trials,
        "pruner_startup_trials": size.startup_trials,
        "train_rows": size.train_rows,
        "eval_rows": size.eval_rows,
        "space": size.space,
        "method": "random",
        "same_configurations": [t["params"] for t in none["trials"]] == [t["params"] for t in median["trials"]],
        "compute_saved": 1 - median["rows_trained"] / none["rows_trained"],
        "ratios": {key: median[key] / none[key] for key in ("rows_trained", "steps", "evaluations", "wall_seconds")},
        "best_difference": (median["best_value"] or 0.0) - (none["best_value"] or 0.0),
        "studies": studies,
    }


def run_study(bench, size: StudySize, pruner: str) -> dict:
    """`xp sweep` in a fresh store folder, timed; then what its trials did, read from the stores."""
    folder = bench.work / f"pruning-{pruner}"
    (folder / "mlruns").mkdir(parents=True)
    store = f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}"
    argv = sweep_argv(bench, size, pruner, store, folder)
    wall = timed_run(argv, folder / "sweep.log", f"xp sweep (pruner {pruner})")
    study = read_study(store, folder / "mlruns" / "optuna.db", f"pruning-{pruner}", size.train_rows)
    study.update(command=shlex.join(["xp", *argv[3:]]), wall_seconds=wall)
    if bench.verbose:
        print(
            f"  {pruner}: {study['complete']} complete, {study['pruned']} pruned, {study['steps']} steps, "
            f"{study['rows_trained']} rows, best {study['best_value']}, wall {wall:.0f}s",
            file=sys.stderr,
        )
    return study


def sweep_argv(bench, size: StudySize, pruner: str, store: str, folder: Path) -> list[str]:
    """The command a user would type, with the data, checkpoint, size and store set on it."""
    settings = [
        f"dataset.path={bench.data}",
        "dataset.name=default",
        f"model.checkpoint={bench.checkpoint}",
        f"dataset.max_rows={size.max_rows()}",
        f"tracking.uri={store}",
        "tracking.system_metrics=false",
        f"experiment.output_dir={folder / 'outputs'}",
        "runner.progress_bar=false",
        "runner.predict=false",
        'sweep.method="random"',
        f"sweep.trials={size.trials}",
        "sweep.seed=42",
        f'sweep.pruner="{pruner}"',
        f"sweep.pruner_startup_trials={size.startup_trials}",
        f'sweep.study="pruning-{pruner}"',
        f"sweep.space={size.space}",
    ]
    return [
        sys.executable,
        "-m",
        "tracker",
        "sweep",
        str(EXPERIMENT.relative_to(ROOT)),
        *(arg for setting in settings for arg in ("--set", setting)),
    ]


def read_study(store: str, optuna_db: Path, name: str, train_rows: int) -> dict:
    """Each trial's state, value and values from Optuna; what it trained from its MLflow run."""
    import optuna
    from mlflow import MlflowClient

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{optuna_db}")
    client = MlflowClient(store)
    trials = [read_trial(client, trial, train_rows) for trial in sorted(study.trials, key=lambda t: t.number)]
    states = [t["state"] for t in trials]
    complete = [t for t in trials if t["state"] == "COMPLETE"]
    best = study.best_trial if complete else None  # Optuna's, in the study's direction
    return {
        "trials": trials,
        "complete": states.count("COMPLETE"),
        "pruned": states.count("PRUNED"),
        "failed": len(states) - states.count("COMPLETE") - states.count("PRUNED"),
        "steps": sum(t["steps"] for t in trials),
        "rows_trained": sum(t["rows_trained"] for t in trials),
        "evaluations": sum(t["evaluations"] for t in trials),
        "best_value": best.value if best else None,
        "best_trial": best.number if best else None,
        "best_params": best.params if best else None,
    }


def read_trial(client, trial, train_rows: int) -> dict:
    """A trial ends at an evaluation (pruned right after one, or the final one): its last
    evaluation's step is its optimizer steps, `train/epoch` there the passes over the rows."""
    run_id = trial.user_attrs.get("xp.run_id")
    evaluations = client.get_metric_history(run_id, "eval/loss") if run_id else []
    f1 = client.get_metric_history(run_id, "eval/f1") if run_id else []
    epochs = client.get_metric_history(run_id, "train/epoch") if run_id else []
    tag = client.get_run(run_id).data.tags.get("xp.sweep.state") if run_id else None
    epochs_done = max((m.value for m in epochs), default=0.0)
    return {
        "number": trial.number,
        "state": trial.state.name,
        "run_state_tag": tag,
        "value": trial.value,
        "params": trial.params,
        "steps": max((m.step for m in evaluations), default=0),
        "evaluations": len({m.step for m in evaluations}),
        "epochs": epochs_done,
        "f1_curve": sorted({(m.step, m.value) for m in f1}),
        "rows_trained": round(epochs_done * train_rows),
        "seconds": (trial.datetime_complete - trial.datetime_start).total_seconds()
        if trial.datetime_complete and trial.datetime_start
        else None,
    }

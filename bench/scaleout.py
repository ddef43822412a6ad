"""The `scaleout` suite: what running wider buys on this machine, measured side by side.

- **N experiments, local one by one vs through Ray**: `xp run F1..FN` against `xp run F1..FN
  --executor ray` (a Ray started on demand on this machine, each run asking for one CPU), the
  same N small MRPC experiments (four learning rates); the figure is experiments per hour.
- **1 vs 2 training processes**: `xp run` against `xp run --processes 2` on the same accelerate
  experiment; the figure is training throughput, rows per second (the `train/samples_per_second`
  the runner logs, counting every process's rows), over the logs after the first.

Each pair runs back to back in every repetition, the order reversed every other one; ratios are
per repetition, the median reported.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from launch import timed_run
from ratios import paired
from variants import ROOT

LEARNING_RATES = ("2e-5", "5e-5", "1e-4", "2e-4")


def _settings(bench: Any, folder: Path, name: str, rows: int, *more: str) -> list[str]:
    settings = [
        f"dataset.path={bench.data}",
        "dataset.name=default",
        f"model.checkpoint={bench.checkpoint}",
        f"dataset.max_rows={{train = {rows}, eval = {max(rows // 4, 8)}}}",
        "runner.num_epochs=1",
        "runner.progress_bar=false",
        "runner.predict=false",
        "tracking.system_metrics=false",
        f'tracking.uri="sqlite:///{folder / "mlruns" / "mlflow.db"}"',
        f'experiment.output_dir="{folder / "outputs"}"',
        f"experiment.name=bench-{name}",
        *more,
    ]
    return [part for setting in settings for part in ("--set", setting)]


def _files(folder: Path, base: str, count: int) -> list[Path]:
    """`count` copies of a shipped experiment, each with its own learning rate (so its own run)."""
    text = (ROOT / "experiments" / base).read_text(encoding="utf-8")
    files = []
    for lr in LEARNING_RATES[:count]:
        path = folder / f"{Path(base).stem}-lr{lr}.toml"
        path.write_text(text.replace("lr = 5e-5", f"lr = {lr}"), encoding="utf-8")
        files.append(path)
    return files


def experiments_per_hour(bench: Any, count: int, rows: int, executor: str) -> float:
    folder = Path(tempfile.mkdtemp(prefix=f"xp-scaleout-{executor}-", dir=bench.work))
    files = _files(folder, "mrpc_loop.toml", count)
    command = [
        sys.executable,
        "-m",
        "tracker",
        "run",
        *map(str, files),
        *_settings(bench, folder, executor, rows),
        *(["--executor", "ray"] if executor == "ray" else []),
    ]
    seconds = timed_run(
        command, folder / "xp.log", f"{count} experiments ({executor})", {"RAY_USAGE_STATS_ENABLED": "0"}
    )
    if bench.verbose:
        print(f"  {count} experiments, {executor}: {seconds:.1f}s", file=sys.stderr)
    return count * 3600 / seconds


def training_rows_per_second(bench: Any, rows: int, processes: int) -> float:
    from mlflow import MlflowClient

    folder = Path(tempfile.mkdtemp(prefix=f"xp-processes-{processes}-", dir=bench.work))
    command = [
        sys.executable,
        "-m",
        "tracker",
        "run",
        str(ROOT / "experiments" / "mrpc_accelerate.toml"),
        *_settings(bench, folder, f"processes-{processes}", rows, "runner.logging_steps=5"),
        *(["--processes", str(processes)] if processes > 1 else []),
    ]
    timed_run(command, folder / "xp.log", f"{processes} training process(es)")
    client = MlflowClient(f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}")
    [run] = client.search_runs([e.experiment_id for e in client.search_experiments()])
    history = sorted(client.get_metric_history(run.info.run_id, "train/samples_per_second"), key=lambda p: p.step)
    rate = statistics.mean(point.value for point in history[1:] or history)  # the first window holds warm-up
    if bench.verbose:
        print(f"  {processes} training process(es): {rate:.1f} rows/s", file=sys.stderr)
    return rate


def suite_scaleout(bench: Any, args: Any) -> dict:
    count, rows = (2, 16) if args.smoke else (4, 192)
    train_rows = 32 if args.smoke else 640
    reps = []
    for rep in range(args.reps):
        print(f"repetition {rep + 1}/{args.reps}", file=sys.stderr)
        runs: dict[str, dict[str, float]] = {}
        for executor in ("local", "ray") if rep % 2 == 0 else ("ray", "local"):
            runs[executor] = {"per_hour": experiments_per_hour(bench, count, rows, executor)}
        for processes in (1, 2) if rep % 2 == 0 else (2, 1):
            runs[f"processes_{processes}"] = {"rows_per_second": training_rows_per_second(bench, train_rows, processes)}
        reps.append(runs)
    return {
        "reps": args.reps,
        "experiments": count,
        "rows_per_experiment": rows,
        "training_rows": train_rows,
        "experiments_per_hour": {"ray / local": paired(reps, "ray", "local", lambda r: r["per_hour"])},
        "training_throughput": {
            "2 processes / 1 process": paired(reps, "processes_2", "processes_1", lambda r: r["rows_per_second"])
        },
        "runs": reps,
    }

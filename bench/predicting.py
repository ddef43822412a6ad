"""The `predict` suite: `xp predict` against the course's `pipeline("text-classification", model=...)`,
side by side, on the same model and the same rows.

The model is trained once, untimed, the way the speed suite trains: `xp run
experiments/mrpc_loop.toml` for `--steps` optimizer steps on the benchmark checkpoint, with
`runner.save_model = true`, into a store of the suite's own (MLflow keeps the logged model
beside it). Then, in every repetition, each of these predicts MRPC's validation split
(`validation.parquet`, the pairs and their ids) in batches of 32, as a fresh process under
bench/probe.py, the order reversed every other repetition:

- `xp_predict`: `xp predict <run name> --uri <store>`, the model found through the run, as a user
  names it (bench/probe.py runs `python -m tracker`, the `xp` command);
- `xp_predict_folder`: `xp predict <the run's save_pretrained folder>`, no store involved;
- `pipeline`: bench/reference/course_pipeline.py, `pipeline(...)` on that same folder.

Figures, xp / pipeline per repetition: the time from launch to the end of the first batch's forward
pass (the probe's forward hooks: every variant is stamped the same way, nothing in it is
instrumented), the wall time from launch to exit (rows read, predicted and written), and the peak
resident memory. Both write their labels; the suite counts the rows where xp and the pipeline agree.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

from launch import timed_run
from ratios import paired
from variants import BENCH, XP_LOOP, Length

SPLIT = "validation"  # 408 pairs; the shipped slice has 100
BATCH_SIZE = 32  # xp predict's default, given to both
PIPELINE = BENCH / "reference" / "course_pipeline.py"


@dataclasses.dataclass(frozen=True)
class TrainedModel:
    store: str
    run_name: str
    folder: Path  # the run's save_pretrained copy: outputs/<run name>/model


def suite_predict(bench: Any, args: Any) -> dict:
    model = train(bench, Length(max_steps=args.steps))
    rows = bench.data / f"{SPLIT}.parquet"
    variants = {
        "xp_predict": ["-m", "tracker", "predict", model.run_name, "--uri", model.store],
        "xp_predict_folder": ["-m", "tracker", "predict", str(model.folder)],
        "pipeline": [str(PIPELINE), "--model", str(model.folder)],
    }
    outputs = bench.work / "predictions"
    outputs.mkdir()

    def run(name: str) -> dict:
        output = outputs / f"{name}.csv"
        argv = [*variants[name], "--input", str(rows), "--output", str(output), "--batch-size", str(BATCH_SIZE)]
        record = bench.probed(name, argv)
        record["output"] = str(output)
        if bench.verbose:
            print(
                f"  {name}: first batch at {record['launch_to_first_forward']:.2f}s, "
                f"wall {record['wall_seconds']:.2f}s, peak RSS {record['peak_rss_mib']:.0f} MiB",
                file=sys.stderr,
            )
        return record

    if not args.smoke:
        print("warm-up: one run of each (page cache, compiled bytecode)", file=sys.stderr)
        for name in variants:
            run(name)
    reps = []
    for rep in range(args.reps):
        order = list(variants) if rep % 2 == 0 else list(variants)[::-1]
        print(f"repetition {rep + 1}/{args.reps}", file=sys.stderr)
        reps.append({name: run(name) for name in order})

    def first_batch(record: dict) -> float:
        return record["launch_to_first_forward"]

    def wall(record: dict) -> float:
        return record["wall_seconds"]

    def rss(record: dict) -> float:
        return record["peak_rss_mib"]

    return {
        "reps": args.reps,
        "split": SPLIT,
        "batch_size": BATCH_SIZE,
        "training_steps": args.steps,
        "first_batch": {
            "xp predict RUN / pipeline": paired(reps, "xp_predict", "pipeline", first_batch),
            "xp predict FOLDER / pipeline": paired(reps, "xp_predict_folder", "pipeline", first_batch),
        },
        "wall": {
            "xp predict RUN / pipeline": paired(reps, "xp_predict", "pipeline", wall),
            "xp predict FOLDER / pipeline": paired(reps, "xp_predict_folder", "pipeline", wall),
        },
        "peak_rss": {"xp predict RUN / pipeline": paired(reps, "xp_predict", "pipeline", rss)},
        "agreement": agreement(reps[-1]),
        "runs": reps,
    }


def train(bench: Any, length: Length) -> TrainedModel:
    """The model the variants predict with: a short `xp run` of the course's loop that saves it.
    It runs in a folder of its own, where MLflow keeps the store's artifacts (the logged model)."""
    folder = bench.work / "predict-model"
    (folder / "mlruns").mkdir(parents=True)
    store = f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}"
    variant = dataclasses.replace(
        XP_LOOP, name="predict_model", xp_settings=("runner.predict=false", "runner.save_model=true")
    )
    argv = variant.argv(
        checkpoint=bench.checkpoint,
        data=bench.data,
        length=length,
        store=store,
        metrics_out=folder / "unused",
        scratch=folder,
    )
    print(f"training the model: xp run {XP_LOOP.target}, {length.max_steps} steps", file=sys.stderr)
    timed_run([sys.executable, *argv], folder / "train.log", "xp run (the model to predict with)", cwd=folder)
    [saved] = sorted((folder / "outputs").glob("*/model"))
    return TrainedModel(store, saved.parent.name, saved)


def agreement(repetition: dict) -> dict:
    """Rows where `xp predict` and the pipeline give the same label, and the largest score difference."""
    import pandas as pd

    piped = pd.read_csv(repetition["pipeline"]["output"])
    found = {}
    for name in ("xp_predict", "xp_predict_folder"):
        predicted = pd.read_csv(repetition[name]["output"])
        found[name] = {
            "rows": len(predicted),
            "same_label": int((predicted["label"] == piped["predicted_label"]).sum()),
            "max_score_difference": float((predicted["score"] - piped["score"]).abs().max()),
        }
    return found

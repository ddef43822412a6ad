"""Benchmarks: xp against the course's hand-written recipe, side by side, in one run.

The suites train on the full GLUE MRPC, found only through XP_DATA (the folder holding glue/mrpc;
on the project's machines `export XP_DATA=../shared/data`) or `--data MRPC_FOLDER`; without it a
suite stops at once with one line saying so (exit status 2). `--smoke` runs on the slice the tests
ship, tests/data/mrpc, unless --data names another folder.

    export XP_DATA=../shared/data
    python bench/run.py speed      # time per step, tracking overhead, time to first step, peak memory
    python bench/run.py first_step --reps 12  # time to the first optimizer step alone, many repetitions
    python bench/run.py startup    # tokenization on a second run; `xp --help`, `xp plugins`, `xp validate`
    python bench/run.py accuracy   # 3 epochs: accuracy/F1 of every variant, length grouping included
    python bench/run.py grouping   # time per epoch with and without length grouping, alternated
    python bench/run.py padding    # share of pad tokens per batch, with and without length grouping
    python bench/run.py profile    # where one xp training step spends its time (torch.profiler)
    python bench/run.py pruning    # one MRPC `xp sweep`, pruner "none" and "median": compute saved, best F1
    python bench/run.py scaleout   # N experiments local vs --executor ray; 1 vs 2 training processes
    python bench/run.py predict    # `xp predict` vs a `pipeline(...)` script: time to the first batch, wall time
    python bench/run.py ner        # token classification vs the course's chapter 7 loop: time per step, F1
    python bench/run.py ner_accuracy  # 3 epochs of experiments/conll2003_ner.toml: entity F1, validation and test
    python bench/run.py qa         # question answering vs the course's chapter 7 loop: time per step, EM and F1
    python bench/run.py qa_accuracy   # 3 epochs of experiments/squad_qa.toml on the SQuAD 2.0 sample: EM and F1
    python bench/run.py lora       # a LoRA adapter vs full fine-tuning, 3 epochs: weights trained, time, memory, F1
    python bench/run.py summarization  # seq2seq on SciTLDR vs the course's chapter 7 loop: time per step, ROUGE
    python bench/run.py summarization_accuracy  # 3 epochs of experiments/scitldr_summarization.toml: ROUGE
    python bench/run.py all --smoke --checkpoint DIR   # every suite, tiny and short, on the slice: CI's check

Each suite writes `bench/results/<suite>.json` (or `--results DIR`); `python bench/report.py`
turns them into the tables of BENCHMARKS.md. Every figure is a ratio of two variants run
next to each other in the same repetition; the median over repetitions is reported.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from launch import OFFLINE, timed_run
from lora import suite_lora
from ner import suite_ner, suite_ner_accuracy
from predicting import suite_predict
from pruning import suite_pruning
from qa import suite_qa, suite_qa_accuracy
from ratios import paired
from scaleout import suite_scaleout
from summarization import suite_summarization, suite_summarization_accuracy
from variants import (
    HAND_LOOP,
    HAND_TRAINER,
    ROOT,
    XP_ACCELERATE,
    XP_LOG_EVERY_STEP,
    XP_LOOP,
    XP_LOOP_GROUPED,
    XP_LOOP_SAME_KERNEL,
    XP_TRACKING_OFF,
    XP_TRAINER,
    Length,
    Variant,
    mrpc_data,
    packaged_minilm,
)

PROBE = Path(__file__).resolve().parent / "probe.py"


class Bench:
    """Runs variants as fresh processes under the probe and keeps their records."""

    def __init__(self, args: argparse.Namespace):
        self.checkpoint = Path(args.checkpoint) if args.checkpoint else packaged_minilm()
        self.data = Path(args.data) if args.data else None  # MRPC; the ner suites find their own
        self.work = Path(tempfile.mkdtemp(prefix="xp-bench-"))
        self.store = f"sqlite:///{self.work / 'mlruns' / 'mlflow.db'}"
        (self.work / "mlruns").mkdir()
        self.verbose = args.verbose

    def run(
        self, variant: Variant, length: Length, env: dict[str, str] | None = None, data: Path | None = None
    ) -> dict:
        """One fresh process of `variant` on `data` (default: MRPC); the probe's record plus the
        run's accuracy and F1 (and test F1, where the run scores a test split)."""
        tag = f"{variant.name}-{time.monotonic_ns()}"
        metrics_path = self.work / f"{tag}.metrics.json"
        argv = variant.argv(
            checkpoint=self.checkpoint,
            data=data or self.data,
            length=length,
            store=self.store,
            metrics_out=metrics_path,
            scratch=self.work / tag,
        )
        record = self.probed(variant.name, argv, env, tag)
        record.update(self.final_metrics(variant, metrics_path))
        if self.verbose:
            print(f"  {variant.name}: {summary_line(record)}", file=sys.stderr)
        return record

    def probed(self, name: str, argv: list[str], env: dict[str, str] | None = None, tag: str | None = None) -> dict:
        """`python bench/probe.py RECORD ARGV` as a fresh process (files named after `tag`), timed:
        the probe's record and the wall seconds from launch to exit."""
        tag = tag or f"{name}-{time.monotonic_ns()}"
        record_path = self.work / f"{tag}.probe.json"
        command = [sys.executable, str(PROBE), str(record_path), *argv]
        launched = {**(env or {}), "BENCH_LAUNCHED_AT": repr(time.time())}
        wall = timed_run(command, self.work / f"{tag}.log", name, launched)
        record = json.loads(record_path.read_text())
        record["wall_seconds"] = wall
        return record

    def final_metrics(self, variant: Variant, metrics_path: Path) -> dict:
        """The validation scores the variant names (accuracy and F1; exact match and F1): the
        scripts write them, xp runs have them in MLflow."""
        if variant.kind == "script":
            metrics = json.loads(metrics_path.read_text())
            test = {"test_f1": metrics["test_f1"]} if "test_f1" in metrics else {}
            return {name: metrics[f"eval_{name}"] for name in variant.scores} | test
        if "tracking.enabled=false" in variant.xp_settings:
            return {}
        from mlflow import MlflowClient

        client = MlflowClient(self.store)
        experiment = client.get_experiment_by_name(f"bench-{variant.name}")
        run = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=1)[0]
        test = {"test_f1": run.data.metrics["test/f1"]} if "test/f1" in run.data.metrics else {}
        return {name: run.data.metrics[f"eval/{name}"] for name in variant.scores} | test  # tracker.metric_names


def summary_line(record: dict) -> str:
    first = record.get("launch_to_first_step")
    return (
        (f"{record['steps']} steps, first step at {first:.2f}s, " if first else "")
        + f"map {record['map_seconds']:.3f}s, peak RSS {record['peak_rss_mib']:.0f} MiB, "
        + f"wall {record['wall_seconds']:.1f}s"
    )


def seconds_per_step(record: dict, warmup: int) -> float:
    """Mean time per optimizer step after `warmup` steps (start-up effects and caches settle)."""
    times = record["step_times"]
    return (times[-1] - times[warmup - 1]) / (len(times) - warmup)


def epoch_seconds(record: dict, steps_per_epoch: int) -> list[float]:
    """Training time of each epoch: its step-to-step gaps, so an evaluation between epochs is not counted."""
    gaps = record["step_gaps"]  # gap i: from step i to step i+1 (0-based)
    epochs = []
    for start in range(0, len(gaps) + 1, steps_per_epoch):
        inside = gaps[start : start + steps_per_epoch - 1]
        if inside:
            epochs.append(sum(inside) * steps_per_epoch / len(inside))  # the first step of the epoch at the mean
    return epochs


def without_test_predictions(variant: Variant) -> Variant:
    """Timed runs skip xp's MRPC test-split predictions: they come after training, and the
    scripts make none."""
    if variant.kind != "xp":
        return variant
    return dataclasses.replace(variant, xp_settings=(*variant.xp_settings, "runner.predict=false"))


def suite_speed(bench: Bench, args: argparse.Namespace) -> dict:
    variants = [
        without_test_predictions(v)
        for v in (
            HAND_LOOP,
            XP_LOOP,
            XP_LOOP_SAME_KERNEL,
            XP_ACCELERATE,
            HAND_TRAINER,
            XP_TRAINER,
            XP_LOG_EVERY_STEP,
            XP_TRACKING_OFF,
        )
    ]
    length = Length(max_steps=args.steps)
    if not args.smoke:
        print("warm-up: one run of each variant (datasets cache, MLflow store, page cache)", file=sys.stderr)
        for variant in variants:
            bench.run(variant, Length(max_steps=1))
    reps = []
    for rep in range(args.reps):
        # Alternate the order so no variant always runs first or last (thermal, page cache).
        order = variants if rep % 2 == 0 else variants[::-1]
        print(f"repetition {rep + 1}/{args.reps}", file=sys.stderr)
        reps.append({variant.name: bench.run(variant, length) for variant in order})
    per_step = lambda record: seconds_per_step(record, args.warmup)  # noqa: E731
    return {
        "steps": args.steps,
        "warmup": args.warmup,
        "reps": args.reps,
        "step_time": {
            "xp_loop / hand_loop": paired(reps, "xp_loop", "hand_loop", per_step),
            "xp_loop, same AdamW kernel / hand_loop": paired(reps, "xp_loop_same_kernel", "hand_loop", per_step),
            "xp_trainer / hand_trainer": paired(reps, "xp_trainer", "hand_trainer", per_step),
            "xp_accelerate / hand_loop": paired(reps, "xp_accelerate", "hand_loop", per_step),
            "tracking every step / tracking off": paired(
                reps, "xp_loop_log_every_step", "xp_loop_tracking_off", per_step
            ),
        },
        "first_step": first_step_ratios(reps),
        "wall": {
            "xp_loop / hand_loop": paired(reps, "xp_loop", "hand_loop", lambda r: r["wall_seconds"]),
        },
        "peak_rss": {
            "xp_loop / hand_loop": paired(reps, "xp_loop", "hand_loop", lambda r: r["peak_rss_mib"]),
            "xp_trainer / hand_trainer": paired(reps, "xp_trainer", "hand_trainer", lambda r: r["peak_rss_mib"]),
            "xp_loop, tracking off / hand_loop": paired(
                reps, "xp_loop_tracking_off", "hand_loop", lambda r: r["peak_rss_mib"]
            ),
        },
        "runs": reps,
    }


def suite_first_step(bench: Bench, args: argparse.Namespace) -> dict:
    """Time from launch to the first optimizer step alone, from 2-step runs: cheap enough for the
    many repetitions its noise needs (the speed suite's 70-step runs give it a few)."""
    variants = [without_test_predictions(v) for v in (HAND_LOOP, XP_LOOP, XP_TRACKING_OFF, HAND_TRAINER, XP_TRAINER)]
    if not args.smoke:
        for variant in variants:  # datasets cache, MLflow store, page cache
            bench.run(variant, Length(max_steps=1))
    reps = []
    for rep in range(args.reps):
        order = variants if rep % 2 == 0 else variants[::-1]
        print(f"repetition {rep + 1}/{args.reps}", file=sys.stderr)
        reps.append({variant.name: bench.run(variant, Length(max_steps=2)) for variant in order})

    def wall(record: dict) -> float:
        return record["wall_seconds"]

    return {
        "reps": args.reps,
        "first_step": first_step_ratios(reps),
        # the whole short run, launch to exit: start-up, 2 steps, evaluation, the run's end
        "wall": {
            "xp_loop / hand_loop": paired(reps, "xp_loop", "hand_loop", wall),
            "xp_trainer / hand_trainer": paired(reps, "xp_trainer", "hand_trainer", wall),
        },
        "runs": reps,
    }


def first_step_ratios(reps: list[dict]) -> dict:
    def first_step(record: dict) -> float:
        return record["launch_to_first_step"]

    return {
        "xp_loop / hand_loop": paired(reps, "xp_loop", "hand_loop", first_step),
        "xp_trainer / hand_trainer": paired(reps, "xp_trainer", "hand_trainer", first_step),
        "xp_loop, tracking off / hand_loop": paired(reps, "xp_loop_tracking_off", "hand_loop", first_step),
    }


def suite_startup(bench: Bench, args: argparse.Namespace) -> dict:
    reps = []
    for rep in range(args.reps):
        print(f"repetition {rep + 1}/{args.reps}", file=sys.stderr)
        runs = {}
        for variant in map(without_test_predictions, (XP_LOOP, HAND_LOOP)):
            cache = Path(tempfile.mkdtemp(prefix="datasets-cache-", dir=bench.work))  # cold: nothing tokenized
            env = {"HF_DATASETS_CACHE": str(cache)}
            runs[f"{variant.name}_first"] = bench.run(variant, Length(max_steps=1), env)
            runs[f"{variant.name}_second"] = bench.run(variant, Length(max_steps=1), env)
            shutil.rmtree(cache)
        reps.append(runs)
    tokenize = lambda record: record["map_seconds"]  # noqa: E731
    cli = {}
    commands = {
        "xp --help": ["--help"],
        "xp plugins": ["plugins"],
        "xp validate experiments/*.toml": ["validate", *shipped_experiments()],
    }
    xp = shutil.which("xp") or "xp"
    for label, argv in [("python -c pass (interpreter start-up)", None), *commands.items()]:
        command = [sys.executable, "-c", "pass"] if argv is None else [xp, *argv]
        walls = []
        for _ in range(max(args.reps, 3)):
            started = time.perf_counter()
            subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            walls.append(time.perf_counter() - started)
        cli[label] = {"median_seconds": statistics.median(walls), "seconds": walls}
    return {
        "reps": args.reps,
        "tracking_start_profile": tracking_start_profile(bench),
        "tokenization": {
            "xp second run / first run": paired(reps, "xp_loop_second", "xp_loop_first", tokenize),
            "hand_loop second run / first run": paired(reps, "hand_loop_second", "hand_loop_first", tokenize),
        },
        "cli": cli,
        "runs": reps,
    }


def shipped_experiments() -> list[str]:
    """experiments/*.toml, relative to the repository; less those reading full data sets beside
    the checkout (../shared/data) where a clone has none: validation would rightly refuse them."""
    shared = (ROOT.parent / "shared").is_dir()
    return sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / "experiments").glob("*.toml")
        if shared or "../shared/" not in path.read_text(encoding="utf-8")
    )


# What tracking costs the training process before its first step, by function (cProfile
# cumulative time). MLflow itself runs in the tracking process: its import should not show here.
TRACKING_START = {
    ("mlflow/__init__.py", "<module>"): "import mlflow (in the training process)",
    ("tracker/tracking/channel.py", "__init__"): "start the tracking process",
    ("tracker/provenance.py", "git_state"): "read the git state",
    ("tracker/tracking/run.py", "_log_start"): "params, tags, config, environment and dataset inputs, as records",
    ("tracker/dataset_inputs.py", "describe_inputs"): "of which: describe the dataset inputs (row digests)",
    ("tracker/tracking/run.py", "_run"): "all of tracking in the training process, start to end",
}


def tracking_start_profile(bench: Bench) -> dict:
    """cProfile one short tracked `xp run`: the seconds each part of the MLflow start takes."""
    import pstats

    argv = without_test_predictions(XP_LOOP).argv(
        checkpoint=bench.checkpoint,
        data=bench.data,
        length=Length(max_steps=1),
        store=bench.store,
        metrics_out=bench.work / "unused",
        scratch=bench.work / "cprofile",
    )
    output = bench.work / "tracking-start.prof"
    subprocess.run(
        [sys.executable, "-m", "cProfile", "-o", str(output), *argv],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **OFFLINE},
    )
    found = {}
    for (filename, _, function), (_, _, _, cumulative, _) in pstats.Stats(str(output)).stats.items():
        for (suffix, name), label in TRACKING_START.items():
            if function == name and filename.replace("\\", "/").endswith(suffix):
                found[label] = found.get(label, 0.0) + cumulative
    return {label: found.get(label) for label in TRACKING_START.values()}


def suite_accuracy(bench: Bench, args: argparse.Namespace) -> dict:
    # The loop with and without length grouping run back to back: their epoch times are compared.
    variants = [XP_LOOP, XP_LOOP_GROUPED, HAND_LOOP, XP_TRAINER, HAND_TRAINER]
    length = Length(max_steps=args.steps, epochs=args.epochs) if args.smoke else Length(epochs=args.epochs)
    runs = {}
    for variant in variants:
        print(f"{variant.name}: {args.epochs} epochs", file=sys.stderr)
        runs[variant.name] = bench.run(variant, length)
    steps_per_epoch = -(-args.train_rows // 8) if not args.smoke else args.steps
    epochs = {name: epoch_seconds(record, steps_per_epoch) for name, record in runs.items()}
    scores = {name: {"accuracy": record["accuracy"], "f1": record["f1"]} for name, record in runs.items()}
    reference = scores["hand_loop"]
    return {
        "epochs": args.epochs,
        "scores": scores,
        "points_from_hand_loop": {
            name: {"accuracy": 100 * (s["accuracy"] - reference["accuracy"]), "f1": 100 * (s["f1"] - reference["f1"])}
            for name, s in scores.items()
        },
        "epoch_seconds": epochs,
        "grouped_speedup_per_epoch": {
            "ratios": [a / b for a, b in zip(epochs["xp_loop"], epochs["xp_loop_grouped"], strict=True)],
            "median": statistics.median(
                a / b for a, b in zip(epochs["xp_loop"], epochs["xp_loop_grouped"], strict=True)
            ),
        },
        "runs": runs,
    }


def suite_grouping(bench: Bench, args: argparse.Namespace) -> dict:
    """Whole epochs of the `loop` runner, shuffled and length-grouped, alternated: time per epoch."""
    variants = [without_test_predictions(v) for v in (XP_LOOP, XP_LOOP_GROUPED)]
    length = Length(max_steps=args.steps, epochs=1) if args.smoke else Length(epochs=1)
    steps_per_epoch = args.steps if args.smoke else -(-args.train_rows // 8)
    reps = []
    for rep in range(args.reps):
        print(f"repetition {rep + 1}/{args.reps}", file=sys.stderr)
        order = variants if rep % 2 == 0 else variants[::-1]
        reps.append({variant.name: bench.run(variant, length) for variant in order})
    epoch = lambda record: epoch_seconds(record, steps_per_epoch)[0]  # noqa: E731
    return {
        "reps": args.reps,
        "epoch_time": {"shuffled / grouped": paired(reps, "xp_loop", "xp_loop_grouped", epoch)},
        "runs": reps,
    }


def suite_padding(bench: Bench, args: argparse.Namespace) -> dict:
    """Pad tokens / all tokens over one epoch of xp's own training loaders, grouped or not."""
    from datasets import load_dataset
    from transformers import AutoTokenizer, DataCollatorWithPadding

    from xp_plugins.runner.training_loop import make_loader

    tokenizer = AutoTokenizer.from_pretrained(bench.checkpoint)
    train = load_dataset(str(bench.data), split="train")
    encoded = train.map(
        lambda rows: tokenizer(rows["sentence1"], rows["sentence2"], truncation=True),
        batched=True,
        remove_columns=train.column_names,
    )
    encoded.set_format("torch")
    collator = DataCollatorWithPadding(tokenizer)
    result = {}
    for grouped in (False, True):
        loader = make_loader(encoded, 8, collator, shuffle=True, seed=42, group_by_length=grouped)
        pad = total = 0
        shares = []
        for batch in loader:
            mask = batch["attention_mask"]
            pad += int((mask == 0).sum())
            total += mask.numel()
            shares.append(float((mask == 0).float().mean()))
        result["grouped" if grouped else "shuffled"] = {
            "pad_fraction": pad / total,
            "mean_pad_share_per_batch": statistics.mean(shares),
            "tokens_per_epoch": total,
            "batches": len(shares),
        }
    result["token_ratio"] = result["shuffled"]["tokens_per_epoch"] / result["grouped"]["tokens_per_epoch"]
    return result


def suite_profile(bench: Bench, args: argparse.Namespace) -> dict:
    """torch.profiler over an xp `loop` run, in this process: the step's phases by their labels."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from torch.profiler import ProfilerActivity, profile

    import tracker

    overrides = [
        f"dataset.path={bench.data}",
        "dataset.name=default",
        f"model.checkpoint={bench.checkpoint}",
        f"runner.max_steps={args.steps}",
        "runner.progress_bar=false",
        f"tracking.uri={bench.store}",
        "runner.predict=false",
        f"experiment.output_dir={bench.work / 'outputs'}",
    ]
    experiment = tracker.load(ROOT / "experiments" / "mrpc_loop.toml", overrides)
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        tracker.run(experiment)
    totals: dict[str, float] = {}
    for event in profiler.key_averages():
        label = PHASES.get(event.key)
        if label:
            totals[label] = totals.get(label, 0.0) + event.cpu_time_total / 1e6
    steps = args.steps
    step_total = totals.pop("step", 0.0)  # everything between two fetches of a batch
    phases = {"data loading and collation": totals.get("data loading and collation", 0.0) / steps}
    inside = ["forward", "backward", "optimizer (clip, step, schedule, zero_grad)", "logging"]
    phases.update({name: totals.get(name, 0.0) / steps for name in inside})
    phases["other (xp's own bookkeeping: loss window, progress bar)"] = (
        step_total - sum(totals.get(name, 0.0) for name in inside)
    ) / steps
    return {
        "steps": steps,
        "seconds_per_step": phases,
        "top_ops": profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=25),
    }


# The loop's record_function labels (plugins/runner/training_loop.py).
PHASES = {
    "xp.data": "data loading and collation",
    "xp.step": "step",
    "xp.forward": "forward",
    "xp.backward": "backward",
    "xp.optimizer": "optimizer (clip, step, schedule, zero_grad)",
    "xp.logging": "logging",
}

SUITES = {
    "speed": suite_speed,
    "first_step": suite_first_step,
    "startup": suite_startup,
    "accuracy": suite_accuracy,
    "grouping": suite_grouping,
    "padding": suite_padding,
    "profile": suite_profile,
    "pruning": suite_pruning,
    "scaleout": suite_scaleout,
    "predict": suite_predict,
    "ner": suite_ner,
    "ner_accuracy": suite_ner_accuracy,
    "qa": suite_qa,
    "qa_accuracy": suite_qa_accuracy,
    "lora": suite_lora,
    "summarization": suite_summarization,
    "summarization_accuracy": suite_summarization_accuracy,
}
# The suites that train on MRPC; the others find their data themselves (bench/variants.py).
MRPC_FREE = ("ner", "ner_accuracy", "qa", "qa_accuracy")


def machine() -> dict:
    import torch

    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("suite", choices=[*SUITES, "all"])
    parser.add_argument("--checkpoint", help="model folder (default: the packaged all-MiniLM-L6-v2)")
    parser.add_argument(
        "--data",
        help="GLUE MRPC in hub layout, a parquet file per split (default: $XP_DATA/glue/mrpc; "
        "with --smoke: the tests' slice, tests/data/mrpc)",
    )
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--steps", type=int, default=70, help="optimizer steps of each timed run")
    parser.add_argument("--warmup", type=int, default=10, help="steps left out of the time per step")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-rows", type=int, default=3668, help="MRPC's training rows")
    parser.add_argument("--smoke", action="store_true", help="a few steps, one repetition: the scripts still work")
    parser.add_argument("--results", default=str(ROOT / "bench" / "results"))
    parser.add_argument("--verbose", "-v", action="store_true")
    args = parser.parse_args()
    if args.suite not in MRPC_FREE:  # or one line saying where it looked, and exit 2
        args.data = str(mrpc_data(args.data, smoke=args.smoke))
    if args.smoke:
        args.reps, args.steps, args.warmup, args.epochs = 1, 3, 1, 1
    bench = Bench(args)
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    try:
        for name in SUITES if args.suite == "all" else [args.suite]:
            print(f"== {name}", file=sys.stderr)
            started = time.perf_counter()
            record = {
                "suite": name,
                "machine": machine(),
                "checkpoint": str(bench.checkpoint),
                "command": " ".join(["python", "bench/run.py", *sys.argv[1:]]),
                **SUITES[name](bench, args),
            }
            record["suite_seconds"] = time.perf_counter() - started
            (results / f"{name}.json").write_text(json.dumps(record, indent=1))
            print(f"   {results / f'{name}.json'} ({record['suite_seconds']:.0f}s)", file=sys.stderr)
    finally:
        shutil.rmtree(bench.work, ignore_errors=True)


if __name__ == "__main__":
    main()

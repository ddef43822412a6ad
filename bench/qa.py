"""The `qa` and `qa_accuracy` suites: xp's extractive question answering against the course's
chapter 7 recipe written by hand (bench/reference/course_qa.py), on the SQuAD 2.0 sample.

Both read the same train.json and dev.json (variants.squad_data: every fifth context held out).

`qa`: in every repetition, each variant trains `--steps` optimizer steps as a fresh process under
bench/probe.py, the order reversed every other repetition, then answers the validation questions:
- `hand_qa`: the course's loop (windows of 384 tokens by 128, padded to 384, torch's AdamW kernel,
  no clipping, linear schedule, batch 8, the example's rate 1e-4);
- `xp_qa`: `xp run experiments/squad_qa.toml` pointed at the same files, the same recipe on the loop
  runner, tracked to MLflow, with xp's default fused AdamW kernel;
- `xp_qa_same_kernel`: the same with `optimizer.fused = false`, the script's kernel.
Figures, xp / hand per repetition: time per step after `--warmup` steps, time from launch to the
first optimizer step, peak resident memory; and the exact match and F1 each reached (the same
seed gives the same batches and the same initial head: with the same kernel, the same scores).

`qa_accuracy`: one `xp run` of the whole recipe, `--epochs` epochs, and the exact match and F1 it
reaches on the validation questions.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

from ratios import paired
from variants import HAND_QA, XP_QA, XP_QA_SAME_KERNEL, Length, Variant, squad_data

NO_TEST_PREDICTIONS = ("runner.predict=false",)
# A --smoke run's tiny model has 128 positions: windows of 128 tokens sharing 32, on both sides.
SMOKE_WINDOWS = {
    "script": ("--max-length", "128", "--stride", "32"),
    "xp": ("tokenizer.max_length=128", "collator.max_length=128", "task.doc_stride=32"),
}


def sized(variant: Variant, smoke: bool) -> Variant:
    """The variant as the run needs it: windows a --smoke run's tiny model takes."""
    if not smoke:
        return variant
    if variant.kind == "script":
        return dataclasses.replace(variant, script_args=(*variant.script_args, *SMOKE_WINDOWS["script"]))
    return dataclasses.replace(variant, xp_settings=(*variant.xp_settings, *SMOKE_WINDOWS["xp"]))


def suite_qa(bench: Any, args: Any) -> dict:
    data = squad_data(bench.work, smoke=args.smoke)
    variants = [
        sized(HAND_QA, args.smoke),
        *(
            sized(dataclasses.replace(v, xp_settings=(*v.xp_settings, *NO_TEST_PREDICTIONS)), args.smoke)
            for v in (XP_QA, XP_QA_SAME_KERNEL)
        ),
    ]
    reps = []
    for rep in range(args.reps):
        order = variants if rep % 2 == 0 else variants[::-1]
        print(f"repetition {rep + 1}/{args.reps}", file=sys.stderr)
        reps.append({variant.name: bench.run(variant, Length(max_steps=args.steps), data=data) for variant in order})

    def per_step(record: dict) -> float:
        times = record["step_times"]
        return (times[-1] - times[args.warmup - 1]) / (len(times) - args.warmup)

    return {
        "data": str(data),
        "steps": args.steps,
        "warmup": args.warmup,
        "reps": args.reps,
        "step_time": {
            "xp_qa / hand_qa": paired(reps, "xp_qa", "hand_qa", per_step),
            "xp_qa, same AdamW kernel / hand_qa": paired(reps, "xp_qa_same_kernel", "hand_qa", per_step),
        },
        "first_step": {
            "xp_qa / hand_qa": paired(reps, "xp_qa", "hand_qa", lambda r: r["launch_to_first_step"]),
        },
        "peak_rss": {
            "xp_qa / hand_qa": paired(reps, "xp_qa", "hand_qa", lambda r: r["peak_rss_mib"]),
        },
        "scores": [
            {name: {"exact_match": run["exact_match"], "f1": run["f1"]} for name, run in rep.items()} for rep in reps
        ],
        "runs": reps,
    }


def suite_qa_accuracy(bench: Any, args: Any) -> dict:
    data = squad_data(bench.work, smoke=args.smoke)
    record = bench.run(sized(XP_QA, args.smoke), Length(epochs=args.epochs), data=data)
    return {
        "data": str(data),
        "epochs": args.epochs,
        "steps": record["steps"],
        "scores": {"exact_match": record["exact_match"], "f1": record["f1"]},
        "wall_seconds": record["wall_seconds"],
        "run": record,
    }

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
from typing import Any

from course_comparison import against_the_course
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
    xp, same_kernel = (
        sized(dataclasses.replace(v, xp_settings=(*v.xp_settings, *NO_TEST_PREDICTIONS)), args.smoke)
        for v in (XP_QA, XP_QA_SAME_KERNEL)
    )
    data = squad_data(bench.work, smoke=args.smoke)
    record = against_the_course(bench, args, data, sized(HAND_QA, args.smoke), xp, same_kernel)
    scores = [
        {name: {"exact_match": run["exact_match"], "f1": run["f1"]} for name, run in rep.items()}
        for rep in record["runs"]
    ]
    return record | {"scores": scores}


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

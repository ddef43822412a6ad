"""One task's `xp run` against the course's recipe for it written by hand, as the ner, qa and
summarization suites measure it: in every repetition each variant trains `--steps` optimizer
steps as a fresh process under bench/probe.py, the order reversed every other repetition; the
figures are xp's ratios to the script in the same repetition."""

from __future__ import annotations

import sys
from typing import Any

from ratios import paired
from variants import Length, Variant


def against_the_course(bench: Any, args: Any, data: Any, hand: Variant, xp: Variant, same_kernel: Variant) -> dict:
    """The runs of `hand` (the script), `xp` and `same_kernel` (xp with the script's AdamW kernel),
    and their ratios: time per step after `--warmup` steps, time from launch to the first step,
    peak resident memory. Each run's record holds the scores its variant names."""
    variants = [hand, xp, same_kernel]
    reps = []
    for rep in range(args.reps):
        order = variants if rep % 2 == 0 else variants[::-1]
        print(f"repetition {rep + 1}/{args.reps}", file=sys.stderr)
        reps.append({variant.name: bench.run(variant, Length(max_steps=args.steps), data=data) for variant in order})

    def per_step(record: dict) -> float:
        times = record["step_times"]
        return (times[-1] - times[args.warmup - 1]) / (len(times) - args.warmup)

    pair = f"{xp.name} / {hand.name}"
    return {
        "data": str(data),
        "steps": args.steps,
        "warmup": args.warmup,
        "reps": args.reps,
        "step_time": {
            pair: paired(reps, xp.name, hand.name, per_step),
            f"{xp.name}, same AdamW kernel / {hand.name}": paired(reps, same_kernel.name, hand.name, per_step),
        },
        "first_step": {pair: paired(reps, xp.name, hand.name, lambda r: r["launch_to_first_step"])},
        "peak_rss": {pair: paired(reps, xp.name, hand.name, lambda r: r["peak_rss_mib"])},
        "runs": reps,
    }

"""The `ner` and `ner_accuracy` suites: xp's token classification against the course's chapter 7
recipe written by hand (bench/reference/course_ner.py), on CoNLL-2003's column files.

`ner`: in every repetition, each variant trains `--steps` optimizer steps as a fresh process
under bench/probe.py, the order reversed every other repetition, then scores the validation file:
- `hand_ner`: the course's loop (torch's AdamW kernel, no clipping, linear schedule, batch 16);
- `xp_ner`: `xp run experiments/conll2003_ner.toml`, the same recipe on the loop runner, tracked to
  MLflow, with xp's default fused AdamW kernel;
- `xp_ner_same_kernel`: the same with `optimizer.fused = false`, the script's kernel.
Figures, xp / hand per repetition: time per step after `--warmup` steps, time from launch to the
first optimizer step, peak resident memory; and the entity F1 each reached (the same seed gives the
same batches and the same initial head: with the same kernel, the same F1).

`ner_accuracy`: one `xp run` of the whole recipe, `--epochs` epochs, and the entity F1 it reaches
on the validation and test files (the hand-written script is not run for as long: the short runs
show it trains the same).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from course_comparison import against_the_course
from variants import HAND_NER, XP_NER, XP_NER_SAME_KERNEL, Length, conll_data

# Timed runs score the validation file only: xp's test predictions come after training, and
# the script's test scores are skipped by reading only its validation F1.
NO_TEST_PREDICTIONS = ("runner.predict=false",)


def suite_ner(bench: Any, args: Any) -> dict:
    xp, same_kernel = (
        dataclasses.replace(v, xp_settings=(*v.xp_settings, *NO_TEST_PREDICTIONS)) for v in (XP_NER, XP_NER_SAME_KERNEL)
    )
    record = against_the_course(bench, args, conll_data(smoke=args.smoke), HAND_NER, xp, same_kernel)
    return record | {"entity_f1": [{name: run["f1"] for name, run in rep.items()} for rep in record["runs"]]}


def suite_ner_accuracy(bench: Any, args: Any) -> dict:
    data = conll_data(smoke=args.smoke)
    record = bench.run(XP_NER, Length(epochs=args.epochs), data=data)
    return {
        "data": str(data),
        "epochs": args.epochs,
        "steps": record["steps"],
        "entity_f1": {"validation": record["f1"], "test": record["test_f1"]},
        "word_accuracy": {"validation": record["accuracy"]},
        "wall_seconds": record["wall_seconds"],
        "run": record,
    }

"""The `lora` suite: a LoRA adapter against full fine-tuning, side by side in one run, on MRPC
with the packaged MiniLM, each at the learning rate it needs.

Both variants are `xp run experiments/mrpc_loop.toml` (the course's recipe: batch 8, linear
schedule, 3 epochs), tracked to MLflow, saving their model:
- `xp_full`: every weight trains, at the course's 5e-5;
- `xp_lora`: `[adapter] use = "lora"` (r = 8 on the attention projections; the head trains whole),
  at 1e-3, twenty times the full rate, as `experiments/quickstart_lora.toml` against the quickstart.
Figures: the parameters each trains (the run's `model.trainable_parameters`), time per optimizer
step after `--warmup` steps, peak resident memory, the size of the saved model (the adapter alone
against the whole model), and validation accuracy and F1 after `--epochs` epochs.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

from variants import XP_LOOP, Length

SAVED = ("runner.save_model=true", "runner.predict=false")
XP_FULL = dataclasses.replace(XP_LOOP, name="xp_full", xp_settings=SAVED)
XP_LORA = dataclasses.replace(XP_LOOP, name="xp_lora", xp_settings=(*SAVED, "adapter.use=lora", "optimizer.lr=1e-3"))


def suite_lora(bench: Any, args: Any) -> dict:
    length = Length(max_steps=args.steps, epochs=args.epochs) if args.smoke else Length(epochs=args.epochs)
    runs = {}
    for variant in (XP_FULL, XP_LORA):
        print(f"{variant.name}: {args.epochs} epochs", file=sys.stderr)
        record = bench.run(variant, length)
        record.update(_saved_model(bench, variant))
        runs[variant.name] = record

    def per_step(record: dict) -> float:
        times = record["step_times"]
        return (times[-1] - times[args.warmup - 1]) / (len(times) - args.warmup)

    full, lora = runs["xp_full"], runs["xp_lora"]
    return {
        "epochs": args.epochs,
        "warmup": args.warmup,
        "learning_rates": {"xp_full": 5e-5, "xp_lora": 1e-3},
        "variants": {
            name: {
                "parameters": record["parameters"],
                "trainable_parameters": record["trainable_parameters"],
                "seconds_per_step": per_step(record),
                "peak_rss_mib": record["peak_rss_mib"],
                "saved_model_bytes": record["saved_model_bytes"],
                "accuracy": record["accuracy"],
                "f1": record["f1"],
            }
            for name, record in runs.items()
        },
        "lora / full": {
            "trainable_parameters": lora["trainable_parameters"] / full["trainable_parameters"],
            "seconds_per_step": per_step(lora) / per_step(full),
            "peak_rss": lora["peak_rss_mib"] / full["peak_rss_mib"],
            "saved_model": lora["saved_model_bytes"] / full["saved_model_bytes"],
        },
        "runs": runs,
    }


def _saved_model(bench: Any, variant: Any) -> dict:
    """The run's parameter counts (its MLflow params) and the bytes of the weights it saved."""
    from mlflow import MlflowClient

    client = MlflowClient(bench.store)
    experiment = client.get_experiment_by_name(f"bench-{variant.name}")
    [run] = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=1)
    [model] = sorted(Path(bench.work).glob(f"{variant.name}-*/outputs/*/model"))[-1:]
    return {
        "parameters": int(run.data.params["model.parameters"]),
        "trainable_parameters": int(run.data.params["model.trainable_parameters"]),
        "saved_model_bytes": sum(path.stat().st_size for path in model.glob("*.safetensors")),
    }

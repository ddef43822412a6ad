"""The sections of an experiment file: which name a plugin, and the schema of the fixed ones.

The fixed sections are described the way plugins are, by a function's keyword-only
parameters, so one checker serves every section.
"""
from __future__ import annotations

from typing import Literal

# section name -> the plugin kind it names with `use = "..."`, in the order a run builds them
COMPONENT_SECTIONS = {
    "dataset": "dataset",
    "tokenizer": "tokenizer",
    "collator": "collator",
    "model": "model",
    "optimizer": "optimizer",
    "scheduler": "scheduler",
    "metrics": "metric",
    "runner": "runner",
}
# A metrics section names one or several metrics; options of each go in [metrics.<name>].
MULTI_COMPONENT_SECTIONS = {"metrics"}


def experiment_section(*, name: str | None = None, seed: int = 42, description: str = "",
                       tags: dict[str, str] | None = None, output_dir: str = "outputs") -> None:
    """What the experiment is: MLflow experiment name (default: the file's stem), seed, notes, tags,
    and the folder under which each run writes its model and predictions."""


def hardware_section(*, device: Literal["auto", "cpu", "cuda", "mps"] = "auto",
                     precision: Literal["fp32", "fp16", "bf16"] = "fp32",
                     cpu_threads: int | None = None) -> None:
    """Where to train: device ("auto" picks a GPU when there is one), numeric precision, CPU threads."""


def tracking_section(*, enabled: bool = True, uri: str | None = None, system_metrics: bool = True) -> None:
    """Where runs are logged: MLflow tracking URI (default: MLFLOW_TRACKING_URI, else the local store)."""


FIXED_SECTIONS = {
    "experiment": experiment_section,
    "hardware": hardware_section,
    "tracking": tracking_section,
}

SECTION_ORDER = ("experiment", *COMPONENT_SECTIONS, "hardware", "tracking")

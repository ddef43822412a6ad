"""The sections of an experiment file: which name a plugin, and the schema of the fixed ones.

The fixed sections are described the way plugins are, by a function's keyword-only
parameters, so one checker serves every section.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

from tracker.spec.declare import (
    AfterValidator,
    Annotated,
    Field,
    MetricName,
    Name,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveInt,
    Seed,
    experiment_rules,
    rules,
)
from tracker.spec.keys import SectionSpec, spec_of
from tracker.spec.paths import study_storage, tracking_uri, writable_folder

# section name -> the plugin kind it names with `use = "..."`, in the order a run builds them
COMPONENT_SECTIONS = {
    "task": "task",
    "dataset": "dataset",
    "tokenizer": "tokenizer",
    "collator": "collator",
    "model": "model",
    "adapter": "adapter",
    "optimizer": "optimizer",
    "scheduler": "scheduler",
    "metrics": "metric",
    "runner": "runner",
}
# Sections a file may leave out: they then mean the registry's default (Registry.default_task).
DEFAULTED_SECTIONS = {"task"}
# Sections a file may leave out, and then there is no such component: without [adapter], the
# whole model trains.
ABSENT_MEANS_NONE = {"adapter"}
# A metrics section names one or several metrics; options of each go in [metrics.<name>].
MULTI_COMPONENT_SECTIONS = {"metrics"}

# MLflow's own limits on experiment names and tag keys and values.
ExperimentName = Annotated[str, Field(min_length=1, max_length=500, description="MLflow experiment name")]
Tags = dict[Annotated[str, Field(min_length=1, max_length=250)], Annotated[str, Field(max_length=8000)]]


def experiment_section(
    *,
    name: ExperimentName | None = None,
    seed: Annotated[Seed, Field(description="seeds Python, NumPy and torch, data order and sampling")] = 42,
    description: Annotated[str, Field(description="notes shown on the MLflow run")] = "",
    tags: Annotated[Tags | None, Field(description="string tags for MLflow")] = None,
    output_dir: Annotated[
        Name,
        AfterValidator(writable_folder),
        Field(description="each run writes its model and predictions under <output_dir>/<run name>/"),
    ] = "outputs",
) -> None:
    """What the experiment is: MLflow experiment name (default: the file's stem), seed, notes, tags,
    and the folder under which each run writes its model and predictions."""


def _fp16_needs_a_gpu(options):
    if options["precision"] == "fp16" and options["device"] == "cpu":
        yield "precision", 'fp16 mixed precision needs a GPU; with device = "cpu" use precision = "bf16" or "fp32"'


@rules(_fp16_needs_a_gpu)
def hardware_section(
    *,
    device: Annotated[
        Literal["auto", "cpu", "cuda", "mps"], Field(description='"auto" picks a GPU when there is one')
    ] = "auto",
    precision: Annotated[
        Literal["fp32", "fp16", "bf16"], Field(description="numeric precision; fp16 needs a GPU")
    ] = "fp32",
    cpu_threads: Annotated[PositiveInt | None, Field(description="torch's intra-op CPU threads")] = None,
) -> None:
    """Where to train: device ("auto" picks a GPU when there is one), numeric precision, CPU threads."""


def _registering_needs_a_tracked_model(options, sections):
    if options["register_as"] is None:
        return
    if not options["enabled"]:
        yield "register_as", "registering a model needs tracking; set enabled = true or remove register_as"
    elif not sections["runner"].get("save_model"):
        yield "register_as", "registering a model needs one: set save_model = true in [runner]"


def _usable_in_model_uris(name: str) -> str:
    if set(name) & set("/:%"):
        raise ValueError(
            f'"{name}" cannot be a registered model name: "/", ":" and "%" would break models:/<name>/<version> URIs'
        )
    return name


RegisteredModelName = Annotated[
    str,
    Field(min_length=1, max_length=256, description="a Model Registry name; each run adds a version"),
    AfterValidator(_usable_in_model_uris),
]


@experiment_rules(_registering_needs_a_tracked_model)
def tracking_section(
    *,
    enabled: bool = True,
    uri: Annotated[
        str | None,
        AfterValidator(lambda uri: uri if uri is None else tracking_uri(uri)),
        Field(description="MLflow tracking URI; default: MLFLOW_TRACKING_URI, else sqlite:///mlruns/mlflow.db"),
    ] = None,
    system_metrics: Annotated[bool, Field(description="log CPU, memory and GPU use as system/* metrics")] = True,
    register_as: RegisteredModelName | None = None,
    wait_for_store: Annotated[
        NonNegativeFloat,
        Field(
            description="at the end of a run, seconds to wait for an unreachable store before leaving the rest "
            "of the run's records for `xp sync`"
        ),
    ] = 120.0,
) -> None:
    """Where runs are logged: MLflow tracking URI (default: MLFLOW_TRACKING_URI, else the local store),
    the Model Registry name under which each run's model is registered, and how long the end of a
    run waits for a store that is away."""


def _saving_at_evaluation_needs_evaluations(options, sections):
    if options["at_evaluation"] and sections["runner"].get("eval_strategy") == "no":
        yield "at_evaluation", 'the runner never evaluates (eval_strategy = "no"); set every_steps instead'


@experiment_rules(_saving_at_evaluation_needs_evaluations)
def checkpoint_section(
    *,
    every_steps: Annotated[PositiveInt | None, Field(description="save every this many optimizer steps")] = None,
    at_evaluation: Annotated[bool, Field(description="save after each evaluation")] = False,
    keep: Annotated[PositiveInt, Field(description="the newest checkpoints kept; older ones are deleted")] = 2,
) -> None:
    """Training checkpoints that `xp resume` continues from, for every runner: every N optimizer steps
    and/or after each evaluation, the newest `keep` kept (two by default, so a save cut short by a
    crash still leaves a whole one). None unless every_steps or at_evaluation is set."""


def diagnosis_section(
    *,
    min_evaluations: Annotated[
        PositiveInt, Field(description="fewer evaluations than this are not enough evidence for a verdict")
    ] = 3,
    min_train_logs: Annotated[
        PositiveInt, Field(description="fewer training-loss logs than this are not enough evidence either")
    ] = 5,
    overfit_rise: Annotated[
        NonNegativeFloat,
        Field(
            description="overfitting: validation loss this share above its best (0.1: 10%) while training loss falls"
        ),
    ] = 0.1,
    metric_drop: Annotated[
        NonNegativeFloat, Field(description="overfitting: a validation metric this much worse than its best (absolute)")
    ] = 0.02,
    flat_train_drop: Annotated[
        NonNegativeFloat, Field(description="underfitting: training loss fell by less than this share from its start")
    ] = 0.05,
    baseline_margin: Annotated[
        NonNegativeFloat, Field(description="underfitting: every metric within this of the trivial predictor's")
    ] = 0.02,
    spike_factor: Annotated[
        Annotated[float, Field(gt=1)],
        Field(description="unstable: a training loss this many times the median of the logs before it"),
    ] = 3.0,
    diverge_rise: Annotated[
        NonNegativeFloat,
        Field(description="unstable: training loss ending this share above where it started (0.1: 10%)"),
    ] = 0.1,
    single_class_share: Annotated[
        Annotated[float, Field(gt=0, le=1)],
        Field(description="not learning: one class predicted for at least this share of the validation rows"),
    ] = 0.99,
    constant_output_ratio: Annotated[
        NonNegativeFloat,
        Field(description="not learning (regression): outputs spread less than this times the labels' spread"),
    ] = 0.01,
) -> None:
    """The thresholds of the learning-curve diagnosis (tracker.diagnosis): how much evidence a
    verdict needs, and what counts as overfitting, underfitting, unstable and not learning."""


def _trials_unless_grid(options):
    if options["method"] != "grid" and options["trials"] is None:
        yield "trials", f'method = "{options["method"]}" needs the number of trials, e.g. trials = 20'


def _a_space(options):
    if not options["space"]:
        yield (
            "space",
            ('no keys to vary: add [sweep.space], e.g. "optimizer.lr" = { low = 1e-5, high = 1e-3, log = true }'),
        )


@rules(_trials_unless_grid, _a_space)
def sweep_section(
    *,
    method: Annotated[
        Literal["grid", "random", "tpe"],
        Field(description='"grid": every combination; "random": independent samples; "tpe": Optuna\'s TPE sampler'),
    ] = "tpe",
    trials: Annotated[
        PositiveInt | None,
        Field(description="trials of the study, those already run included; a grid runs every combination by default"),
    ] = None,
    seed: Annotated[Seed | None, Field(description="the sampler's seed; default: [experiment] seed")] = None,
    metric: Annotated[
        Name | None,
        MetricName(),
        Field(
            description="what the study optimizes, as metric_for_best (f1, eval_f1); default: [runner] metric_for_best"
        ),
    ] = None,
    direction: Annotated[
        Literal["maximize", "minimize"] | None, Field(description="default: minimize a loss, maximize anything else")
    ] = None,
    parallel: Annotated[PositiveInt, Field(description="trials at once on this machine, each its own process")] = 1,
    pruner: Annotated[
        Literal["none", "median", "hyperband"],
        Field(description="stop trials early whose evaluations fall behind the others"),
    ] = "none",
    pruner_startup_trials: Annotated[
        NonNegativeInt, Field(description="trials that run to the end before the median pruner prunes any")
    ] = 5,
    study: Annotated[
        Name | None,
        Field(description="the Optuna study's name; default: the file's name and a hash of the experiment and space"),
    ] = None,
    storage: Annotated[
        str | None,
        AfterValidator(lambda uri: uri if uri is None else study_storage(uri)),
        Field(
            description="where the Optuna study lives, an SQLAlchemy URL (postgresql://...); default: optuna.db "
            "next to a local MLflow store"
        ),
    ] = None,
    space: Annotated[
        dict[str, Any], Field(description='the keys to vary: "section.key" = [values] or { low, high, log, step }')
    ] = {},  # noqa: B006
) -> None:
    """A hyperparameter study for `xp sweep` (`xp run` ignores it): which keys vary and over what
    ([sweep.space]), how trials are chosen, what they optimize, how many run and how many at once."""


FIXED_SECTIONS = {
    "experiment": experiment_section,
    "hardware": hardware_section,
    "tracking": tracking_section,
    "checkpoint": checkpoint_section,
    "diagnosis": diagnosis_section,
    "sweep": sweep_section,
}
# Fixed sections that exist only when a file has them; they say how to run or read experiments,
# not what an experiment is, so they are not part of its config (nor of its hash, nor of its params).
OPTIONAL_SECTIONS = {"diagnosis", "sweep"}

SECTION_ORDER = ("experiment", *COMPONENT_SECTIONS, "hardware", "tracking", "checkpoint", "diagnosis", "sweep")


@functools.cache
def fixed_spec(section: str) -> SectionSpec:
    """A fixed section's keys and rules, read once from its function."""
    return spec_of(FIXED_SECTIONS[section])

"""The plugin API: everything a plugin may import from xp, in one module. What is here is
documented (docs/PLUGINS.md) and kept stable; anything else under `tracker` is private to xp and
may change without notice. xp's built-in plugins (`plugins/`) import from here only, as a third
party's do.

- hooks: `hookimpl`, and the hook specifications in `tracker.hookspecs`;
- declaring a section's keys and rules: the names of `tracker.spec.declare`;
- what components hand each other: `tracker.components` (TaskData, Parts, RunResult, ...), and
  `tracker.task` (Task and its answers, Outputs, Table, ...) with the defaults of the Task's
  optional parts (`outputs_per_row`, `decoded`, `evaluation_files`, `evaluation_samples`,
  `feature_columns`, `generation_options`, `prepare_tokenizer`);
- what the diagnosis reads from a runner: `Curves`, `PredictionStats`;
- helpers every runner or loader needs: `EarlyStopping`, `evaluation_name`, `better_lower`, `BuildError`,
  `did_you_mean`, `why_not_loaded`.
"""

from tracker.components import (
    Adapter,
    DataSource,
    Metric,
    Parts,
    Runner,
    RunResult,
    TaskData,
    TextEncoder,
)
from tracker.diagnosis.evidence import Curves, PredictionStats
from tracker.early_stopping import EarlyStopping
from tracker.errors import BuildError, did_you_mean
from tracker.hookspecs import hookimpl
from tracker.hub import why_not_loaded
from tracker.metric_names import better_lower, evaluation_name
from tracker.spec.declare import (
    AfterValidator,
    Annotated,
    Field,
    Fraction,
    MetricName,
    Name,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Ratio,
    RunsCode,
    Seed,
    data_rules,
    experiment_rules,
    outputs,
    rules,
    starter,
)
from tracker.task import (
    Baseline,
    Export,
    Head,
    Outputs,
    Proposal,
    Row,
    Starter,
    Table,
    Task,
    decoded,
    evaluation_files,
    evaluation_samples,
    feature_columns,
    generation_options,
    outputs_per_row,
    prepare_tokenizer,
)

__all__ = [
    "Adapter",
    "AfterValidator",
    "Annotated",
    "Baseline",
    "BuildError",
    "Curves",
    "DataSource",
    "EarlyStopping",
    "Export",
    "Field",
    "Fraction",
    "Head",
    "Metric",
    "MetricName",
    "Name",
    "NonNegativeFloat",
    "NonNegativeInt",
    "Outputs",
    "Parts",
    "PositiveFloat",
    "PositiveInt",
    "PredictionStats",
    "Proposal",
    "Ratio",
    "Row",
    "RunResult",
    "Runner",
    "RunsCode",
    "Seed",
    "Starter",
    "Table",
    "Task",
    "TaskData",
    "TextEncoder",
    "better_lower",
    "data_rules",
    "decoded",
    "did_you_mean",
    "evaluation_files",
    "evaluation_name",
    "evaluation_samples",
    "experiment_rules",
    "feature_columns",
    "generation_options",
    "hookimpl",
    "outputs",
    "outputs_per_row",
    "prepare_tokenizer",
    "rules",
    "starter",
    "why_not_loaded",
]

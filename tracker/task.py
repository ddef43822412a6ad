"""The task: what differs from one fine-tuning task to the next, as the core asks a task plugin for
it. The `Task` protocol, what it answers (`Head`, `Baseline`, `Export`, `Proposal`, `Starter`),
what runners hold of its predictions (`Outputs`, `Table`), and the functions through which the
core asks for its optional parts, each knowing the default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:  # heavy types, for readers and type checkers only
    from datasets import Dataset

    from tracker.components import TaskData
    from tracker.diagnosis.evidence import PredictionStats


@dataclass(frozen=True)
class Head:
    """The model a task trains, as the model plugin builds it: a transformers Auto class, by name
    (`AutoModelFor...`), and the config values the task sets on it (how many outputs, their
    names, the loss)."""

    auto_class: str
    config: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Baseline:
    """What a trivial predictor predicts for every validation row (the diagnosis scores it with
    the experiment's metrics), and what it predicts, in words: '"equivalent"'."""

    predictions: Any  # numpy, shaped as the task's predictions
    described: str
    # What they are scored against, shaped as the runners' references (numpy); None: the
    # validation split's `label` column as it is (one target per row).
    references: Any = None


@dataclass(frozen=True)
class Export:
    """How the model is saved as an MLflow model: the pipeline task, the signature (an
    mlflow.models.ModelSignature, as its dict), rows as the model takes them, and the pipeline's
    call options (MLflow's `model_config`: {"top_k": None, ...}).

    `served_by` "pipeline": a transformers-flavor model serving that pipeline. "xp": xp's own
    pyfunc model, predicting with the task's `predict` as `xp predict` does, for a task no
    transformers pipeline serves (question answering, since transformers 5); `pipeline_task`
    then only names the model's type."""

    pipeline_task: str
    signature: Mapping[str, Any]
    input_example: Any
    model_config: Mapping[str, Any] | None = None
    served_by: Literal["pipeline", "xp"] = "pipeline"


# One line of a section `xp init` writes: (key, value, comment); key "#" makes the value a
# commented-out line, a hint for a key left unset.
Row = tuple[str, Any, "str | None"]


@dataclass(frozen=True)
class Proposal:
    """What a task proposes for `xp init`, having seen the rows (`Task.propose`)."""

    text_columns: tuple[str, ...]  # the inputs
    columns: tuple[str, ...]  # every column a validation row needs: inputs and targets
    dataset: tuple[Row, ...]  # the [dataset] lines that name them
    test_labelled: bool  # the test split has targets to score
    inputs: str  # the inputs in a few words: "sentence1 + sentence2 (a sentence pair)"
    targets: str  # the targets in a few words: "label, 2 classes (no, yes)"
    metrics: tuple[Row, ...]  # the [metrics] section
    metric_tables: Mapping[str, tuple[str, tuple[Row, ...]]] = field(default_factory=dict)  # name -> (about, rows)
    model: str = "The pretrained model, with the head the task needs."  # the [model] section's comment
    model_use: str = "auto"  # the model plugin (`encoder_decoder`: a sequence-to-sequence model warm-started)
    checkpoint: str | None = None  # a checkpoint of the kind the task needs (a causal LM); None: xp init's default
    max_length: int | None = 128  # the [tokenizer] max_length written; None: the model's own limit
    task_options: tuple[Row, ...] = ()  # the [task] lines besides `use`: what the rows show it needs


@dataclass(frozen=True)
class Starter:
    """What a dataset plugin writes for `xp init` (its `@starter` function): its section, having
    read the rows and asked the task which columns to use."""

    use: str  # the dataset plugin's registered name
    about: str  # the section's first comment
    rows: tuple[Row, ...]
    tables: Mapping[str, tuple[str, tuple[Row, ...]]]  # subtables: name -> (about, rows)
    rows_summary: str  # "240 train, 60 validation"
    proposal: Proposal
    notes: tuple[str, ...] = ()
    # The task the rows are for, when the plugin reads data of one task only (CoNLL files: a tag
    # per word); written as [task]. None: the task `xp init` was given.
    task: str | None = None


class Task(Protocol):
    """A task plugin's result: everything that differs from one task to the next, asked by the
    dataset (targets), the model (head), the runners (predictions), the diagnosis, the export and
    `xp predict`. Immutable: `read_targets` and `of_model` hand back the task with its targets known.

    Optional parts, which the core asks for through a function that knows their default:
    `per_row` (`outputs_per_row`), `evaluation_files`, `feature_columns`, `generation`
    (`generation_options`), `prepare_tokenizer`, `decodes_with_labels` (`decoded`), `samples_of`
    (`evaluation_samples`), and `encoding_note`
    (tracker.recipe).
    """

    # Names of the target ids (classes, entity tags); None before the targets are read, and for
    # targets that have none (values, spans, text).
    label_names: tuple[str, ...] | None
    # What a collator pads `labels` with: None when each row has one target (nothing to pad); a
    # number no loss counts (-100) when a row's targets are a sequence (a tag per token).
    label_padding: int | None

    def read_targets(
        self,
        splits: dict[str, Dataset],
        columns: Sequence[str],
        names_of_ids: Sequence[str] | None,
        *,
        text_columns: Sequence[str],
    ) -> tuple[Task, dict[str, Dataset]]:
        """The splits with their targets (read from `columns`, as the dataset names them) encoded
        in a `label` column, and the task that knows them; a BuildError on the dataset key to fix
        (`label_column`, `label_names`). Reads every row, before sampling; a test split without
        the columns gets targets marked as hidden. `text_columns` are the inputs the targets are
        about (question answering finds its answers in the context)."""

    def check_targets(self, split: Dataset, split_name: str, columns: Sequence[str]) -> None:
        """A BuildError when a training or validation row has no usable target."""

    def is_labelled(self, split: Dataset) -> bool:
        """Whether a test split has targets to score (or only rows to predict)."""

    def describe(self) -> str:
        """The targets in a few words, for the console: `2 labels: no, yes`."""

    def of_model(self, label_names: Sequence[str] | None, config: Any) -> Task:
        """The task of a saved model, from the names its model card recorded (None for a model
        saved without xp) and its transformers config."""

    def head(self) -> Head:
        """The model head to build."""

    def encode(
        self,
        batch: dict[str, list[Any]],
        *,
        tokenizer: Any,
        text_columns: Sequence[str],
        options: Mapping[str, Any],
        split: str,
    ) -> Mapping[str, Any]:
        """A batch of rows (`Dataset.map(batched=True)`) as the model takes them: the tokenizer's
        output for the `text_columns`, called with `options` (truncation, max_length, padding), and
        `labels` made from the rows' `label` column. `split` says which split the rows are from
        ("train", "eval" or "test"): a task may train on other targets than it scores (token
        classification's `label_all_tokens`), or encode training rows unlike evaluated ones."""

    def decode(self, outputs: tuple[Any, ...]) -> tuple[Any, Any]:
        """A batch's model outputs after the loss (torch tensors, in the model output's order:
        `(logits,)`, or `(start_logits, end_logits)` for question answering) to its predictions and
        their scores, one per row (of any shape beyond the row); runners pad them with -100 to
        gather and concatenate. A task that generates (`generation`) is given `(token ids,)`: what
        `model.generate` wrote for the batch."""

    def prediction_columns(
        self, predictions: Any, scores: Any, references: Any, data: TaskData
    ) -> dict[str, Sequence[Any]]:
        """The test split's predictions file's columns besides the row id, from the gathered
        `decode` results, the references as the runners hold them (a token task finds a word's
        first sub-token there) and the data (its rows: `data.splits["test"]`)."""

    def predict(
        self, texts: Sequence[Sequence[Any]], *, model: Any, tokenizer: Any, max_length: int | None, probabilities: bool
    ) -> Mapping[str, Sequence[Any]]:
        """`xp predict`'s output columns for one batch of input rows: `texts` holds a list of
        values per text column the model reads (strings; or lists of words, for a token task),
        `model` is on its device, in eval mode, under `torch.inference_mode`. A ValueError, before
        any work, when `probabilities` makes no sense for the task."""

    def prediction_stats(self, predictions: Any, references: Any) -> PredictionStats | None:
        """The diagnosis's look at the last validation predictions (None: the curves only)."""

    def baseline(self, data: TaskData) -> Baseline | None:
        """What a trivial predictor predicts, for the diagnosis (None: no baseline)."""

    def export(self, data: TaskData, max_length: int | None) -> Export:
        """How the trained model is saved to MLflow."""

    def propose(self, splits: Mapping[str, Dataset | None], text_columns: Any, label_column: Any) -> Proposal:
        """For `xp init`: the columns, metrics and words for rows under "train", "eval" (None when
        the data has no validation split) and maybe "test"; `text_columns` and `label_column` as
        the person gave them, or None. A BuildError whose key is the option to fix."""


@dataclass(frozen=True)
class Outputs:
    """A split's predictions, their scores and the references they are scored against, in the
    split's order: one per encoded row as the runners gather `Task.decode`'s results (numpy,
    padded with -100), then one per row of the data (`outputs_per_row`)."""

    predictions: Any
    scores: Any
    references: Any


def outputs_per_row(
    task: Task, outputs: Outputs, data: TaskData, split: str, encoded: Dataset, tokenizer: Any
) -> Outputs:
    """The outputs for each row of `data.splits[split]`, from those for each row of `encoded` (that
    split tokenized with `tokenizer`). Most tasks encode a row as one row: the outputs as they are.
    A task that encodes a row as several (question answering: a context's windows) implements
    `Task.per_row(outputs, data, split, encoded, tokenizer)` to bring them together; a task that
    generates, to make text of token ids."""
    per_row = getattr(task, "per_row", None)
    return per_row(outputs, data, split, encoded, tokenizer) if per_row is not None else outputs


@dataclass(frozen=True)
class Table:
    """A table a task keeps of an evaluation (validation samples: input, reference, generation),
    logged as an MLflow table artifact, which the UI's evaluation view compares across runs."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


def evaluation_files(task: Task, outputs: Outputs, data: TaskData, split: str) -> Mapping[str, str | Table]:
    """Files the task keeps of each evaluation's predictions, by name: their text (question
    answering: the official `{id: answer}` JSON), or a `Table` (a generating task's samples).
    Optional (`Task.evaluation_files`): none by default."""
    files = getattr(task, "evaluation_files", None)
    return files(outputs, data, split) if files is not None else {}


def generation_options(task: Task) -> Mapping[str, Any] | None:
    """For a task whose predictions are generated text: `model.generate`'s keyword arguments
    (`Task.generation`: beams, new tokens, ...), with which every runner generates for each
    evaluated batch and hands the token ids to `Task.decode`. None (the default): the task reads
    its predictions from the model's outputs."""
    return getattr(task, "generation", None)


def prepare_tokenizer(task: Task, tokenizer: Any) -> str | None:
    """What the task needs of the tokenizer, set on it before any row is encoded (and before `xp
    predict` reads any): a language model's tokenizer without a pad token pads with its end
    token. Returns what was changed, in words for the console, or None (`Task.prepare_tokenizer`;
    by default nothing changes)."""
    prepare = getattr(task, "prepare_tokenizer", None)
    return prepare(tokenizer) if prepare is not None else None


def decoded(task: Task, outputs: tuple[Any, ...], labels: Any) -> tuple[Any, Any]:
    """`Task.decode` of a batch's outputs; a task that reads the batch's labels to decode (a
    language model scoring each row's loss per token) says so with `decodes_with_labels = True`
    and is given them as `labels=` (a test split with hidden targets: a 1-D tensor of -100)."""
    if getattr(task, "decodes_with_labels", False):
        return task.decode(outputs, labels=labels)  # type: ignore[call-arg]
    return task.decode(outputs)


def evaluation_samples(task: Task, model: Any, tokenizer: Any, data: TaskData, split: str) -> Mapping[str, Table]:
    """Tables the task makes with the model itself when a split is evaluated, by file name (a
    causal language model's generations for the first validation prompts, or for every test
    prompt: `Task.samples_of`); none by default. Asked on the main process only, with the model
    unwrapped, in eval mode, without gradients."""
    samples = getattr(task, "samples_of", None)
    return samples(model, tokenizer, data, split) if samples is not None else {}


def feature_columns(task: Task) -> tuple[str, ...]:
    """The columns of an encoded split the task keeps for itself (`Task.feature_columns`: where a
    question's windows came from), which are not inputs of the model; none by default."""
    return tuple(getattr(task, "feature_columns", ()))

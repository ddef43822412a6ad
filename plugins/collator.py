"""Collator plugins: turn a list of tokenized rows into one padded batch of tensors; labels that
are sequences (the task's `label_padding`) are padded too."""

from __future__ import annotations

from typing import Any

from tracker.plugin import Annotated, Field, PositiveInt, Task, experiment_rules, hookimpl


def dynamic_padding(
    tokenizer: Any,
    task: Task,
    *,
    pad_to_multiple_of: Annotated[
        PositiveInt | None,
        Field(description="round each batch's length up to a multiple of this (8 helps tensor cores)"),
    ] = None,
) -> Any:
    """Pad each batch to its longest row (DataCollatorWithPadding), as in the Hugging Face course."""
    return _padding(tokenizer, task, padding=True, pad_to_multiple_of=pad_to_multiple_of)


def _rows_fit_the_length(options, sections):
    # Rows longer than the fixed length cannot be stacked into one batch: the first such batch
    # would fail mid-training. Only the tokenizer's truncation keeps them short.
    tokenizer = sections.get("tokenizer", {})
    limit, truncating = tokenizer.get("max_length"), tokenizer.get("truncation", True)
    if not truncating or limit is None or limit > options["max_length"]:
        yield (
            "max_length",
            (
                f"rows can be longer than {options['max_length']} tokens: set [tokenizer] "
                f"max_length to {options['max_length']} or less, with truncation = true"
            ),
        )


@experiment_rules(_rows_fit_the_length)
def fixed_length(
    tokenizer: Any,
    task: Task,
    *,
    max_length: Annotated[
        PositiveInt,
        Field(description="every batch's length; rows must be no longer (set [tokenizer] max_length to match)"),
    ] = 128,
) -> Any:
    """Pad every batch to max_length, for hardware that wants one fixed shape (rows must be no longer)."""
    return _padding(tokenizer, task, padding="max_length", max_length=max_length)


def _padding(tokenizer: Any, task: Task, **padding: Any) -> Any:
    """The inputs padded as asked; labels that are sequences (a tag per token) padded alike, with
    the task's `label_padding`, which no loss counts."""
    from transformers import DataCollatorForSeq2Seq, DataCollatorWithPadding

    if task.label_padding is None:  # one target per row: nothing to pad but the inputs
        return DataCollatorWithPadding(tokenizer=tokenizer, **padding)
    # Despite its name, the collator that pads a `labels` sequence of any task.
    return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=task.label_padding, **padding)


@hookimpl
def xp_register_collators(register):
    register("dynamic_padding", dynamic_padding)
    register("fixed_length", fixed_length)

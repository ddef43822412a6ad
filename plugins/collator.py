"""Collator plugins: turn a list of tokenized rows into one padded batch of tensors."""
from __future__ import annotations

from typing import Any

from tracker.hookspecs import hookimpl
from tracker.spec.declare import Annotated, Field, PositiveInt


def dynamic_padding(tokenizer: Any, *, pad_to_multiple_of: Annotated[PositiveInt | None, Field(
        description="round each batch's length up to a multiple of this (8 helps tensor cores)")] = None) -> Any:
    """Pad each batch to its longest row (DataCollatorWithPadding), as in the Hugging Face course."""
    from transformers import DataCollatorWithPadding

    return DataCollatorWithPadding(tokenizer=tokenizer, pad_to_multiple_of=pad_to_multiple_of)


def fixed_length(tokenizer: Any, *, max_length: Annotated[PositiveInt, Field(
        description="every batch's length; rows must be no longer (set [tokenizer] max_length to match)")] = 128
                 ) -> Any:
    """Pad every batch to max_length, for hardware that wants one fixed shape (rows must be no longer)."""
    from transformers import DataCollatorWithPadding

    return DataCollatorWithPadding(tokenizer=tokenizer, padding="max_length", max_length=max_length)


@hookimpl
def xp_register_collators(register):
    register("dynamic_padding", dynamic_padding)
    register("fixed_length", fixed_length)

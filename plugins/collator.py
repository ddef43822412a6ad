"""Collator plugins: turn a list of tokenized rows into one padded batch of tensors."""
from __future__ import annotations

from typing import Any

from tracker.errors import BuildError
from tracker.hookspecs import hookimpl


def dynamic_padding(tokenizer: Any, *, pad_to_multiple_of: int | None = None) -> Any:
    """Pad each batch to its longest row (DataCollatorWithPadding), as in the Hugging Face course."""
    if pad_to_multiple_of is not None and pad_to_multiple_of < 1:
        raise BuildError("pad_to_multiple_of", f"must be at least 1, got {pad_to_multiple_of}")
    from transformers import DataCollatorWithPadding

    return DataCollatorWithPadding(tokenizer=tokenizer, pad_to_multiple_of=pad_to_multiple_of)


def fixed_length(tokenizer: Any, *, max_length: int = 128) -> Any:
    """Pad every batch to max_length, for hardware that wants one fixed shape (rows must be no longer)."""
    if max_length < 1:
        raise BuildError("max_length", f"must be at least 1, got {max_length}")
    from transformers import DataCollatorWithPadding

    return DataCollatorWithPadding(tokenizer=tokenizer, padding="max_length", max_length=max_length)


@hookimpl
def xp_register_collators(register):
    register("dynamic_padding", dynamic_padding)
    register("fixed_length", fixed_length)

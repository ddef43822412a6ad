"""Tokenizer plugins: a Hugging Face tokenizer applied to every split with `Dataset.map(batched=True)`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal

from tracker.plugin import (
    Annotated,
    BuildError,
    Field,
    Name,
    PositiveInt,
    RunsCode,
    feature_columns,
    hookimpl,
    why_not_loaded,
)
from xp_plugins.checkpoint import Checkpoint, resolve_checkpoint

if TYPE_CHECKING:
    from datasets import Dataset

    from tracker.plugin import TaskData

# Bump when `encode` changes what it writes, so cached tokenized splits are not reused.
ENCODING_VERSION = 2
# Tokenizers that know no limit report this huge `model_max_length` (transformers' VERY_LARGE_INTEGER).
_NO_LIMIT = 1_000_000


class HFTextEncoder:
    """A `TextEncoder`: tokenizes one or two text columns per row, cached by the datasets library."""

    def __init__(
        self,
        tokenizer: Any,
        *,
        max_length: int | None,
        truncation: bool,
        padding: Literal["none", "max_length"],
        num_proc: int | None,
    ):
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.truncation = truncation
        self.padding = padding
        self.num_proc = num_proc
        self._identity: str | None = None

    def encode(self, data: TaskData) -> dict[str, Dataset]:
        """Every split as the model takes it, each batch of rows encoded by the task
        (`Task.encode`) with this tokenizer: raw columns removed, torch format. A test split whose
        labels are hidden keeps no `labels` column (there is nothing to score); a task that
        encodes a row as several (question answering's windows) may make more rows than it read."""
        encoded = {}
        for key, split in data.splits.items():
            tokenized = split.map(
                data.task.encode,
                batched=True,
                fn_kwargs={
                    "tokenizer": self.tokenizer,
                    "text_columns": data.text_columns,
                    "options": self._call_options(),
                    "split": key,
                },
                remove_columns=split.column_names,
                num_proc=self.num_proc,
                new_fingerprint=self._fingerprint(key, split, data),
                desc=f"Tokenizing {key}",
            )
            if key == "test" and not data.test_has_labels and "labels" in tokenized.column_names:
                tokenized = tokenized.remove_columns("labels")
            # The task's own columns (where a window came from) stay beside the model's inputs,
            # out of the batches: the torch format covers the inputs only.
            kept = feature_columns(data.task)
            tokenized.set_format("torch", columns=[c for c in tokenized.column_names if c not in kept])
            encoded[key] = tokenized
        return encoded

    def _call_options(self) -> dict[str, Any]:
        limited = self.truncation or self.padding == "max_length"
        return {
            "truncation": self.truncation,
            "max_length": self.max_length if limited else None,
            "padding": "max_length" if self.padding == "max_length" else False,
        }

    def _fingerprint(self, key: str, split: Dataset, data: TaskData) -> str:
        # datasets would hash the map function with its closure, tokenizer object included; that
        # hash depends on how the tokenizer was loaded (its path, offline flags), and hashing
        # pickles the whole vocabulary. Name the result by what determines it instead: the task
        # (its kind and what it knows of the targets), the tokenizer, the options, the split, the rows.
        from datasets.fingerprint import Hasher

        if self._identity is None:
            self._identity = _tokenizer_identity(self.tokenizer)
        task = f"{type(data.task).__module__}.{type(data.task).__qualname__}: {data.task!r}"
        return Hasher.hash(
            [
                ENCODING_VERSION,
                task,
                self._identity,
                self._call_options(),
                list(data.text_columns),
                key,
                split._fingerprint,
            ]
        )


def _tokenizer_identity(tokenizer: Any) -> str:
    """A hash of what makes a tokenizer tokenize the way it does: vocabulary, normalizer, special tokens."""
    from datasets.fingerprint import Hasher

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        state = json.loads(backend.to_str())
        # Calling the tokenizer sets these on the backend; they are call options, not identity.
        state.pop("truncation", None)
        state.pop("padding", None)
    else:
        state = sorted(tokenizer.get_vocab().items())
    return Hasher.hash(
        [
            type(tokenizer).__name__,
            state,
            tokenizer.model_input_names,
            tokenizer.padding_side,
            tokenizer.truncation_side,
            sorted(tokenizer.special_tokens_map.items()),
        ]
    )


def auto(
    model_checkpoint: str | None,
    *,
    checkpoint: Annotated[Checkpoint | None, Field(description="default: the [model] checkpoint")] = None,
    max_length: Annotated[
        PositiveInt | None, Field(description="truncation length; default: the model's maximum")
    ] = None,
    truncation: bool = True,
    padding: Annotated[
        Literal["none", "max_length"],
        Field(description='"none": pad per batch in the collator; "max_length": fixed shapes'),
    ] = "none",
    num_proc: Annotated[PositiveInt | None, Field(description="parallel tokenization processes")] = None,
    use_fast: bool = True,
    revision: Annotated[Name | None, Field(description="a hub branch, tag or commit")] = None,
    trust_remote_code: Annotated[bool, RunsCode("runs Python code shipped with the checkpoint")] = False,
) -> HFTextEncoder:
    """AutoTokenizer for the model's checkpoint (or `checkpoint`); pads per batch unless padding = "max_length".

    `max_length` defaults to the tokenizer's model max length. padding = "max_length" pads every
    row at tokenization time, for hardware that wants fixed shapes; "none" leaves padding to the
    collator (dynamic padding, as in the HF course).
    """
    spec = checkpoint or model_checkpoint
    if spec is None:
        raise BuildError("checkpoint", "no checkpoint: set one here or in the [model] section")

    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(
            resolve_checkpoint(spec), use_fast=use_fast, revision=revision, trust_remote_code=trust_remote_code
        )
    except OSError as error:  # transformers reports a missing or unreachable checkpoint this way
        raise BuildError(
            "checkpoint",
            f'cannot load a tokenizer from "{spec}": {why_not_loaded(spec, error)}. For offline use '
            'give a local folder or "pkg:<package>/<folder>".',
        ) from None
    except ValueError as error:  # e.g. a checkpoint whose tokenizer is custom code
        raise BuildError("checkpoint", f'cannot load a tokenizer from "{spec}": {error}') from None

    model_max = tokenizer.model_max_length if tokenizer.model_max_length < _NO_LIMIT else None
    if max_length is None:
        max_length = model_max
    elif model_max is not None and max_length > model_max:
        raise BuildError("max_length", f"{max_length} exceeds the tokenizer's model max length {model_max}")
    if max_length is None and padding == "max_length":
        raise BuildError("max_length", 'padding = "max_length" needs max_length: the tokenizer has no model max')
    return HFTextEncoder(tokenizer, max_length=max_length, truncation=truncation, padding=padding, num_proc=num_proc)


@hookimpl
def xp_register_tokenizers(register):
    register("auto", auto)

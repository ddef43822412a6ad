"""What every task that generates text shares: reading text targets; its decoding keys, declared
once for each such task's [task] section; token ids back to text; the table of validation samples
people read; and the diagnosis's look at generations (all the same, or empty)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tracker.plugin import Annotated, BuildError, Field, NonNegativeInt, PositiveInt, PredictionStats, Table

if TYPE_CHECKING:
    from datasets import Dataset

NumBeams = Annotated[PositiveInt, Field(description="beams of beam search when generating; 1 decodes greedily")]
MaxNewTokens = Annotated[PositiveInt, Field(description="the most tokens generated for one row")]
MinNewTokens = Annotated[
    NonNegativeInt, Field(description="the fewest tokens generated for one row, before it may end")
]
NoRepeatNgramSize = Annotated[
    NonNegativeInt, Field(description="no n-gram of this many tokens is generated twice; 0: no such rule")
]
LengthPenalty = Annotated[
    float, Field(description="beam search: > 1 favours longer generations, < 1 shorter ones (1: neutral)")
]
Samples = Annotated[
    NonNegativeInt,
    Field(description="validation rows whose input, reference and generation are logged as a table at each evaluation"),
]
# The keys `xp predict --task-option` and the pyfunc model's params may change after training:
# how text is generated, not what the model learned.
DECODING_KEYS = ("num_beams", "max_new_tokens", "min_new_tokens", "no_repeat_ngram_size", "length_penalty")


@dataclass(frozen=True)
class Decoding:
    """How text is generated, in evaluation and prediction alike: `model.generate`'s settings."""

    num_beams: int = 1
    max_new_tokens: int = 64
    min_new_tokens: int = 0
    no_repeat_ngram_size: int = 0
    length_penalty: float = 1.0

    def generate_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"num_beams": self.num_beams, "max_new_tokens": self.max_new_tokens}
        if self.min_new_tokens:
            options["min_new_tokens"] = self.min_new_tokens
        if self.no_repeat_ngram_size:
            options["no_repeat_ngram_size"] = self.no_repeat_ngram_size
        if self.num_beams > 1:  # greedy decoding has no length penalty; generate warns when given one
            options["length_penalty"] = self.length_penalty
        return options

    def describe(self) -> str:
        search = "greedy" if self.num_beams == 1 else f"{self.num_beams} beams"
        return f"{search}, at most {self.max_new_tokens} new tokens"


def with_text_targets(
    splits: dict[str, Dataset], column: str, target_of: Callable[[Any], Any], what: str
) -> dict[str, Dataset]:
    """Each split with its rows' targets under `label`, `target_of` reading a cell (a text, or a
    list of references; empty or None: no target). A training or validation split without the
    column, or a row of one without a target, is a BuildError on `label_column` (counted, the
    first rows named). A test split without the column, or with any row without a target, gets
    None for every row: it is predicted, not scored (a test split is scored whole or not at all)."""
    read = {}
    for key, split in splits.items():
        targets = [target_of(value) for value in split[column]] if column in split.column_names else None
        missing = [row for row, target in enumerate(targets or ()) if not target]
        if key != "test" and targets is None:
            raise BuildError("label_column", f'the {split_name(key)} split has no "{column}" column of {what}')
        if key != "test" and missing:
            raise BuildError("label_column", rows_problem(missing, key, f'no {what} in "{column}"'))
        if targets is None or missing:
            targets = [None] * len(split)
        if "label" in split.column_names:
            split = split.remove_columns("label")
        read[key] = split.add_column("label", targets)
    return read


def rows_problem(rows: Sequence[int], key: str, what: str) -> str:
    """`2 row(s) of the training split have no response in "output" (rows 3, 9); fill or drop them`."""
    shown = ", ".join(str(row) for row in rows[:5]) + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")
    return f"{len(rows)} row(s) of the {split_name(key)} split have {what} (rows {shown}); fill or drop them"


def split_name(key: str) -> str:
    return {"train": "training", "eval": "validation", "test": "test"}.get(key, key)


def min_within_max(options):
    """A rule of every generating task's section: it cannot generate fewer tokens than it must."""
    if options["min_new_tokens"] > options["max_new_tokens"]:
        yield (
            "min_new_tokens",
            f"{options['min_new_tokens']} is more than max_new_tokens = {options['max_new_tokens']}",
        )


def texts_of(token_ids: Any, tokenizer: Any) -> list[str]:
    """Generated token ids (numpy or torch, padded with -100 across batches and processes, or with
    the pad token) as text, special tokens left out."""
    import numpy as np

    ids = np.asarray(token_ids)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = np.where(ids < 0, pad, ids)
    return [text.strip() for text in tokenizer.batch_decode(ids.tolist(), skip_special_tokens=True)]


def samples_table(
    inputs: Sequence[str], references: Sequence[Sequence[str] | None], generations: Sequence[str], rows: int
) -> Table:
    """The first `rows` validation rows: input, references (joined by a blank line when several)
    and the generation, as MLflow's table artifacts hold them."""
    shown = range(min(rows, len(generations)))
    return Table(
        ("input", "reference", "generation"),
        tuple((inputs[row], "\n\n".join(references[row] or ()), generations[row]) for row in shown),
    )


def generation_stats(generations: Sequence[str], references: Sequence[Sequence[str] | None]) -> PredictionStats:
    """The generation given most often (empty text included), the share of rows given it and the
    share of rows whose references hold it: a model that writes one text, or nothing, for every
    row is flagged by the diagnosis as a classifier predicting one class is."""
    top = max(set(generations), key=list(generations).count) if generations else ""
    share = list(generations).count(top) / max(len(generations), 1)
    natural = sum(1 for refs in references if refs and top in refs) / max(len(references), 1)
    return PredictionStats(
        class_shares=(share,),
        label_shares=(natural,),
        names=("(empty text)" if top == "" else _shortened(top),),
        unit="rows",
    )


def _shortened(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"

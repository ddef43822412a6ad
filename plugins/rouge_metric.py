"""The `rouge` metric: ROUGE-1, ROUGE-2, ROUGE-L and ROUGE-Lsum of generated texts against every
reference of their row, computed by Google's `rouge-score` package (the implementation `evaluate`'s
rouge module wraps, and `run_summarization.py` reports): each row scores its best reference, the
scores are the mean F-measures over rows, in percent as the course prints them. It needs no Hub."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tracker.plugin import Annotated, Field, TaskData, data_rules, generation_options, outputs

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
# rougeLsum reads one sentence a line; run_summarization.py splits with nltk's punkt model, which
# must be downloaded: a sentence ends at ., ! or ? before white space, here.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _needs_generated_text(options, data):
    if generation_options(data.task) is None:
        yield None, f"scores generated text, but the task predicts {data.task.describe()}"


def sentences_on_lines(text: str) -> str:
    """The text with one sentence a line, as rougeLsum reads it."""
    return "\n".join(part for part in _SENTENCE_END.split(text.strip()) if part)


@dataclass(frozen=True)
class RougeScores:
    """A `Metric` over generated texts and each row's references (a list of texts; rows without
    references, in a test split with hidden targets, are not scored)."""

    use_stemmer: bool = True
    greater_is_better: bool = True

    def compute(self, predictions: Sequence[str], references: Sequence[Sequence[str] | None]) -> dict[str, float]:
        from rouge_score import rouge_scorer

        scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=self.use_stemmer)
        totals = dict.fromkeys(ROUGE_TYPES, 0.0)
        rows = 0
        for generated, refs in zip(predictions, references, strict=True):
            if not refs:
                continue
            rows += 1
            best = scorer.score_multi([sentences_on_lines(ref) for ref in refs], sentences_on_lines(generated))
            for name in ROUGE_TYPES:
                totals[name] += best[name].fmeasure
        return {name: 100 * total / max(rows, 1) for name, total in totals.items()}


@outputs(*ROUGE_TYPES)
@data_rules(_needs_generated_text)
def rouge(
    data: TaskData,
    *,
    use_stemmer: Annotated[
        bool, Field(description="Porter-stem words before matching, as run_summarization.py")
    ] = True,
) -> Any:
    """ROUGE-1/2/L/Lsum F-measures (0-100) of generated texts, each against the best of its row's references.

    Computed with the rouge-score package (as evaluate's rouge module and run_summarization.py),
    offline; rougeLsum reads a sentence a line (split at ., ! and ?)."""
    return RougeScores(use_stemmer)

"""Sequence-to-sequence generation (summarization, translation): a source text in, a target text
out, as the Hugging Face course (chapter 7) and `run_summarization.py` train it. An encoder-decoder
learns to write the first reference of each row; evaluation generates for every validation row
(beam search or greedy, `Decoding`) and scores the generations against all of the row's references
(the `rouge` metric)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tracker.plugin import (
    Annotated,
    BuildError,
    Export,
    Field,
    Head,
    Outputs,
    PositiveInt,
    PredictionStats,
    Proposal,
    Table,
    TaskData,
    rules,
)
from xp_plugins.tasks.generation import (
    DECODING_KEYS,
    Decoding,
    LengthPenalty,
    MaxNewTokens,
    MinNewTokens,
    NoRepeatNgramSize,
    NumBeams,
    Samples,
    generation_stats,
    min_within_max,
    rows_problem,
    samples_table,
    split_name,
    texts_of,
    with_text_targets,
)

if TYPE_CHECKING:
    from datasets import Dataset

PIPELINE_TASK = "text2text-generation"
GENERATION = "generation"  # the predictions file's and `xp predict`'s column of generated text
PAD = -100  # what no loss counts: padded target positions


@dataclasses.dataclass(frozen=True)
class Seq2SeqGeneration:
    """A `Task`. Its targets: each row's references, a list of texts (one, or several to score
    against); the first is trained on. A source given as a list of sentences is read as one text."""

    prefix: str = ""
    max_target_length: int = 128
    # How text is generated and how much of it is shown change no encoding: left out of the repr,
    # which names the tokenized splits in the cache.
    decoding: Decoding = dataclasses.field(default_factory=Decoding, repr=False)
    samples: int = dataclasses.field(default=16, repr=False)
    label_names: None = None  # targets are texts: no classes
    label_padding: int = PAD  # a target is a sequence of tokens, padded in a batch with what no loss counts

    @property
    def generation(self) -> dict[str, Any]:
        return self.decoding.generate_options()

    # ---- data -------------------------------------------------------------------------------------

    def read_targets(
        self,
        splits: dict[str, Dataset],
        columns: Sequence[str],
        names_of_ids: Sequence[str] | None,
        *,
        text_columns: Sequence[str],
    ) -> tuple[Seq2SeqGeneration, dict[str, Dataset]]:
        """Each row's references under `label`, a list of texts: a text column is one reference, a
        column of lists is several. A row without a reference to train on, or without source text,
        is refused, counted and named; a test split without the column, or with rows without
        references, is predicted, not scored."""
        if names_of_ids is not None:
            raise BuildError("label_names", "the targets are texts: there are no class ids to name")
        if len(columns) != 1:
            raise BuildError(
                "label_column", f"a sequence-to-sequence task reads one column of targets, not {len(columns)}"
            )
        if len(text_columns) != 1:
            raise BuildError(
                "text_columns", 'a sequence-to-sequence task reads one source column: text_columns = ["source"]'
            )
        [column], [source] = columns, text_columns
        for key, split in splits.items():
            no_source = [row for row, text in enumerate(split[source]) if not source_text(text).strip()]
            if no_source and key != "test":  # a test row without text is predicted empty
                raise BuildError("text_columns", rows_problem(no_source, key, f'no source text in "{source}"'))
        return self, with_text_targets(splits, column, _references, "reference text")

    def check_targets(self, split: Dataset, split_name: str, columns: Sequence[str]) -> None:
        """Nothing left to check: `read_targets` checked every row of every split."""

    def is_labelled(self, split: Dataset) -> bool:
        return any(references for references in split["label"])

    def describe(self) -> str:
        return f"generated text ({self.decoding.describe()})"

    def of_model(self, label_names: Sequence[str] | None, config: Any) -> Seq2SeqGeneration:
        return self  # what it needs is the [task] section the model card recorded

    # ---- model ------------------------------------------------------------------------------------

    def head(self) -> Head:
        return Head("AutoModelForSeq2SeqLM")

    def encode(
        self,
        batch: dict[str, list[Any]],
        *,
        tokenizer: Any,
        text_columns: Sequence[str],
        options: Mapping[str, Any],
        split: str,
    ) -> Mapping[str, Any]:
        """The sources (after `prefix`) as the tokenizer options say ([tokenizer] max_length is the
        source's); the first reference as `labels`, cut at `max_target_length` tokens (a leading
        [CLS] left out), padded positions (with padding = "max_length") set to what no loss counts."""
        [source] = text_columns
        # One text: no token types, which an encoder-decoder's generate refuses as unknown inputs.
        sources = [self.prefix + source_text(text) for text in batch[source]]
        encoded = tokenizer(sources, return_token_type_ids=False, **options)
        if all(references for references in batch["label"]):
            targets = target_ids(tokenizer, [references[0] for references in batch["label"]], self.max_target_length)
            if options.get("padding") == "max_length":
                targets = [row + [PAD] * (self.max_target_length - len(row)) for row in targets]
            encoded["labels"] = targets
        return encoded

    def encoding_note(self, data: TaskData, encoded: Mapping[str, Dataset], tokenizer: Any) -> str | None:
        """The training and validation targets longer than `max_target_length` tokens, which are cut
        (the model learns to stop early), counted: raise the limit when there are many."""
        counts = []
        for key in ("train", "eval"):
            references = [refs[0] for refs in data.splits[key]["label"] if refs]
            lengths = [len(ids) for ids in target_ids(tokenizer, references, None)] if references else []
            long = sum(1 for length in lengths if length > self.max_target_length)
            if long:
                counts.append(f"{long} of {len(lengths)} {split_name(key)} targets")
        if not counts:
            return None
        return f"{' and '.join(counts)} are longer than max_target_length = {self.max_target_length} tokens, and cut"

    # ---- predictions ------------------------------------------------------------------------------

    def decode(self, outputs: tuple[Any, ...]) -> tuple[Any, Any]:
        """The generated token ids, and as their score the number of tokens generated."""
        [generated] = outputs
        return generated, generated.ne(PAD).sum(dim=-1)

    def per_row(self, outputs: Outputs, data: TaskData, split: str, encoded: Dataset, tokenizer: Any) -> Outputs:
        """The generations as text, each row's references (None where the test split has none)."""
        return Outputs(texts_of(outputs.predictions, tokenizer), outputs.scores, list(data.splits[split]["label"]))

    def evaluation_files(self, outputs: Outputs, data: TaskData, split: str) -> Mapping[str, str | Table]:
        """For validation, the table of the first `samples` rows: source, references, generation
        (the test split's generations are all in its predictions file)."""
        if split != "eval" or not self.samples:
            return {}
        [source] = data.text_columns
        sources = [self.prefix + source_text(text) for text in data.splits[split][source][: self.samples]]
        return {"samples.json": samples_table(sources, outputs.references, outputs.predictions, self.samples)}

    def prediction_columns(
        self, predictions: Any, scores: Any, references: Any, data: TaskData
    ) -> dict[str, Sequence[Any]]:
        """The generated text."""
        return {GENERATION: list(predictions)}

    def predict(
        self, texts: Sequence[Sequence[Any]], *, model: Any, tokenizer: Any, max_length: int | None, probabilities: bool
    ) -> Mapping[str, Sequence[Any]]:
        """The text generated for each row's source, with this task's decoding settings."""
        if probabilities:
            raise ValueError("the model generates text; there is no probability per class to add")
        [sources] = texts
        inputs = tokenizer(
            [self.prefix + source_text(text) for text in sources],
            max_length=max_length,
            truncation=max_length is not None,
            padding=True,
            return_token_type_ids=False,
            return_tensors="pt",
        ).to(model.device)
        generated = model.generate(**inputs, **self.generation)
        return {GENERATION: texts_of(generated.cpu(), tokenizer)}

    def prediction_stats(self, predictions: Any, references: Any) -> PredictionStats:
        return generation_stats(predictions, references)

    def baseline(self, data: TaskData) -> None:
        return None

    # ---- export -----------------------------------------------------------------------------------

    def export(self, data: TaskData, max_length: int | None) -> Export:
        """Rows of the source column in (a text, or a list of sentences as the data holds it), the
        `generation` column out; the decoding settings are the model's params, which a caller may
        change: `predict(rows, params={"num_beams": 4})`."""
        from mlflow.models import ModelSignature
        from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema
        from mlflow.types.schema import Array

        [source] = data.text_columns
        rows = data.splits["eval"].select(range(min(2, len(data.splits["eval"]))))
        sentences = len(rows) > 0 and isinstance(rows[0][source], list)
        defaults = {key: getattr(self.decoding, key) for key in DECODING_KEYS}
        signature = ModelSignature(
            Schema([ColSpec(Array("string") if sentences else "string", source)]),
            Schema([ColSpec("string", GENERATION)]),
            ParamSchema(
                [
                    ParamSpec(key, "double" if isinstance(value, float) else "long", value)
                    for key, value in defaults.items()
                ]
            ),
        )
        examples = [{source: text} for text in rows[source]]
        # Transformers 5 has no text2text-generation pipeline: xp's pyfunc model serves it, with
        # `predict` above and the [task] section its card records.
        return Export(PIPELINE_TASK, signature.to_dict(), examples, served_by="xp")

    # ---- xp init ----------------------------------------------------------------------------------

    def propose(self, splits: Mapping[str, Dataset | None], text_columns: Any, label_column: Any) -> Proposal:
        """The source and target columns (as given, or `source`/`document`/`text` and
        `target`/`summary`), the `rouge` metric."""
        train = splits["train"]
        assert train is not None
        names = train.column_names
        source = text_columns[0] if text_columns else _first(names, ("source", "document", "article", "text"))
        target = label_column or _first(names, ("target", "summary", "highlights", "tldr"))
        missing = [name for name, column in (("a source", source), ("a target", target)) if column not in names]
        if missing:
            raise BuildError(
                "label_column" if target not in names else "text_columns",
                f"a sequence-to-sequence task reads a source and a target column; name {' and '.join(missing)} "
                f"(columns: {', '.join(names)})",
            )
        return Proposal(
            text_columns=(source,),
            columns=(source, target),
            dataset=(
                ("text_columns", [source], "the text to transform (a list of sentences is read as one text)"),
                ("label_column", target, "the reference output: a text, or a list of references"),
            ),
            test_labelled="test" in splits and splits["test"] is not None and target in splits["test"].column_names,
            inputs=f"{source} (the source text)",
            targets=f"{target}, the text to generate",
            metrics=(
                ("use", ["rouge"], "rouge1, rouge2, rougeL, rougeLsum of the generations against every reference"),
            ),
            model='An encoder-decoder warm-started from two copies of an encoder (use = "auto" takes a T5 or BART).',
            model_use="encoder_decoder",
            max_length=512,
        )


def target_ids(tokenizer: Any, texts: Sequence[str], max_length: int | None) -> list[list[int]]:
    """The targets' token ids, at most `max_length` of them. A BERT-like tokenizer opens every text
    with [CLS], which also opens the decoder (the encoder_decoder model's decoder_start_token_id):
    not a token to learn, it is left out."""
    opens = tokenizer.cls_token_id if tokenizer.bos_token_id is None else None
    extra = 1 if opens is not None and max_length is not None else 0
    ids = tokenizer(
        text_target=list(texts),
        max_length=max_length + extra if max_length else None,
        truncation=max_length is not None,
    )["input_ids"]
    return [row[1:] if opens is not None and row[:1] == [opens] else row for row in ids]


def source_text(value: Any) -> str:
    """A source as one text: a list of sentences joined by spaces."""
    return " ".join(value) if isinstance(value, (list, tuple)) else str(value or "")


def _references(value: Any) -> list[str]:
    texts = value if isinstance(value, (list, tuple)) else [value]
    return [str(text) for text in texts if text is not None and str(text).strip()]


def _first(columns: Sequence[str], candidates: Sequence[str]) -> str:
    return next((name for name in candidates if name in columns), candidates[0])


@rules(min_within_max)
def seq2seq(
    *,
    prefix: Annotated[str, Field(description='text put before every source, as T5 expects ("summarize: ")')] = "",
    max_target_length: Annotated[
        PositiveInt, Field(description="targets are cut at this many tokens ([tokenizer] max_length cuts the sources)")
    ] = 128,
    num_beams: NumBeams = 1,
    max_new_tokens: MaxNewTokens = 64,
    min_new_tokens: MinNewTokens = 0,
    no_repeat_ngram_size: NoRepeatNgramSize = 0,
    length_penalty: LengthPenalty = 1.0,
    samples: Samples = 16,
) -> Seq2SeqGeneration:
    """Sequence-to-sequence generation (summarization, translation): a source text in, a text out.

    Reads one source column (a text, or a list of sentences joined) and one target column (a text,
    or a list of references: the first is trained on, all are scored against);
    AutoModelForSeq2SeqLM, or the `encoder_decoder` model warm-started from encoders. Evaluation
    generates for every validation row with these decoding keys; scored with the `rouge` metric."""
    return Seq2SeqGeneration(
        prefix=prefix,
        max_target_length=max_target_length,
        decoding=Decoding(num_beams, max_new_tokens, min_new_tokens, no_repeat_ngram_size, length_penalty),
        samples=samples,
    )

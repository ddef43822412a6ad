"""Instruction tuning of a causal language model (supervised fine-tuning, as Axolotl, torchtune
and TRL's SFT train it): each row's instruction (and input) is rendered as a prompt
(`PromptFormat`), its response follows, and the loss counts the response's tokens only (the
prompt's are labelled -100). Short rows may be packed into sequences of the full length.
Evaluation logs the loss and the perplexity, and generates for the first validation prompts."""

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
    Proposal,
    Table,
    TaskData,
    data_rules,
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
    min_within_max,
    samples_table,
    split_name,
    texts_of,
    with_text_targets,
)
from xp_plugins.tasks.prompts import FIELDS, PromptFormat, placeholders
from xp_plugins.tasks.word_pieces import model_limit

if TYPE_CHECKING:
    from datasets import Dataset

PIPELINE_TASK = "text-generation"
GENERATION = "generation"
IGNORED = -100  # the label of a token no loss counts: the prompt's, and padding
SAMPLES_FILE, TEST_FILE = "samples.json", "generations.json"


@dataclasses.dataclass(frozen=True)
class InstructionTuning:
    """A `Task`. Its targets: each row's response, a text (None in a test split without them)."""

    prompt: PromptFormat = dataclasses.field(default_factory=lambda: PromptFormat(None, ""))
    packing: bool = False
    decoding: Decoding = dataclasses.field(default_factory=Decoding, repr=False)
    samples: int = dataclasses.field(default=8, repr=False)
    label_names: None = None
    label_padding: int = IGNORED
    decodes_with_labels: bool = True  # `decode` scores each row's response tokens: it reads the labels

    # ---- data -------------------------------------------------------------------------------------

    def read_targets(
        self,
        splits: dict[str, Dataset],
        columns: Sequence[str],
        names_of_ids: Sequence[str] | None,
        *,
        text_columns: Sequence[str],
    ) -> tuple[InstructionTuning, dict[str, Dataset]]:
        """Each row's response under `label` (of a list of references, the first); a training or
        validation row without one is refused, counted and named. A test split without the column,
        or with rows without one, is generated for, not scored."""
        if names_of_ids is not None:
            raise BuildError("label_names", "the targets are texts: there are no class ids to name")
        if len(columns) != 1:
            raise BuildError("label_column", f"instruction tuning reads one column of responses, not {len(columns)}")
        [column] = columns
        return self, with_text_targets(splits, column, _response, "response")

    def check_targets(self, split: Dataset, split_name: str, columns: Sequence[str]) -> None:
        """Nothing left to check: `read_targets` checked every row."""

    def is_labelled(self, split: Dataset) -> bool:
        return any(split["label"])

    def describe(self) -> str:
        packed = ", packed" if self.packing else ""
        return f"responses to prompts (loss on the response tokens{packed})"

    def of_model(self, label_names: Sequence[str] | None, config: Any) -> InstructionTuning:
        return self

    # ---- tokenizer and model ----------------------------------------------------------------------

    def prepare_tokenizer(self, tokenizer: Any) -> str | None:
        """A tokenizer without a pad token (GPT-2, Llama) pads with its end token: padding is masked
        from attention and from the loss, so which token pads does not matter."""
        if _end_token(tokenizer) is None:
            raise BuildError(
                "checkpoint", "the tokenizer has no end-of-text token (eos or sep): a generated response could not end"
            )
        if tokenizer.pad_token_id is not None:
            return None
        tokenizer.pad_token = tokenizer.eos_token if tokenizer.eos_token is not None else tokenizer.sep_token
        return (
            f"the tokenizer has no pad token: it pads with its end token {tokenizer.pad_token!r} (masked from the loss)"
        )

    def head(self) -> Head:
        return Head("AutoModelForCausalLM")

    def encode(
        self,
        batch: dict[str, list[Any]],
        *,
        tokenizer: Any,
        text_columns: Sequence[str],
        options: Mapping[str, Any],
        split: str,
    ) -> Mapping[str, Any]:
        """Each row as prompt and response tokens (the tokenizer's start token first, when it has
        one and no chat template writes it, and its end token after the response), labelled -100
        on the prompt; cut at [tokenizer] max_length from the end. A row whose prompt alone fills
        max_length is left out: no token of it would be learnt. With `packing`, training rows are
        joined and cut into sequences of max_length."""
        prompts = self._prompt_ids(self.prompt.render([batch[c] for c in text_columns], tokenizer), tokenizer)
        labelled = all(response is not None for response in batch["label"])
        limit = options.get("max_length") if options.get("truncation", True) else None
        input_ids, labels = [], []
        responses = tokenizer(list(batch["label"]), add_special_tokens=False)["input_ids"] if labelled else None
        for row, prompt in enumerate(prompts):
            response = responses[row] + [_end_token(tokenizer)] if responses is not None else []
            ids, targets = prompt + response, [IGNORED] * len(prompt) + response
            if limit is not None:
                ids, targets = ids[:limit], targets[:limit]
            if responses is not None and all(token == IGNORED for token in targets):
                continue  # its prompt fills max_length: no response token to learn (encoding_note counts them)
            input_ids.append(ids)
            labels.append(targets)
        if self.packing and split == "train":
            input_ids, labels = (
                _packed(input_ids, limit or model_limit(tokenizer) or 1024),
                _packed(labels, limit or model_limit(tokenizer) or 1024),
            )
        encoded: dict[str, Any] = {"input_ids": input_ids, "attention_mask": [[1] * len(ids) for ids in input_ids]}
        if labelled:
            encoded["labels"] = labels
        return encoded

    def _prompt_ids(self, prompts: Sequence[str], tokenizer: Any) -> list[list[int]]:
        ids = tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
        start = (
            []
            if self.prompt.uses_chat_template(tokenizer) or tokenizer.bos_token_id is None
            else [tokenizer.bos_token_id]
        )
        return [start + row for row in ids]

    def encoding_note(self, data: TaskData, encoded: Mapping[str, Dataset], tokenizer: Any) -> str | None:
        """The prompt format; the rows left out (their prompt fills max_length) and those whose
        response is cut; with packing, the sequences the training rows became."""
        notes = [f"prompts in {self.prompt.kind(tokenizer)}"]
        end = _end_token(tokenizer)
        for key in ("train", "eval"):
            rows = len(data.splits[key])
            if self.packing and key == "train":
                notes.append(f"{rows} training rows packed into {len(encoded[key])} sequences")
                continue
            labels = encoded[key].with_format(None)["labels"]
            left_out = rows - len(labels)
            cut = sum(1 for row in labels if [token for token in row if token != IGNORED][-1:] != [end])
            if left_out:
                notes.append(f"{left_out} of {rows} {split_name(key)} rows left out: their prompt fills max_length")
            if cut:
                notes.append(f"{cut} of {rows} {split_name(key)} responses cut at max_length")
        return "; ".join(notes)

    # ---- evaluation -------------------------------------------------------------------------------

    def decode(self, outputs: tuple[Any, ...], labels: Any = None) -> tuple[Any, Any]:
        """Each row's summed loss over its response tokens and their count, side by side (`[row,
        2]`: the `perplexity` metric adds them up over the split), of the logits and the labels;
        nothing else is kept of the logits (a vocabulary's worth per token). The count is also the
        score. A row without labels (a test split without responses) counts nothing."""
        import torch

        logits = outputs[0]
        if labels is None or labels.dim() < 2:
            zeros = logits.new_zeros((logits.shape[0], 2), dtype=torch.float32)
            return zeros, zeros[:, 1]
        # Each token predicted from those before it, as the model's own loss shifts them.
        predicted, targets = logits[:, :-1].float(), labels[:, 1:]
        losses = torch.nn.functional.cross_entropy(
            predicted.reshape(-1, predicted.shape[-1]), targets.reshape(-1), ignore_index=IGNORED, reduction="none"
        ).view(targets.shape)
        counts = targets.ne(IGNORED).sum(dim=-1).float()
        return torch.stack((losses.sum(dim=-1), counts), dim=-1), counts

    def samples_of(self, model: Any, tokenizer: Any, data: TaskData, split: str) -> Mapping[str, Table]:
        """Generations for the first `samples` validation prompts, or every test prompt, as a table
        of prompt, reference and generation."""
        rows = data.splits[split]
        count = len(rows) if split == "test" else min(self.samples, len(rows))
        if not count:
            return {}
        shown = rows.select(range(count)).to_dict()
        prompts = self.prompt.render([shown[column] for column in data.text_columns], tokenizer)
        generations = self.generate(self._prompt_ids(prompts, tokenizer), model, tokenizer)
        references = [[text] if text else None for text in shown["label"]]
        return {
            (TEST_FILE if split == "test" else SAMPLES_FILE): samples_table(prompts, references, generations, count)
        }

    def generate(self, prompts: Sequence[Sequence[int]], model: Any, tokenizer: Any, batch_size: int = 8) -> list[str]:
        """The text generated after each prompt (token ids), in batches padded on the left as a
        decoder-only model generates; a prompt too long for the model keeps its last tokens."""
        import torch

        room = (
            model_limit(tokenizer) or getattr(model.config, "max_position_embeddings", None) or 1 << 30
        ) - self.decoding.max_new_tokens
        texts: list[str] = []
        for start in range(0, len(prompts), batch_size):
            chunk = [list(ids)[-max(room, 1) :] for ids in prompts[start : start + batch_size]]
            width = max(len(ids) for ids in chunk)
            pad = tokenizer.pad_token_id
            input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in chunk], device=model.device)
            mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in chunk], device=model.device)
            generated = model.generate(
                input_ids=input_ids,
                attention_mask=mask,
                pad_token_id=pad,
                eos_token_id=_end_token(tokenizer),
                **self.decoding.generate_options(),
            )
            texts += texts_of(generated[:, width:].cpu(), tokenizer)
        return texts

    def prediction_columns(
        self, predictions: Any, scores: Any, references: Any, data: TaskData
    ) -> dict[str, Sequence[Any]]:
        """None: the test split's generations are its `generations.json` table (`samples_of`)."""
        return {}

    def predict(
        self, texts: Sequence[Sequence[Any]], *, model: Any, tokenizer: Any, max_length: int | None, probabilities: bool
    ) -> Mapping[str, Sequence[Any]]:
        """The response generated for each row's prompt, rendered as in training."""
        if probabilities:
            raise ValueError("the model generates text; there is no probability per class to add")
        prompts = self.prompt.render(texts, tokenizer)
        return {GENERATION: self.generate(self._prompt_ids(prompts, tokenizer), model, tokenizer)}

    def prediction_stats(self, predictions: Any, references: Any) -> None:
        return None  # generations are made for a few samples only: the curves say how it learns

    def baseline(self, data: TaskData) -> None:
        return None

    # ---- export -----------------------------------------------------------------------------------

    def export(self, data: TaskData, max_length: int | None) -> Export:
        """Rows of the text columns in, `generation` out; the decoding settings are params."""
        from mlflow.models import ModelSignature
        from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

        rows = data.splits["eval"].select(range(min(2, len(data.splits["eval"]))))
        signature = ModelSignature(
            Schema([ColSpec("string", column) for column in data.text_columns]),
            Schema([ColSpec("string", GENERATION)]),
            ParamSchema(
                [
                    ParamSpec(
                        key,
                        "double" if isinstance(getattr(self.decoding, key), float) else "long",
                        getattr(self.decoding, key),
                    )
                    for key in DECODING_KEYS
                ]
            ),
        )
        examples = [{column: row[column] for column in data.text_columns} for row in rows]
        return Export(PIPELINE_TASK, signature.to_dict(), examples, served_by="xp")

    # ---- xp init ----------------------------------------------------------------------------------

    def propose(self, splits: Mapping[str, Dataset | None], text_columns: Any, label_column: Any) -> Proposal:
        """Alpaca's columns (`instruction`, `input`, `output`) or those given."""
        train = splits["train"]
        assert train is not None
        names = train.column_names
        given = list(text_columns or [c for c in ("instruction", "input") if c in names] or ["instruction"])
        response = label_column or next((c for c in ("output", "response", "answer") if c in names), "output")
        missing = [c for c in (*given, response) if c not in names]
        if missing:
            raise BuildError(
                "label_column" if response in missing else "text_columns",
                f"instruction tuning reads an instruction (and input) and a response column; the train split lacks "
                f"{', '.join(missing)} (columns: {', '.join(names)})",
            )
        return Proposal(
            text_columns=tuple(given),
            columns=(*given, response),
            dataset=(
                ("text_columns", given, "the instruction, and its input, rendered as the prompt"),
                ("label_column", response, "the response the model learns to write"),
            ),
            test_labelled="test" in splits and splits["test"] is not None and response in splits["test"].column_names,
            inputs=" + ".join(given) + " (the prompt)",
            targets=f"{response}, the response",
            metrics=(("use", ["perplexity"], "exp(mean loss per response token); lower is better"),),
            model="A pretrained causal language model (GPT-2, Llama, Qwen): none ships offline; this is on the hub.",
            checkpoint="HuggingFaceTB/SmolLM2-135M",
            max_length=512,
        )


def _response(value: Any) -> str | None:
    """A response cell as text; of a list of references (a summarization set's), the first; None
    for an empty one."""
    if isinstance(value, (list, tuple)):
        value = next((text for text in value if text), None)
    return None if value is None or not str(value).strip() else str(value)


def _end_token(tokenizer: Any) -> int | None:
    return tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id


def _packed(rows: Sequence[Sequence[int]], length: int) -> list[list[int]]:
    """The rows joined end to end, cut into pieces of `length` (the last may be shorter)."""
    joined = [token for row in rows for token in row]
    return [joined[start : start + length] for start in range(0, len(joined), length)]


def _template_reads_the_fields_there_are(options, data):
    template = options["template"]
    if template is None:
        return
    try:
        fields = placeholders(template)
    except ValueError as error:
        yield "template", f"cannot be read as a template ({error}); write {{instruction}} for a field, {{{{ for a brace"
        return
    given = dict(zip(FIELDS, data.text_columns, strict=False))  # the text columns by their role
    unknown = [name for name in fields if name not in FIELDS]
    if unknown:
        yield (
            "template",
            f"names {', '.join('{' + name + '}' for name in unknown)}: a template's fields are {{instruction}} (the "
            f'text column "{data.text_columns[0]}"), {{input}} (a second text column) and {{system}}',
        )
    elif "input" in fields and "input" not in given:
        yield (
            "template",
            f'names {{input}}, the second text column, but [dataset] text_columns gives one ("{data.text_columns[0]}")',
        )
    elif "instruction" not in fields:
        yield "template", f'names no {{instruction}}: where the row\'s "{data.text_columns[0]}" text goes'


@rules(min_within_max)
@data_rules(_template_reads_the_fields_there_are)
def instruction_tuning(
    *,
    template: Annotated[
        str | None,
        Field(
            description="the prompt: {instruction} (the first text column), {input} (the second), {system}, "
            'e.g. "Summarize: {instruction}\\nTL;DR: "; default: the tokenizer\'s chat template, else the Alpaca format'
        ),
    ] = None,
    system: Annotated[str, Field(description="a system prompt before every row (chat template, or Alpaca)")] = "",
    packing: Annotated[
        bool,
        Field(description="join short training rows into sequences of [tokenizer] max_length (fewer, fuller batches)"),
    ] = False,
    num_beams: NumBeams = 1,
    max_new_tokens: MaxNewTokens = 64,
    min_new_tokens: MinNewTokens = 0,
    no_repeat_ngram_size: NoRepeatNgramSize = 0,
    length_penalty: LengthPenalty = 1.0,
    samples: Samples = 8,
) -> InstructionTuning:
    """Instruction tuning of a causal language model: the loss on the response tokens only.

    Reads one or two text columns (an instruction, and an input) rendered as a prompt, and a
    response column; AutoModelForCausalLM. Logs eval/loss and eval/perplexity; at each evaluation
    generates for the first `samples` validation prompts, logged as a table; the test split's
    prompts are all generated for (generations.json)."""
    return InstructionTuning(
        prompt=PromptFormat(template, system),
        packing=packing,
        decoding=Decoding(num_beams, max_new_tokens, min_new_tokens, no_repeat_ngram_size, length_penalty),
        samples=samples,
    )

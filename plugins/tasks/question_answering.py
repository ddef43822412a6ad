"""Extractive question answering (SQuAD): the answer to a question is a span of its context, as
`run_qa.py` and the Hugging Face course (chapter 7) train it. A context longer than the model is
read in overlapping windows (`doc_stride` tokens shared); each window is trained to point at the
answer's first and last tokens, or at the CLS token when it does not hold the answer. A
question's answer is the best span over all its windows; with `allow_no_answer` (SQuAD 2.0) no
answer when the null score beats it. Scores are the official SQuAD scripts' (the `squad` metric)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tracker.plugin import (
    Annotated,
    Baseline,
    BuildError,
    Export,
    Field,
    Head,
    NonNegativeInt,
    Outputs,
    PositiveInt,
    PredictionStats,
    Proposal,
    TaskData,
)
from xp_plugins.tasks import columns as guess
from xp_plugins.tasks.answer_spans import (
    Answer,
    SpanChoice,
    answer_positions,
    answer_span,
    context_offsets,
)
from xp_plugins.tasks.squad_answers import problems_of, problems_text, read_answers, with_answers
from xp_plugins.tasks.word_pieces import model_limit

if TYPE_CHECKING:
    from datasets import Dataset

PIPELINE_TASK = "question-answering"
ID_COLUMN = "id"  # SQuAD's: every question is named by it, in messages and predictions
# Columns of an encoded split that are for the task, not the model: the question each window is of
# and the characters of the context each of its tokens spans (None outside the context).
WINDOW_QUESTION, WINDOW_OFFSETS = "example_id", "offset_mapping"


@dataclasses.dataclass(frozen=True)
class QuestionAnswering:
    """A `Task`. Its targets: each question's answers, `{"text": [...], "answer_start": [...]}`
    (characters of the context), none for an unanswerable question."""

    doc_stride: int = 128
    n_best: int = 20
    max_answer_length: int = 30
    allow_no_answer: bool = False
    null_score_diff_threshold: float = 0.0
    skip_bad_questions: bool = False
    skipped: tuple[tuple[str, int], ...] = ()  # (split, questions) left out by skip_bad_questions
    label_names: None = None  # answers are spans of text: no classes
    label_padding: None = None  # one start and one end per window: nothing to pad
    feature_columns: tuple[str, ...] = (WINDOW_QUESTION, WINDOW_OFFSETS)

    @property
    def choice(self) -> SpanChoice:
        return SpanChoice(self.n_best, self.max_answer_length, self.allow_no_answer, self.null_score_diff_threshold)

    # ---- data -------------------------------------------------------------------------------------

    def read_targets(
        self,
        splits: dict[str, Dataset],
        columns: Sequence[str],
        names_of_ids: Sequence[str] | None,
        *,
        text_columns: Sequence[str],
    ) -> tuple[QuestionAnswering, dict[str, Dataset]]:
        """Each question's answers under `label`, checked on every row of every split: a question
        id used twice, an empty context, an answer whose `answer_start` does not point at its text
        in the context, and (without `allow_no_answer`) a question without an answer are refused,
        counted and named, or left out with `skip_bad_questions`. A test split without answers is
        predicted, not scored."""
        if names_of_ids is not None:
            raise BuildError("label_names", "question answering reads answer texts: there are no class ids to name")
        if len(columns) != 1:
            raise BuildError("label_column", f"question answering reads one column of answers, not {len(columns)}")
        if len(text_columns) != 2:
            raise BuildError(
                "text_columns",
                'question answering reads a question and its context: text_columns = ["question", "context"]',
            )
        [column] = columns
        context = text_columns[1]
        read, skipped = {}, []
        for key, split in splits.items():
            if ID_COLUMN not in split.column_names:
                raise BuildError(
                    "text_columns",
                    f'the {_split_name(key)} split has no "{ID_COLUMN}" column: question answering names each '
                    "question by its id, in messages and in the predictions (SQuAD's layout)",
                )
            if column not in split.column_names and key != "test":
                raise BuildError("label_column", f'the {_split_name(key)} split has no "{column}" column of answers')
            # None: a test split without answers, to predict.
            answers = read_answers(split, column) if column in split.column_names else None
            problems = problems_of(split, ID_COLUMN, context, answers, self.allow_no_answer)
            if problems and not self.skip_bad_questions:
                raise BuildError("label_column", problems_text(problems, _split_name(key)))
            if problems:
                bad = {row for row, _, _ in problems}
                kept = [row for row in range(len(split)) if row not in bad]
                split, answers = split.select(kept), [answers[row] for row in kept] if answers is not None else None
                skipped.append((key, len(bad)))
            read[key] = with_answers(split, column, answers)
        return dataclasses.replace(self, skipped=tuple(skipped)), read

    def check_targets(self, split: Dataset, split_name: str, columns: Sequence[str]) -> None:
        """Nothing left to check: `read_targets` checked every question of every split."""

    def is_labelled(self, split: Dataset) -> bool:
        return any(answers is not None for answers in split["label"])

    def describe(self) -> str:
        return "answer spans" + (" (a question may have no answer)" if self.allow_no_answer else "")

    def of_model(self, label_names: Sequence[str] | None, config: Any) -> QuestionAnswering:
        return self  # what it needs is the [task] section the model card recorded

    # ---- model ------------------------------------------------------------------------------------

    def head(self) -> Head:
        return Head("AutoModelForQuestionAnswering")

    def encode(
        self,
        batch: dict[str, list[Any]],
        *,
        tokenizer: Any,
        text_columns: Sequence[str],
        options: Mapping[str, Any],
        split: str,
    ) -> Mapping[str, Any]:
        """Each question with its context, in windows of `max_length` tokens that overlap by
        `doc_stride` (`truncation="only_second"`, `return_overflowing_tokens`), as the course
        encodes both training and validation questions. Every window has `start_positions` and
        `end_positions` (the answer's first and last tokens, or CLS's when the window does not hold
        it all), so validation has a loss; and, for `per_row`, its question's id and its tokens'
        characters in the context."""
        question_column, context_column = text_columns
        # A tokenizer that pads on the left reads the context first, as run_qa.py does.
        context_first = tokenizer.padding_side == "left"
        questions = [question.lstrip() for question in batch[question_column]]  # as the course
        contexts = batch[context_column]
        max_length = options.get("max_length") or model_limit(tokenizer)
        try:
            encoded = tokenizer(
                *((contexts, questions) if context_first else (questions, contexts)),
                truncation="only_first" if context_first else "only_second",
                max_length=max_length,
                stride=self.doc_stride,
                return_overflowing_tokens=True,
                return_offsets_mapping=True,
                padding=options.get("padding", False),
            )
        except Exception as error:  # the tokenizers library says "truncation error" in its own words
            raise self._window_error(batch, questions, tokenizer, max_length) or error from None
        question_of = encoded.pop("overflow_to_sample_mapping")
        offsets = encoded.pop("offset_mapping")
        labelled = all(answers is not None for answers in batch["label"])
        starts, ends, ids, window_offsets = [], [], [], []
        for window, row in enumerate(question_of):
            spans = context_offsets(offsets[window], encoded.sequence_ids(window), 0 if context_first else 1)
            window_offsets.append(spans)
            ids.append(batch[ID_COLUMN][row])
            if labelled:
                cls = encoded["input_ids"][window].index(tokenizer.cls_token_id) if tokenizer.cls_token_id else 0
                start, end = answer_positions(spans, answer_span(batch["label"][row]), cls)
                starts.append(start)
                ends.append(end)
        if labelled:
            encoded["start_positions"], encoded["end_positions"] = starts, ends
        encoded[WINDOW_QUESTION], encoded[WINDOW_OFFSETS] = ids, window_offsets
        return encoded

    def _window_error(
        self, batch: Mapping[str, list[Any]], questions: Sequence[str], tokenizer: Any, max_length: int | None
    ) -> BuildError | None:
        """Why a batch could not be split into windows: a question so long that no context fits
        beside it with `doc_stride` tokens of overlap."""
        if max_length is None:
            return None
        lengths = [len(ids) for ids in tokenizer(list(questions), add_special_tokens=True)["input_ids"]]
        row = max(range(len(lengths)), key=lambda i: lengths[i])
        room = max_length - lengths[row] - 1  # the separator after the context
        if room > self.doc_stride:
            return None
        # Raised while the tokenizer encodes: blamed on [tokenizer], whose max_length is half the cause.
        return BuildError(
            "max_length",
            f'question "{batch[ID_COLUMN][row]}" takes {lengths[row]} of the {max_length} tokens a window holds, '
            f"leaving {max(room, 0)} for its context, no more than [task] doc_stride = {self.doc_stride}: raise "
            "max_length, or lower doc_stride",
        )

    def encoding_note(self, data: TaskData, encoded: Mapping[str, Dataset], tokenizer: Any) -> str | None:
        """How many windows the questions took (more than one per question when contexts are
        longer than the model), and the questions `skip_bad_questions` left out."""
        note = "windows: " + ", ".join(
            f"{len(split)} for {len(data.splits[key])} {_split_name(key)} questions" for key, split in encoded.items()
        )
        if self.skipped:
            left_out = ", ".join(f"{_split_name(key)} {count}" for key, count in self.skipped)
            note += f"; skip_bad_questions left out {left_out}"
        return note

    # ---- predictions ------------------------------------------------------------------------------

    def decode(self, outputs: tuple[Any, ...]) -> tuple[Any, Any]:
        """Each window's start and end logits, side by side (`[window, token, 2]`), and its null
        score (the CLS token's start and end logits): a window alone answers nothing, `per_row`
        chooses each question's answer over all its windows."""
        import torch

        start_logits, end_logits = (logits.float() for logits in outputs[:2])
        return torch.stack((start_logits, end_logits), dim=-1), start_logits[:, 0] + end_logits[:, 0]

    def per_row(self, outputs: Outputs, data: TaskData, split: str, encoded: Dataset, tokenizer: Any) -> Outputs:
        """Each question's best answer over its windows (`Answer`s), its probability among the
        candidates, and its reference answer texts (an empty list: no answer; None: hidden)."""
        import numpy as np

        rows = data.splits[split]
        contexts = rows[data.text_columns[1]]
        logits = np.asarray(outputs.predictions)
        answers = self.choice.answers(
            contexts,
            rows[ID_COLUMN],
            guess.column_values(encoded, WINDOW_QUESTION),
            logits,
            guess.column_values(encoded, WINDOW_OFFSETS),
        )
        references = [list(label["text"]) if label is not None else None for label in rows["label"]]
        return Outputs(answers, np.asarray([answer.score for answer in answers]), references)

    def evaluation_files(self, outputs: Outputs, data: TaskData, split: str) -> Mapping[str, str]:
        """The predictions as the official SQuAD scripts read them: `{question id: answer text}`,
        "" for no answer."""
        ids = data.splits[split][ID_COLUMN]
        official = {question: answer.text for question, answer in zip(ids, outputs.predictions, strict=True)}
        return {"predictions.json": json.dumps(official, ensure_ascii=False, indent=1)}

    def prediction_columns(
        self, predictions: Any, scores: Any, references: Any, data: TaskData
    ) -> dict[str, Sequence[Any]]:
        """`answer` ("" for none), its `score` (its probability among the candidate spans) and the
        characters of the context it spans, `start` and `end` (-1 for no answer)."""
        return {
            "answer": [answer.text for answer in predictions],
            "score": [f"{answer.score:.6f}" for answer in predictions],
            "start": [answer.start for answer in predictions],
            "end": [answer.end for answer in predictions],
        }

    def predict(
        self, texts: Sequence[Sequence[Any]], *, model: Any, tokenizer: Any, max_length: int | None, probabilities: bool
    ) -> Mapping[str, Sequence[Any]]:
        """`answer`, `score`, `start` and `end` for each row's question in its context, chosen over
        the context's windows as in evaluation."""
        import numpy as np

        if probabilities:
            raise ValueError("an answer is a span of the context; there is no probability per class to add")
        questions, contexts = (list(column) for column in texts)
        batch = {
            ID_COLUMN: [str(i) for i in range(len(questions))],
            "question": questions,
            "context": contexts,
            "label": [None] * len(questions),
        }
        encoded = self.encode(
            batch,
            tokenizer=tokenizer,
            text_columns=("question", "context"),
            options={"max_length": max_length, "padding": True},
            split="test",
        )
        import torch

        inputs = {
            name: torch.tensor(encoded[name], device=model.device)
            for name in tokenizer.model_input_names
            if name in encoded
        }
        output = model(**inputs)
        logits = np.stack([output.start_logits.float().cpu().numpy(), output.end_logits.float().cpu().numpy()], -1)
        answers = self.choice.answers(
            contexts, batch[ID_COLUMN], encoded[WINDOW_QUESTION], logits, encoded[WINDOW_OFFSETS]
        )
        return {
            "answer": [answer.text for answer in answers],
            "score": [answer.score for answer in answers],
            "start": [answer.start for answer in answers],
            "end": [answer.end for answer in answers],
        }

    def prediction_stats(self, predictions: Any, references: Any) -> PredictionStats:
        """The answer given most often (or no answer), the share of questions given it, and the
        share whose references hold it: a model that answers nothing, or one span, to everything."""
        texts = [answer.text for answer in predictions]
        top = max(set(texts), key=texts.count) if texts else ""
        share = texts.count(top) / max(len(texts), 1)
        natural = sum(1 for refs in references if refs is not None and _holds(refs, top)) / max(len(references), 1)
        return PredictionStats(
            class_shares=(share,),
            label_shares=(natural,),
            names=("no answer" if top == "" else top,),
            unit="questions",
        )

    def baseline(self, data: TaskData) -> Baseline | None:
        """With `allow_no_answer`: no answer to any question, which scores the unanswerable ones."""
        if not self.allow_no_answer:
            return None
        rows = data.splits["eval"]
        empty = [Answer("", -1, -1, 1.0)] * len(rows)
        references = [list(label["text"]) for label in rows["label"]]
        return Baseline(empty, "no answer", references)

    # ---- export -----------------------------------------------------------------------------------

    def export(self, data: TaskData, max_length: int | None) -> Export:
        """A question-answering model: rows of `question` and `context` in, `answer`, `score`,
        `start` and `end` out, with this task's windows and span limits."""
        from mlflow.models import ModelSignature
        from mlflow.types import ColSpec, Schema

        question, context = data.text_columns
        rows = data.splits["eval"].select(range(min(2, len(data.splits["eval"]))))
        signature = ModelSignature(
            Schema([ColSpec("string", "question"), ColSpec("string", "context")]),
            Schema(
                [
                    ColSpec("string", "answer"),
                    ColSpec("double", "score"),
                    ColSpec("long", "start"),
                    ColSpec("long", "end"),
                ]
            ),
        )
        examples = [{"question": q, "context": c} for q, c in zip(rows[question], rows[context], strict=True)]
        # Transformers 5 has no question-answering pipeline: xp's pyfunc model serves it, with
        # `predict` below and the [task] section its card records.
        return Export(PIPELINE_TASK, signature.to_dict(), examples, served_by="xp")

    # ---- xp init ----------------------------------------------------------------------------------

    def propose(self, splits: Mapping[str, Dataset | None], text_columns: Any, label_column: Any) -> Proposal:
        """SQuAD's columns (`question`, `context`, `answers`, `id`), whether any question has no
        answer (then `allow_no_answer`), and the `squad` metric."""
        train = splits["train"]
        assert train is not None
        question, context = text_columns or ("question", "context")
        answers = label_column or "answers"
        missing = [c for c in (ID_COLUMN, question, context, answers) if c not in train.column_names]
        if missing:
            raise BuildError(
                "text_columns" if answers not in missing else "label_column",
                f"question answering reads SQuAD's columns: id, a question, its context and its answers; the "
                f"train split lacks {', '.join(missing)} (columns: {', '.join(train.column_names)})",
            )
        unanswerable = sum(
            1
            for split in splits.values()
            if split is not None and answers in split.column_names
            for given in read_answers(split, answers)
            if not given["text"]
        )
        return Proposal(
            text_columns=(question, context),
            columns=(ID_COLUMN, question, context, answers),
            dataset=(
                ("text_columns", [question, context], "a question, and the context its answer is in"),
                ("label_column", answers, 'each question\'s answers: {"text": [...], "answer_start": [...]}'),
            ),
            test_labelled="test" in splits and splits["test"] is not None and answers in splits["test"].column_names,
            inputs=f"{question} + {context} (a question and its context)",
            targets=f"{answers}, spans of the context"
            + (f"; {unanswerable} questions have no answer (SQuAD 2.0)" if unanswerable else ""),
            metrics=(("use", ["squad"], "exact_match and f1 as the official SQuAD script scores them"),),
            model="The pretrained model, with a new question-answering head (a start and an end logit per token).",
            max_length=384,
            task_options=(("allow_no_answer", True, f"{unanswerable} questions have no answer (SQuAD 2.0)"),)
            if unanswerable
            else (),
        )


def _split_name(key: str) -> str:
    return {"train": "training", "eval": "validation", "test": "test"}.get(key, key)


def _holds(references: Sequence[str], text: str) -> bool:
    return (not references and text == "") or text in references


def question_answering(
    *,
    doc_stride: Annotated[
        NonNegativeInt,
        Field(description="tokens two windows of a long context share, so an answer is whole in one of them"),
    ] = 128,
    n_best: Annotated[
        PositiveInt, Field(description="the highest start and end logits of a window tried as spans")
    ] = 20,
    max_answer_length: Annotated[PositiveInt, Field(description="the longest answer predicted, in tokens")] = 30,
    allow_no_answer: Annotated[
        bool,
        Field(
            description="a question may have no answer in its context (SQuAD 2.0): trained to point at CLS, "
            "answered with nothing when the null score beats the best span"
        ),
    ] = False,
    null_score_diff_threshold: Annotated[
        float,
        Field(description="with allow_no_answer: no answer when the null score beats the best span by more than this"),
    ] = 0.0,
    skip_bad_questions: Annotated[
        bool,
        Field(
            description="leave out questions whose answer_start does not point at their answer, whose context is "
            "empty or whose id repeats, counting them; by default they are an error"
        ),
    ] = False,
) -> QuestionAnswering:
    """Extractive question answering (SQuAD v1.1 and v2.0): the answer is a span of the context.

    Reads a question and a context (the dataset's two text columns), an `id` per question and a
    column of answers (`{"text": [...], "answer_start": [...]}`, characters of the context);
    AutoModelForQuestionAnswering. Scored with the `squad` metric, as the official scripts score."""
    return QuestionAnswering(
        doc_stride=doc_stride,
        n_best=n_best,
        max_answer_length=max_answer_length,
        allow_no_answer=allow_no_answer,
        null_score_diff_threshold=null_score_diff_threshold,
        skip_bad_questions=skip_bad_questions,
    )

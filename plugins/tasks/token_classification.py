"""Token classification (named-entity recognition): a tag per word, as `run_ner.py` and the
Hugging Face course (chapter 7) train it. Words are split into sub-tokens; a word's tag goes on
its first sub-token and -100 (no loss, no score) on the rest and on special tokens (or, with
`label_all_tokens`, on every sub-token of a training sentence). Tags are read
in whatever scheme the data uses (IOB1, IOB2, BIOES) and trained and scored in IOB2, so scores
mean the same whatever the file used."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tracker.plugin import Annotated, Baseline, BuildError, Export, Field, Head, PredictionStats, Proposal, TaskData
from xp_plugins.tasks import columns as guess
from xp_plugins.tasks.tag_columns import ROW_SOURCE, read_tags, word_and_tag_columns
from xp_plugins.tasks.tag_schemes import OUTSIDE, split_tag, to_iob2, types_of
from xp_plugins.tasks.word_pieces import (
    IGNORED,
    first_sub_tokens,
    labels_on_every_sub_token,
    labels_on_first_sub_tokens,
    model_limit,
    sub_tokens,
    words_kept,
    words_of,
)

if TYPE_CHECKING:
    from datasets import Dataset

PIPELINE_TASK = "token-classification"


@dataclasses.dataclass(frozen=True)
class TokenClassification:
    """A `Task`. Its targets: IOB2 tag names, `O` first, then `B-` and `I-` of each entity type."""

    label_names: tuple[str, ...] | None = None
    truncate_long_sentences: bool = False
    label_all_tokens: bool = False
    scheme: str | None = None  # the scheme the data's tags were written in, once read
    label_padding: int = IGNORED

    @property
    def entity_types(self) -> tuple[str, ...]:
        return tuple(sorted(types_of(self.label_names or ())))

    # ---- data -------------------------------------------------------------------------------------

    def read_targets(
        self,
        splits: dict[str, Dataset],
        columns: Sequence[str],
        names_of_ids: Sequence[str] | None,
        *,
        text_columns: Sequence[str],
    ) -> tuple[TokenClassification, dict[str, Dataset]]:
        """Tags as strings (a column of tag lists, `ClassLabel` names, or integer ids that
        `label_names` names) read into IOB2 tag ids under `label`; the tag names come from the
        training split's entity types, and a validation or test split with a type training never
        saw is refused (no model could learn it)."""
        if len(columns) != 1:
            raise BuildError("label_column", f"token classification reads one column of tags, not {len(columns)}")
        [column] = columns
        if "test" in splits and column not in splits["test"].column_names:
            raise BuildError(
                "test_split",
                f'has no "{column}" tags; token classification scores its test split. '
                "Predict untagged sentences with `xp predict` instead",
            )
        names, scheme, encoded = read_tags(splits, column, names_of_ids)
        return dataclasses.replace(self, label_names=names, scheme=scheme), encoded

    def check_targets(self, split: Dataset, split_name: str, columns: Sequence[str]) -> None:
        """Nothing left to check: `read_targets` checked every tag of every split, and `encode`
        checks that each word has one."""

    def is_labelled(self, split: Dataset) -> bool:
        return True  # read_targets refuses a test split without tags

    def describe(self) -> str:
        if self.label_names is None:
            return "token tags"
        read = f", read as {self.scheme}" if self.scheme and self.scheme != "IOB2" else ""
        types = ", ".join(self.entity_types)
        return f"{len(self.label_names)} tags: {len(self.entity_types)} entity types ({types}){read}"

    def of_model(self, label_names: Sequence[str] | None, config: Any) -> TokenClassification:
        if label_names is not None and len(label_names) == config.num_labels:
            return dataclasses.replace(self, label_names=tuple(label_names))
        return dataclasses.replace(self, label_names=tuple(str(config.id2label[i]) for i in range(config.num_labels)))

    # ---- model ------------------------------------------------------------------------------------

    def head(self) -> Head:
        names = self.label_names or ()
        return Head(
            "AutoModelForTokenClassification",
            {
                "num_labels": len(names),
                "id2label": dict(enumerate(names)),
                "label2id": {name: i for i, name in enumerate(names)},
            },
        )

    def encode(
        self,
        batch: dict[str, list[Any]],
        *,
        tokenizer: Any,
        text_columns: Sequence[str],
        options: Mapping[str, Any],
        split: str,
    ) -> Mapping[str, Any]:
        """Each row's words split into sub-tokens (`is_split_into_words`), each word's tag on its
        first sub-token; with `label_all_tokens`, a training sentence's later sub-tokens too (a
        `B-` tag as `I-` there), while validation and test sentences keep one tag per word, so that
        scores and predictions count words either way. A sentence longer than the model takes is
        refused, naming it, unless `truncate_long_sentences`: then its last words are left out of
        training and scoring."""
        [column] = text_columns
        max_length = options.get("max_length") or model_limit(tokenizer)
        encoded = sub_tokens(
            tokenizer,
            batch[column],
            truncation=max_length is not None,
            max_length=max_length,
            padding=options.get("padding", False),
        )
        inside = self._inside_ids() if self.label_all_tokens and split == "train" else None
        labels = []
        for row, tags in enumerate(batch["label"]):
            if len(tags) != len(batch[column][row]):
                raise BuildError(
                    "label_column",
                    f"{self._row(batch, column, row)}: {len(batch[column][row])} words but {len(tags)} tags",
                )
            word_ids = encoded.word_ids(row)
            kept = 1 + max((word for word in word_ids if word is not None), default=-1)
            if kept < len(tags) and not self.truncate_long_sentences:
                raise BuildError(
                    "max_length",
                    f"{self._row(batch, column, row)}: {len(tags)} words are more than {max_length} sub-tokens; "
                    f"{len(tags) - kept} would be cut. Set [task] truncate_long_sentences = true to train on "
                    "the words that fit, or split the sentence",
                )
            labels.append(
                labels_on_every_sub_token(word_ids, tags, inside)
                if inside is not None
                else labels_on_first_sub_tokens(word_ids, tags)
            )
        encoded["labels"] = labels
        return encoded

    def encoding_note(self, data: TaskData, encoded: Mapping[str, Dataset], tokenizer: Any) -> str | None:
        """With `truncate_long_sentences`: the words cut off the end of sentences that did not fit,
        which are neither trained on nor scored (None when every word fit)."""
        if not self.truncate_long_sentences:
            return None  # encode refused any sentence that would be cut
        [column] = data.text_columns
        lost: dict[str, int] = {}
        sentences = 0
        for key, split in encoded.items():
            every_sub_token = self.label_all_tokens and key == "train"
            kept = words_kept(data.splits[key][column], split, tokenizer, every_sub_token=every_sub_token)
            cut = [len(tags) - words for tags, words in zip(data.splits[key]["label"], kept, strict=True)]
            sentences += sum(1 for words in cut if words > 0)
            if sum(cut):
                lost[key] = sum(cut)
        if not lost:
            return None
        per_split = ", ".join(f"{key} {words}" for key, words in lost.items())
        its = "its" if sentences == 1 else "their"
        plural = "" if sentences == 1 else "s"
        return (
            f"truncate_long_sentences: {sentences} sentence{plural} cut, {sum(lost.values())} of {its} words "
            f"left out ({per_split})"
        )

    def _inside_ids(self) -> list[int]:
        """For each tag id, the id a word's later sub-tokens get: `I-X` for `B-X`, else the same."""
        names = self.label_names or ()
        ids = {name: i for i, name in enumerate(names)}
        return [ids.get(f"I-{name[2:]}", i) if name.startswith("B-") else i for i, name in enumerate(names)]

    @staticmethod
    def _row(batch: Mapping[str, list[Any]], column: str, row: int) -> str:
        """Where a row of a batch came from, when the dataset says; else its first words."""
        if ROW_SOURCE in batch:
            return str(batch[ROW_SOURCE][row])
        return f'the sentence "{_opening(batch[column][row])}"'

    # ---- predictions ------------------------------------------------------------------------------

    def decode(self, outputs: tuple[Any, ...]) -> tuple[Any, Any]:
        """A tag id per sub-token and its probability."""
        import torch

        scores, predictions = torch.softmax(outputs[0].float(), dim=-1).max(dim=-1)
        return predictions, scores

    def prediction_columns(
        self, predictions: Any, scores: Any, references: Any, data: TaskData
    ) -> dict[str, Sequence[Any]]:
        """`words` and `tags` (separated by spaces: a tag per word, in IOB2; `O` for words cut
        off), `entities` (a JSON list of {type, start, end, words, score}: word positions, end
        exclusive, and the mean probability of the entity's tags) and, when the dataset says
        where each sentence came from, `source` ("test.txt:17")."""
        [column], rows = data.text_columns, data.splits["test"]
        words_column, tags_column, entities_column = [], [], []
        for words, predicted, probability, reference in zip(rows[column], predictions, scores, references, strict=True):
            starts = reference != IGNORED
            tags = to_iob2([self._name(i) for i in predicted[starts]] + [OUTSIDE] * (len(words) - starts.sum()))
            word_scores = [float(p) for p in probability[starts]]
            words_column.append(" ".join(words))
            tags_column.append(" ".join(tags))
            entities_column.append(json.dumps(_entities(words, tags, word_scores), ensure_ascii=False))
        source = {"source": rows[ROW_SOURCE]} if ROW_SOURCE in rows.column_names else {}
        return {**source, "words": words_column, "tags": tags_column, "entities": entities_column}

    def predict(
        self, texts: Sequence[Sequence[Any]], *, model: Any, tokenizer: Any, max_length: int | None, probabilities: bool
    ) -> Mapping[str, Sequence[Any]]:
        """`words` and `tags` (separated by spaces) and `entities`, a list of {type, text, start,
        end, score} per row (JSON text in a CSV file), `start` and `end` the characters of the row's text the entity
        spans (`text[start:end]`). A row is text, split into words as the tokenizer's
        pre-tokenizer splits it (which is what the pipeline of the MLflow model does), or a list
        of words, whose text is the words joined by spaces."""
        import torch

        if probabilities:
            raise ValueError("each entity carries its score; there is no probability per class to add")
        [column] = texts
        rows = [words_of(value, tokenizer) for value in column]
        # A word the model does not see (cut off by max_length) is O.
        tags = [[OUTSIDE] * len(words) for words, _, _ in rows]
        scores = [[0.0] * len(words) for words, _, _ in rows]
        worded = [i for i, (words, _, _) in enumerate(rows) if words]
        if worded:
            encoded = sub_tokens(
                tokenizer,
                [rows[i][0] for i in worded],
                truncation=max_length is not None,
                max_length=max_length,
                padding=True,
                return_tensors="pt",
            )
            word_ids = [encoded.word_ids(position) for position in range(len(worded))]
            probability, ids = torch.softmax(model(**encoded.to(model.device)).logits.float(), dim=-1).max(dim=-1)
            for position, row in enumerate(worded):
                for token in first_sub_tokens(word_ids[position]):
                    word = word_ids[position][token]
                    tags[row][word] = self._name(ids[position, token])
                    scores[row][word] = float(probability[position, token])
        columns: dict[str, list[Any]] = {"words": [], "tags": [], "entities": []}
        for (words, spans, text), row_tags, row_scores in zip(rows, tags, scores, strict=True):
            row_tags = to_iob2(row_tags)
            entities = [
                {
                    "type": entity["type"],
                    "text": text[spans[entity["start"]][0] : spans[entity["end"] - 1][1]],
                    "start": spans[entity["start"]][0],
                    "end": spans[entity["end"] - 1][1],
                    "score": entity["score"],
                }
                for entity in _entities(words, row_tags, row_scores)
            ]
            columns["words"].append(" ".join(words))
            columns["tags"].append(" ".join(row_tags))
            columns["entities"].append(entities)
        return columns

    def prediction_stats(self, predictions: Any, references: Any) -> PredictionStats:
        """The share of words given each tag (its first sub-token's), and the share each tag has."""
        import numpy as np

        words = np.asarray(references) != IGNORED
        return PredictionStats.of_classes(
            np.asarray(predictions)[words], np.asarray(references)[words], len(self.label_names or ()), unit="words"
        )

    def baseline(self, data: TaskData) -> Baseline:
        """Every word tagged `O`: no entity found, entity F1 0."""
        import numpy as np

        references = _padded(data.splits["eval"]["label"])
        return Baseline(np.where(references == IGNORED, IGNORED, 0), '"O" (no entity)', references)

    def _name(self, tag_id: Any) -> str:
        names = self.label_names or ()
        return names[int(tag_id)] if 0 <= int(tag_id) < len(names) else OUTSIDE

    # ---- export -----------------------------------------------------------------------------------

    def export(self, data: TaskData, max_length: int | None) -> Export:
        """The token-classification pipeline: sentences in, their entities out."""
        from mlflow.models import ModelSignature
        from mlflow.types import ColSpec, Schema

        [column] = data.text_columns
        rows = data.splits["eval"].select(range(min(2, len(data.splits["eval"]))))
        signature = ModelSignature(Schema([ColSpec("string")]))
        return Export(
            PIPELINE_TASK,
            signature.to_dict(),
            [" ".join(words) for words in rows[column]],
            {"aggregation_strategy": "first"},
        )

    # ---- xp init ----------------------------------------------------------------------------------

    def propose(self, splits: Mapping[str, Dataset | None], text_columns: Any, label_column: Any) -> Proposal:
        """The column of words and the column of tags (as given, else `word_and_tag_columns`),
        the entity types and the scheme the tags are in, seqeval's scores, and no max_length (the
        model's own limit, so that no sentence is cut)."""
        train = splits["train"]
        assert train is not None
        found = word_and_tag_columns(train)
        words = text_columns[0] if text_columns else found and found[0]
        tags = label_column or (found and found[1])
        if not words or not tags:
            raise BuildError(
                "text_columns" if not words else "label_column",
                "token classification reads a column of words and a column of tags, a list of each per row; "
                f"name them with --text-columns and --label-column. Columns: {guess.columns_text(train)}",
            )
        labelled = {k: s for k, s in splits.items() if s is not None and tags in s.column_names}
        read, _ = self.read_targets(labelled, [tags], None, text_columns=[words])
        scheme = f", read as {read.scheme}" if read.scheme != "IOB2" else ""
        types = read.entity_types
        return Proposal(
            text_columns=(words,),
            columns=(words, tags),
            dataset=(
                ("text_columns", [words], "a list of words per row"),
                ("label_column", tags, f"a tag per word: {len(types)} entity types"),
            ),
            test_labelled="test" in splits and splits["test"] is not None,
            inputs=f"{words} (a sentence's words)",
            targets=f"{tags}, {len(types)} entity types ({', '.join(types)}){scheme}",
            metrics=(("use", ["seqeval"], "entity f1, precision, recall; f1_<type> per entity type; accuracy"),),
            model="The pretrained model, with a new token-classification head sized from the tags.",
            max_length=None,
        )


# The usual names of a hub dataset's columns of words and of tags (conll2003, wnut_17, ...).
def _padded(rows: Sequence[Sequence[int]]) -> Any:
    import numpy as np

    width = max((len(row) for row in rows), default=0)
    table = np.full((len(rows), width), IGNORED, dtype=np.int64)
    for i, row in enumerate(rows):
        table[i, : len(row)] = row
    return table


def _entities(words: Sequence[str], tags: Sequence[str], scores: Sequence[float]) -> list[dict[str, Any]]:
    """The entities IOB2 tags mark: a `B-` (or an `I-` after another type, or after `O`) opens one,
    an `I-` of the same type continues it."""
    entities: list[dict[str, Any]] = []
    for position, tag in enumerate(tags):
        parts = split_tag(tag)
        if parts is None:
            continue
        prefix, entity_type = parts
        last = entities[-1] if entities else None
        if prefix == "I" and last is not None and last["type"] == entity_type and last["end"] == position:
            last["end"] = position + 1
            last["_scores"].append(scores[position] if position < len(scores) else 0.0)
            continue
        entities.append(
            {
                "type": entity_type,
                "start": position,
                "end": position + 1,
                "_scores": [scores[position] if position < len(scores) else 0.0],
            }
        )
    return [
        {
            "type": entity["type"],
            "start": entity["start"],
            "end": entity["end"],
            "words": " ".join(words[entity["start"] : entity["end"]]),
            "score": round(sum(entity["_scores"]) / len(entity["_scores"]), 6),
        }
        for entity in entities
    ]


def _opening(words: Sequence[str]) -> str:
    text = " ".join(words[:8])
    return text + (" ..." if len(words) > 8 else "")


def token_classification(
    *,
    label_all_tokens: Annotated[
        bool,
        Field(
            description="train on every sub-token of a word (a B- tag as I- after the first), as run_ner.py's "
            "label_all_tokens; scores and predictions still read each word's first sub-token"
        ),
    ] = False,
    truncate_long_sentences: Annotated[
        bool,
        Field(
            description="train on the words of a sentence that fit the model and leave out the rest; "
            "by default a sentence that does not fit is an error"
        ),
    ] = False,
) -> TokenClassification:
    """A tag per word (named-entity recognition), scored per entity; AutoModelForTokenClassification.

    Reads a column of word lists (the dataset's text column) and a column of tag lists (IOB1,
    IOB2 or BIOES tag names, `ClassLabel` names, or integer ids named by `label_names`), converted
    to IOB2."""
    return TokenClassification(truncate_long_sentences=truncate_long_sentences, label_all_tokens=label_all_tokens)

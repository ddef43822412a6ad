"""Token classification as the course teaches it: CoNLL files and hub-layout tag columns read into
the same IOB2 tag ids, a word's tag on its first sub-token only (or on all of them in training,
when asked), labels padded with -100, entity scores as seqeval computes them; and every file
problem named with its file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracker.errors import BuildError
from xp_plugins.collator import dynamic_padding
from xp_plugins.dataset import hf
from xp_plugins.dataset_conll import conll
from xp_plugins.entity_metric import seqeval
from xp_plugins.tasks.token_classification import IGNORED, token_classification
from xp_plugins.tasks.word_pieces import words_of

SLICE = Path(__file__).resolve().parents[1] / "data" / "conll2003"
TAGS = ("O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER")


def write_conll(path: Path, sentences: list[list[tuple[str, str]]], *, columns: int = 2, newline: str = "\n") -> Path:
    """Sentences of (word, tag) as a CoNLL file: 2 tab-separated columns, or 4 separated by spaces."""
    lines = []
    for sentence in sentences:
        for word, tag in sentence:
            lines.append(f"{word}\t{tag}" if columns == 2 else f"{word} NNP I-NP {tag}")
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(newline.join(lines).encode())
    return path


def folder_of(tmp_path: Path, train, valid, test=None, **kwargs) -> Path:
    write_conll(tmp_path / "train.txt", train, **kwargs)
    write_conll(tmp_path / "valid.txt", valid, **kwargs)
    if test is not None:
        write_conll(tmp_path / "test.txt", test, **kwargs)
    return tmp_path


PEOPLE = [[("John", "B-PER"), ("Smith", "I-PER"), ("visited", "O"), ("Paris", "B-LOC")], [("Hello", "O")]]


@pytest.fixture(scope="module")
def tokenizer(minilm_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path)


# ---- reading the data -------------------------------------------------------------------------------


def test_the_shipped_slice_reads_into_iob2_tag_ids_with_the_rows_file_and_line():
    data = conll(token_classification(), 0, path=str(SLICE))
    assert data.task.label_names == TAGS
    assert data.text_columns == ("tokens",)
    assert [len(data.splits[key]) for key in ("train", "eval", "test")] == [300, 150, 150]
    first = data.splits["train"][0]
    assert first["tokens"][:2] == ["Germany", "imported"]
    assert first["label"][:2] == [TAGS.index("B-LOC"), TAGS.index("O")]
    assert first["row_source"] == f"{SLICE / 'train.txt'}:1"
    assert data.test_has_labels
    assert data.task.describe() == "9 tags: 4 entity types (LOC, MISC, ORG, PER)"


def test_both_conll_layouts_and_every_scheme_give_the_same_rows(tmp_path):
    """2 tab-separated columns in IOB2 with CRLF; 4 space-separated columns in IOB1 after a
    -DOCSTART- line; BIOES: the same words, the same IOB2 tag ids."""
    iob2 = [[("John", "B-PER"), ("Smith", "I-PER"), ("met", "O"), ("Ann", "B-PER"), ("Lee", "B-PER")]]
    iob1 = [[("John", "I-PER"), ("Smith", "I-PER"), ("met", "O"), ("Ann", "I-PER"), ("Lee", "B-PER")]]
    bioes = [[("John", "B-PER"), ("Smith", "E-PER"), ("met", "O"), ("Ann", "S-PER"), ("Lee", "S-PER")]]
    tab = conll(token_classification(), 0, path=str(folder_of(tmp_path / "tab", iob2, iob2, newline="\r\n")))
    spaced_folder = folder_of(tmp_path / "spaced", iob1, iob1, columns=4)
    for name in ("train.txt", "valid.txt"):
        file = spaced_folder / name
        file.write_text("-DOCSTART- -X- -X- O\n\n" + file.read_text())
    spaced = conll(token_classification(), 0, path=str(spaced_folder))
    bioes_data = conll(token_classification(), 0, path=str(folder_of(tmp_path / "bioes", bioes, bioes)))

    for data in (spaced, bioes_data):
        assert data.task.label_names == tab.task.label_names == ("O", "B-PER", "I-PER")
        assert data.splits["train"]["tokens"] == tab.splits["train"]["tokens"]
        assert data.splits["train"]["label"] == tab.splits["train"]["label"] == [[1, 2, 0, 1, 1]]
    assert spaced.task.describe().endswith("read as IOB1")
    assert bioes_data.task.describe().endswith("read as BIOES")


def test_data_files_name_the_splits_files_of_other_names(tmp_path):
    write_conll(tmp_path / "eng.train", PEOPLE)
    write_conll(tmp_path / "eng.testa", PEOPLE)
    data = conll(
        token_classification(), 0, path=str(tmp_path), data_files={"train": "eng.train", "validation": "eng.testa"}
    )
    assert set(data.splits) == {"train", "eval"}
    assert data.splits["eval"]["row_source"] == [f"{tmp_path / 'eng.testa'}:1", f"{tmp_path / 'eng.testa'}:6"]


def test_hub_layout_tag_columns_read_as_the_conll_files_do(tmp_path):
    """A parquet folder whose tags are ClassLabel ids (as the hub's conll2003), and JSON Lines
    files of tag strings: the same tag ids as the CoNLL file."""
    from datasets import ClassLabel, Dataset, Features, List, Value

    expected = conll(token_classification(), 0, path=str(SLICE), max_rows={"train": 40, "eval": 20, "test": 20})
    names = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]  # the hub's order
    features = Features({"tokens": List(Value("string")), "ner_tags": List(ClassLabel(names=names))})
    parquet, jsonl = tmp_path / "parquet" / "data", tmp_path / "jsonl"
    parquet.mkdir(parents=True)
    jsonl.mkdir()
    for key, split in (("train", "train"), ("eval", "validation"), ("test", "test")):
        rows = expected.splits[key]
        tags = [[TAGS[i] for i in row] for row in rows["label"]]
        ids = [[names.index(tag) for tag in row] for row in tags]
        Dataset.from_dict({"tokens": rows["tokens"], "ner_tags": ids}, features=features).to_parquet(
            parquet / f"{split}-00000-of-00001.parquet"
        )
        Dataset.from_dict({"tokens": rows["tokens"], "ner_tags": tags}).to_json(jsonl / f"{split}.jsonl")

    from_parquet = hf(
        token_classification(),
        0,
        path=str(parquet.parent),
        text_columns=["tokens"],
        label_column="ner_tags",
        test_split="test",
    )
    from_json = hf(
        token_classification(),
        0,
        path="json",
        text_columns=["tokens"],
        label_column="ner_tags",
        test_split="test",
        data_files={split: str(jsonl / f"{split}.jsonl") for split in ("train", "validation", "test")},
    )
    for data in (from_parquet, from_json):
        assert data.task.label_names == TAGS
        for key in ("train", "eval", "test"):
            assert data.splits[key]["label"] == expected.splits[key]["label"], key


def test_max_rows_samples_sentences_with_the_seed():
    first = conll(token_classification(), 0, path=str(SLICE), max_rows={"train": 50})
    again = conll(token_classification(), 0, path=str(SLICE), max_rows={"train": 50})
    other = conll(token_classification(), 1, path=str(SLICE), max_rows={"train": 50})
    assert len(first.splits["train"]) == 50
    assert first.splits["train"]["row_source"] == again.splits["train"]["row_source"]
    assert first.splits["train"]["row_source"] != other.splits["train"]["row_source"]
    assert first.task.label_names == TAGS  # the tags are read before the sample


@pytest.mark.parametrize(
    ("valid", "key", "says"),
    [
        ([[("Acme", "B-ORG")]], "path", "valid.txt:1: the entity type ORG is in the validation split but never in"),
        ([[("Acme", "X-ORG")]], "path", 'valid.txt:1: tag "X-ORG" is in no scheme xp reads'),
        ([[("Acme", "B-PER")], [("alone",)]], "path", "valid.txt:3: one column ('alone')"),
    ],
)
def test_a_bad_file_is_named_with_its_line(tmp_path, valid, key, says):
    folder = folder_of(tmp_path, PEOPLE, [])
    (folder / "valid.txt").write_text(
        "\n\n".join("\n".join("\t".join(cells) for cells in sentence) for sentence in valid) + "\n"
    )
    with pytest.raises(BuildError) as raised:
        conll(token_classification(), 0, path=str(folder))
    assert raised.value.key == key
    assert says in raised.value.message
    assert str(folder / "valid.txt") in raised.value.message


def test_a_folder_without_a_validation_file_says_which_names_it_looked_for(tmp_path):
    write_conll(tmp_path / "train.txt", PEOPLE)
    with pytest.raises(BuildError, match=r"no validation file: expected valid.txt or validation.txt or dev.txt in"):
        conll(token_classification(), 0, path=str(tmp_path))


def test_training_data_with_no_entity_is_refused(tmp_path):
    folder = folder_of(tmp_path, [[("Hello", "O")]], [[("Hi", "O")]])
    with pytest.raises(BuildError, match="name no entity"):
        conll(token_classification(), 0, path=str(folder))


# ---- tokenization -----------------------------------------------------------------------------------


def test_a_words_tag_goes_on_its_first_sub_token_and_minus_100_everywhere_else(tokenizer):
    from datasets import Dataset

    split = Dataset.from_dict({"tokens": [["Huggingface", "hired", "Ann"]], "tags": [["B-ORG", "O", "B-PER"]]})
    task_read, splits = token_classification().read_targets({"train": split}, ["tags"], None, text_columns=["tokens"])
    encoded = task_read.encode(
        splits["train"][:1],
        tokenizer=tokenizer,
        text_columns=["tokens"],
        options={"truncation": True, "max_length": 32},
        split="train",
    )
    pieces = tokenizer.convert_ids_to_tokens(encoded["input_ids"][0])
    labels = encoded["labels"][0]
    names = task_read.label_names
    assert pieces[0] == "[CLS]" and pieces[-1] == "[SEP]"
    tagged = [(piece, names[label]) for piece, label in zip(pieces, labels, strict=True) if label != IGNORED]
    assert tagged == [("hugging", "B-ORG"), ("hired", "O"), ("ann", "B-PER")]
    assert len(pieces) > len(tagged) + 2  # "huggingface" is several sub-tokens; only its first is tagged
    assert labels[0] == labels[-1] == IGNORED


def test_a_word_the_tokenizer_turns_into_nothing_keeps_its_place_as_the_unknown_token(tokenizer):
    """BERT's normalizer removes a zero-width space and a soft hyphen: without a sub-token of their
    own, the tags read back from first sub-tokens would shift by a word after them."""
    from datasets import Dataset

    words = ["John", "\u200b", "visited", "Paris", "\u00ad"]
    split = Dataset.from_dict({"tokens": [words], "tags": [["B-PER", "O", "O", "B-LOC", "O"]]})
    task_read, splits = token_classification().read_targets({"train": split}, ["tags"], None, text_columns=["tokens"])
    # No max_length: the last word, gone, must not read as a sentence cut short.
    encoded = task_read.encode(
        splits["train"][:1], tokenizer=tokenizer, text_columns=["tokens"], options={}, split="eval"
    )
    pieces = tokenizer.convert_ids_to_tokens(encoded["input_ids"][0])
    names = task_read.label_names
    tagged = [
        (piece, names[label]) for piece, label in zip(pieces, encoded["labels"][0], strict=True) if label != IGNORED
    ]
    assert tagged == [("john", "B-PER"), ("[UNK]", "O"), ("visited", "O"), ("paris", "B-LOC"), ("[UNK]", "O")]


@pytest.fixture(scope="module")
def byte_level_tokenizer(tmp_path_factory):
    """A RoBERTa-style tokenizer (byte-level BPE, no space added before the text), trained here on
    a few sentences: no such checkpoint ships, and the hub is out of reach."""
    import json

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import AutoTokenizer

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.train_from_iterator(
        ["John Smith visited Paris and Zürich with Ann."] * 20,
        trainers.BpeTrainer(
            vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        ),
    )
    backend.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), add_prefix_space=False)
    folder = tmp_path_factory.mktemp("byte-level")
    backend.save(str(folder / "tokenizer.json"))
    (folder / "config.json").write_text(json.dumps({"model_type": "roberta"}))
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "RobertaTokenizer",
                **dict(zip(("bos_token", "pad_token", "eos_token", "unk_token", "mask_token"), specials, strict=True)),
            }
        )
    )
    return AutoTokenizer.from_pretrained(folder)


def test_a_byte_level_tokenizer_splits_each_word_as_it_splits_it_inside_a_sentence(byte_level_tokenizer):
    from datasets import Dataset

    tokenizer = byte_level_tokenizer
    # How the sentence's later words are split, each with the space before it.
    in_a_sentence = tokenizer.tokenize("Ann visited Zürich")[len(tokenizer.tokenize("Ann")) :]
    split = Dataset.from_dict({"tokens": [["visited", "Zürich"]], "tags": [["O", "B-LOC"]]})
    task_read, splits = token_classification().read_targets({"train": split}, ["tags"], None, text_columns=["tokens"])
    encoded = task_read.encode(
        splits["train"][:1], tokenizer=tokenizer, text_columns=["tokens"], options={}, split="eval"
    )
    pieces = tokenizer.convert_ids_to_tokens(encoded["input_ids"][0])
    assert pieces[1:-1] == in_a_sentence and in_a_sentence[0].startswith("Ġ")  # Ġ: the space, as a byte
    names = task_read.label_names
    assert [names[label] for label in encoded["labels"][0] if label != IGNORED] == ["O", "B-LOC"]


@pytest.mark.parametrize("name", ["wordpiece", "byte-level"])
def test_raw_text_is_split_into_words_whose_characters_slice_it(name, tokenizer, byte_level_tokenizer):
    text = "John Smith visited  Zürich, with Ann."
    words, spans, same = words_of(text, {"wordpiece": tokenizer, "byte-level": byte_level_tokenizer}[name])
    assert words == ["John", "Smith", "visited", "Zürich", ",", "with", "Ann", "."] and same == text
    assert [text[start:end] for start, end in spans] == words


def test_label_all_tokens_tags_every_sub_token_of_a_training_sentence_and_scores_words_as_before(tokenizer):
    from datasets import Dataset

    split = Dataset.from_dict(
        {"tokens": [["Huggingface", "hired", "Ann", "Huggingface"]], "tags": [["B-ORG", "O", "B-PER", "I-PER"]]}
    )
    task_read, splits = token_classification(label_all_tokens=True).read_targets(
        {"train": split}, ["tags"], None, text_columns=["tokens"]
    )
    names = task_read.label_names

    def tagged(split_name):
        encoded = task_read.encode(
            splits["train"][:1], tokenizer=tokenizer, text_columns=["tokens"], options={}, split=split_name
        )
        pieces = tokenizer.convert_ids_to_tokens(encoded["input_ids"][0])
        return [
            (piece, names[label]) for piece, label in zip(pieces, encoded["labels"][0], strict=True) if label != IGNORED
        ]

    # As run_ner.py's label_all_tokens: a B- tag continues as I- on the word's later sub-tokens.
    assert tagged("train") == [
        ("hugging", "B-ORG"),
        ("##face", "I-ORG"),
        ("hired", "O"),
        ("ann", "B-PER"),
        ("hugging", "I-PER"),
        ("##face", "I-PER"),
    ]
    # Validation and test sentences keep a tag per word: scores and predictions count words.
    assert (
        tagged("eval")
        == tagged("test")
        == [("hugging", "B-ORG"), ("hired", "O"), ("ann", "B-PER"), ("hugging", "I-PER")]
    )


def test_the_collator_pads_labels_with_minus_100(tokenizer):
    task = token_classification()
    collate = dynamic_padding(tokenizer, task)
    batch = collate(
        [
            {"input_ids": [101, 7592, 102], "attention_mask": [1, 1, 1], "labels": [-100, 1, -100]},
            {"input_ids": [101, 102], "attention_mask": [1, 1], "labels": [-100, -100]},
        ]
    )
    assert batch["labels"].tolist() == [[-100, 1, -100], [-100, -100, -100]]


def test_a_sentence_longer_than_the_model_is_named_unless_truncation_is_asked_for(tmp_path, tokenizer):
    from datasets import Dataset

    long = [[(f"word{i}", "O") for i in range(40)] + [("Paris", "B-LOC")]]  # "word12": 2 sub-tokens
    folder = folder_of(tmp_path, PEOPLE, PEOPLE + long)
    for truncate in (False, True):
        data = conll(token_classification(truncate_long_sentences=truncate), 0, path=str(folder))
        batch = data.splits["eval"][:]
        options = {"truncation": True, "max_length": 32}
        if not truncate:
            with pytest.raises(BuildError) as raised:
                data.task.encode(batch, tokenizer=tokenizer, text_columns=["tokens"], options=options, split="eval")
            assert raised.value.key == "max_length"
            assert raised.value.message.startswith(
                f"{folder / 'valid.txt'}:8: 41 words are more than 32 sub-tokens; 26 would be cut"
            )
            assert "truncate_long_sentences = true" in raised.value.message
        else:
            encoded = data.task.encode(
                batch, tokenizer=tokenizer, text_columns=["tokens"], options=options, split="eval"
            )
            assert len(encoded["input_ids"][2]) == 32
            note = data.task.encoding_note(data, {"eval": Dataset.from_dict(dict(encoded))}, tokenizer)
            assert note == "truncate_long_sentences: 1 sentence cut, 26 of its words left out (eval 26)"


def test_words_cut_from_a_sentence_tagged_on_every_sub_token_are_counted_as_words(tmp_path, tokenizer):
    from datasets import Dataset

    long = [[(f"word{i}", "O") for i in range(40)] + [("Paris", "B-LOC")]]  # "word12": 2 sub-tokens
    folder = folder_of(tmp_path, PEOPLE + long, PEOPLE + long)
    data = conll(token_classification(truncate_long_sentences=True, label_all_tokens=True), 0, path=str(folder))
    options = {"truncation": True, "max_length": 32}
    encoded = {
        key: Dataset.from_dict(
            dict(
                data.task.encode(
                    data.splits[key][:], tokenizer=tokenizer, text_columns=["tokens"], options=options, split=key
                )
            )
        )
        for key in ("train", "eval")
    }
    assert sum(label != IGNORED for label in encoded["train"]["labels"][2]) == 30  # sub-tokens, not words
    note = data.task.encoding_note(data, encoded, tokenizer)
    assert note == "truncate_long_sentences: 2 sentences cut, 52 of their words left out (train 26, eval 26)"


# ---- scores -----------------------------------------------------------------------------------------


def test_entity_scores_are_seqeval_s_over_the_words_and_per_entity_type():
    import numpy as np
    from seqeval.metrics import classification_report

    data = conll(token_classification(), 0, path=str(SLICE), max_rows={"eval": 1})
    metric = seqeval(data)
    names = data.task.label_names
    ids = {name: i for i, name in enumerate(names)}
    true = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    predicted = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O"]]
    # As the runners hand them over: -100 on later sub-tokens, special tokens and padding.
    references = np.array(
        [
            [IGNORED, ids["B-PER"], ids["I-PER"], IGNORED, ids["O"], ids["B-LOC"], IGNORED],
            [IGNORED, ids["B-ORG"], ids["O"], IGNORED, IGNORED, IGNORED, IGNORED],
        ]
    )
    predictions = np.array(
        [
            [0, ids["B-PER"], ids["I-PER"], ids["B-LOC"], ids["O"], ids["B-ORG"], 0],
            [0, ids["B-ORG"], ids["O"], 0, IGNORED, IGNORED, IGNORED],
        ]
    )
    scores = metric.compute(predictions, references)
    assert metric.greater_is_better is True
    assert all(type(score) is float for score in scores.values())
    report = classification_report(true, predicted, output_dict=True, zero_division=0)
    assert scores["f1"] == pytest.approx(report["micro avg"]["f1-score"]) == pytest.approx(2 / 3)
    assert scores["precision"] == pytest.approx(2 / 3) and scores["recall"] == pytest.approx(2 / 3)
    assert scores["accuracy"] == pytest.approx(5 / 6)
    assert scores["f1_PER"] == 1.0 and scores["f1_LOC"] == 0.0 and scores["f1_ORG"] == pytest.approx(2 / 3)
    assert scores["f1_MISC"] == 0.0  # a type of the data this split lacks: still reported
    assert list(scores)[:4] == ["f1", "precision", "recall", "accuracy"]


# ---- the diagnosis ----------------------------------------------------------------------------------


def test_a_model_that_tags_every_word_o_is_diagnosed_as_not_learning_and_scores_as_the_baseline():
    import numpy as np

    from tracker.diagnosis import Curves, Evidence, diagnose

    data = conll(token_classification(), 0, path=str(SLICE))
    baseline = data.task.baseline(data)
    references = baseline.references
    assert baseline.described == '"O" (no entity)'
    assert np.array_equal(baseline.predictions == IGNORED, references == IGNORED)  # the words alone
    # As the runners hand them over: special tokens and later sub-tokens are -100 in the references.
    padded = np.full((len(references), references.shape[1] + 2), IGNORED)
    padded[:, 1:-1] = references
    all_o = np.zeros_like(padded)
    scores = seqeval(data).compute(all_o, padded)
    assert scores["f1"] == scores["precision"] == scores["recall"] == 0.0
    assert scores == seqeval(data).compute(baseline.predictions, references)

    stats = data.task.prediction_stats(all_o, padded)
    falling = tuple((10 * (i + 1), loss) for i, loss in enumerate((1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.2)))
    evaluations = tuple((30 * (i + 1), {"eval_loss": loss, "eval_f1": 0.0}) for i, loss in enumerate((0.7, 0.6, 0.5)))
    diagnosis = diagnose(Evidence(Curves(falling, evaluations), stats, {"eval_f1": 0.0}, data.task.label_names))
    assert diagnosis.verdict == "not_learning"
    share = float(np.mean(references[references != IGNORED] == 0))
    assert diagnosis.reason == (
        f'the model predicts "O" for 100.0% of the validation words, which have {share:.1%} of it'
    )

"""The `seq2seq` task, the `rouge` metric and the `encoder_decoder` model, piece by piece: which
targets are trained on and which are scored, how sources and targets are encoded, what is reported
before training, how ROUGE is computed, what the diagnosis sees of generations."""

from __future__ import annotations

import pytest
from datasets import Dataset

from tracker.errors import BuildError
from xp_plugins.rouge_metric import RougeScores, sentences_on_lines
from xp_plugins.tasks.generation import Decoding, generation_stats, texts_of
from xp_plugins.tasks.seq2seq import PAD, Seq2SeqGeneration, source_text


@pytest.fixture(scope="module")
def minilm_tokenizer(minilm_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path)


def splits(**rows: list[dict]) -> dict[str, Dataset]:
    return {key: Dataset.from_list(values) for key, values in rows.items()}


TRAIN = [
    {"source": ["First sentence.", "Second one."], "target": ["the only reference"]},
    {"source": ["Another abstract."], "target": ["a reference"]},
]
EVAL = [{"source": "A plain text source.", "target": ["first reference", "second reference"]}]


def read(task=None, **rows):
    task = task or Seq2SeqGeneration()
    return task.read_targets(splits(**rows), ["target"], None, text_columns=["source"])


def test_every_reference_is_kept_for_scoring_and_a_text_target_is_one_reference():
    _, read_splits = read(train=TRAIN, eval=EVAL, test=[{"source": "x", "target": "just one"}])
    assert read_splits["eval"]["label"] == [["first reference", "second reference"]]
    assert read_splits["test"]["label"] == [["just one"]]


def test_a_test_split_without_targets_is_predicted_not_scored():
    task, read_splits = read(train=TRAIN, eval=EVAL, test=[{"source": "x"}])
    assert read_splits["test"]["label"] == [None]
    assert not task.is_labelled(read_splits["test"])
    assert task.is_labelled(read_splits["eval"])


def test_a_test_split_with_rows_without_references_is_predicted_whole_not_scored():
    task, read_splits = read(
        train=TRAIN, eval=EVAL, test=[{"source": "x", "target": ["y"]}, {"source": "z", "target": []}]
    )
    assert read_splits["test"]["label"] == [None, None]
    assert not task.is_labelled(read_splits["test"])


def test_a_row_without_a_reference_or_a_source_is_refused_with_its_row():
    with pytest.raises(
        BuildError, match=r'1 row\(s\) of the training split have no reference text in "target" \(rows 1\)'
    ):
        read(train=[TRAIN[0], {"source": ["x"], "target": [""]}], eval=EVAL)
    with pytest.raises(BuildError, match=r'have no source text in "source" \(rows 0\)') as error:
        read(train=TRAIN, eval=[{"source": [], "target": ["y"]}])
    assert error.value.key == "text_columns"


def test_one_source_and_one_target_column():
    with pytest.raises(BuildError, match="one source column"):
        Seq2SeqGeneration().read_targets(splits(train=TRAIN), ["target"], None, text_columns=["a", "b"])
    with pytest.raises(BuildError, match="one column of targets, not 2"):
        Seq2SeqGeneration().read_targets(splits(train=TRAIN), ["a", "b"], None, text_columns=["source"])


def test_a_source_given_as_sentences_is_one_text():
    assert source_text(["One.", "Two."]) == "One. Two."
    assert source_text("Already a text.") == "Already a text."


def test_the_first_reference_is_trained_on_cut_at_max_target_length(minilm_tokenizer):
    task = Seq2SeqGeneration(prefix="summarize: ", max_target_length=2)
    _, read_splits = read(task, train=TRAIN, eval=EVAL)
    batch = read_splits["eval"].to_dict()
    encoded = task.encode(
        batch,
        tokenizer=minilm_tokenizer,
        text_columns=["source"],
        options={"truncation": True, "max_length": 16},
        split="eval",
    )
    assert (
        minilm_tokenizer.decode(encoded["input_ids"][0], skip_special_tokens=True) == "summarize : a plain text source."
    )
    # "first reference" cut at 2 tokens: the second reference is for scoring only. [CLS] opens the
    # decoder (its start token): it is not learnt.
    assert minilm_tokenizer.convert_ids_to_tokens(encoded["labels"][0]) == ["first", "[SEP]"]


def test_padded_target_positions_count_in_no_loss(minilm_tokenizer):
    task = Seq2SeqGeneration(max_target_length=8)
    _, read_splits = read(task, train=TRAIN, eval=EVAL)
    options = {"truncation": True, "max_length": 16, "padding": "max_length"}
    encoded = task.encode(
        read_splits["train"].to_dict(),
        tokenizer=minilm_tokenizer,
        text_columns=["source"],
        options=options,
        split="train",
    )
    assert [len(row) for row in encoded["labels"]] == [8, 8]
    assert encoded["labels"][1][-1] == PAD and minilm_tokenizer.pad_token_id not in encoded["labels"][1]


def test_targets_longer_than_max_target_length_are_counted_before_training(minilm_tokenizer):
    from tracker.components import TaskData

    task = Seq2SeqGeneration(max_target_length=2)
    _, read_splits = read(task, train=TRAIN, eval=EVAL)
    data = TaskData(read_splits, ("source",), task)
    note = task.encoding_note(data, {}, minilm_tokenizer)
    assert (
        note
        == "2 of 2 training targets and 1 of 1 validation targets are longer than max_target_length = 2 tokens, and cut"
    )
    assert Seq2SeqGeneration(max_target_length=64).encoding_note(data, {}, minilm_tokenizer) is None


def test_greedy_decoding_is_given_no_length_penalty():
    assert Decoding(1, 20, 0, 0, 2.0).generate_options() == {"num_beams": 1, "max_new_tokens": 20}
    assert Decoding(4, 20, 5, 3, 2.0).generate_options() == {
        "num_beams": 4,
        "max_new_tokens": 20,
        "min_new_tokens": 5,
        "no_repeat_ngram_size": 3,
        "length_penalty": 2.0,
    }


def test_generated_ids_padded_across_batches_read_as_text(minilm_tokenizer):
    ids = minilm_tokenizer(["a short text", "two"])["input_ids"]
    padded = [ids[0], ids[1] + [-100] * (len(ids[0]) - len(ids[1]))]
    assert texts_of(padded, minilm_tokenizer) == ["a short text", "two"]


def test_rouge_is_the_rouge_score_packages_best_reference_per_row_in_percent():
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
    generations = ["the cats sat on the mat", "a model of text. It generates."]
    references = [["a dog ran", "the cat sat on a mat"], ["a model of texts. It generated words."]]
    scores = RougeScores().compute(generations, references)
    first = scorer.score("the cat sat on a mat", "the cats sat on the mat")  # the better reference
    second = scorer.score("a model of texts.\nIt generated words.", "a model of text.\nIt generates.")
    for name in scores:
        assert scores[name] == pytest.approx(100 * (first[name].fmeasure + second[name].fmeasure) / 2, abs=1e-9)


def test_rouge_leaves_out_rows_without_references():
    assert RougeScores().compute(["same words", "anything"], [["same words"], None]) == pytest.approx(
        dict.fromkeys(["rouge1", "rouge2", "rougeL", "rougeLsum"], 100.0)
    )


def test_rougelsum_reads_a_sentence_a_line():
    assert sentences_on_lines("One sentence. Another! A third? end") == "One sentence.\nAnother!\nA third?\nend"


def test_the_diagnosis_sees_generations_that_are_all_the_same_or_empty():
    stats = generation_stats(["", "", ""], [["a"], ["b"], ["c"]])
    assert stats.class_shares == (1.0,) and stats.label_shares == (0.0,) and stats.names == ("(empty text)",)
    varied = generation_stats(["a", "b", "c", "a"], [["a"], ["b"], ["x"], ["y"]])
    assert varied.class_shares == (0.5,) and varied.label_shares == (0.25,)


def test_the_encoder_decoder_generates_with_its_tokenizers_tokens(tiny_checkpoint):
    from tracker.task import Head
    from xp_plugins.encoder_decoder import encoder_decoder

    model = encoder_decoder(Head("AutoModelForSeq2SeqLM"), checkpoint=str(tiny_checkpoint))
    for config in (model.config, model.generation_config):
        assert (config.decoder_start_token_id, config.eos_token_id, config.pad_token_id) == (101, 102, 0)
    with pytest.raises(BuildError, match='checkpoint folder "/no/such/folder" does not exist') as error:
        encoder_decoder(Head("AutoModelForSeq2SeqLM"), checkpoint=str(tiny_checkpoint), decoder="/no/such/folder")
    assert error.value.key == "decoder"

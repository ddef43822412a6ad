"""[sweep] checking, as a specification: which spaces pass, and the one clear problem each mistake gives.

The experiments use the installed built-in plugins, since a space is checked against real keys
(runner.num_epochs is an integer, cosine has num_cycles and linear does not, eval_strategy = "steps"
needs eval_steps). Nothing here trains, imports torch or opens an MLflow store.
"""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

import tracker
from tests.tracker.test_validate import FILE, MRPC, edit, raw
from tracker.cli import main
from tracker.spec.check import check_experiment
from tracker.sweep.space import Choice, Range, grid_points, grid_size, override_text, settings_of, trial_overrides

# The validation tests' MRPC experiment, on the hub dataset: no local folder needs to exist.
BASE = edit(MRPC, 'path = "tests/data/mrpc"', 'path = "nyu-mll/glue"\nname = "mrpc"')
SECTIONS = (
    "experiment, hardware, tracking, checkpoint, task, dataset, tokenizer, collator, model, adapter, optimizer, "
    "scheduler, metrics, runner"
)
URI = "sqlite:///mlruns/mlflow.db"


def with_sweep(space: str, sweep: str = "trials = 12", base: str = BASE) -> str:
    return f"{base}\n[sweep]\n{sweep}\n\n[sweep.space]\n{space}\n"


def with_runner(*lines: str, base: str = BASE) -> str:
    return edit(base, 'use = "loop"\n', 'use = "loop"\n' + "".join(f"{line}\n" for line in lines))


def problems_of(registry, text: str) -> list[str]:
    experiment, problems = check_experiment(raw(text), registry)
    assert experiment is None
    return [str(p) for p in problems]


def space_of(registry, text: str):
    experiment, problems = check_experiment(raw(text), registry)
    assert [str(p) for p in problems] == []
    return experiment.space


def in_space(key: str, message: str) -> str:
    return f'{FILE}: [sweep.space] "{key}": {message}'


def write(folder, text: str, name: str = "mrpc_sweep.toml"):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# --- a valid space ---------------------------------------------------------------------------

VALID_SPACE = """\
"optimizer.lr" = { low = 1e-5, high = 1e-3, log = true }
"runner.num_epochs" = { low = 2, high = 4 }
"scheduler.num_cycles" = [0.5, 1.0]
"scheduler.use" = ["linear", "cosine"]
"""


def test_a_valid_space_gives_its_dimensions_with_the_plugin_choice_first(registry):
    space = space_of(registry, with_sweep(VALID_SPACE))

    # a trial picks its scheduler before that scheduler's keys; the other keys keep the order written
    assert [d.key for d in space] == ["scheduler.use", "optimizer.lr", "runner.num_epochs", "scheduler.num_cycles"]
    use, lr, _epochs, _cycles = space
    assert use.chooses_plugin and use.values == Choice(("linear", "cosine")) and use.only_with is None
    assert (use.path, lr.path) == (("scheduler", "use"), ("optimizer", "lr"))


def test_ranges_are_typed_from_the_declared_schema_of_their_key(registry):
    _, lr, epochs, _ = space_of(registry, with_sweep(VALID_SPACE))

    assert lr.values == Range(1e-5, 1e-3, log=True, step=None, integer=False)
    assert epochs.values == Range(2, 4, log=False, step=None, integer=True)
    assert type(epochs.values.low) is int and type(epochs.values.high) is int


def test_integer_ends_written_as_floats_make_an_integer_range(registry):
    [epochs] = space_of(registry, with_sweep('"runner.num_epochs" = { low = 2.0, high = 4.0, step = 1.0 }'))

    assert epochs.values == Range(2, 4, step=1, integer=True)
    assert {type(v) for v in (epochs.values.low, epochs.values.high, epochs.values.step)} == {int}


def test_a_number_key_with_integer_ends_is_a_range_of_numbers(registry):
    [norm] = space_of(registry, with_sweep('"runner.max_grad_norm" = { low = 0, high = 2 }'))

    assert norm.values.integer is False


def test_a_key_of_a_chosen_plugin_applies_only_to_the_plugins_that_have_it(registry):
    *_, cycles = space_of(registry, with_sweep(VALID_SPACE))

    assert cycles.only_with == ("cosine",)
    assert not cycles.applies({"scheduler.use": "linear"})
    assert cycles.applies({"scheduler.use": "cosine"})


def test_keys_of_every_kind_of_section_can_vary(registry):
    space = space_of(
        registry,
        with_sweep(
            '"experiment.seed" = [1, 2, 3]\n"checkpoint.keep" = [1, 2]\n"metrics.f1.average" = ["binary", "macro"]\n'
        ),
    )

    assert [(d.key, d.path) for d in space] == [
        ("experiment.seed", ("experiment", "seed")),
        ("checkpoint.keep", ("checkpoint", "keep")),
        ("metrics.f1.average", ("metrics", "f1", "average")),
    ]


# --- one mistake, one problem ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("space", "key", "message"),
    [
        pytest.param(
            '"optimiser.lr" = [1e-5]',
            "optimiser.lr",
            f'"optimiser" is not a section a trial can vary (did you mean "optimizer"?). Valid sections: {SECTIONS}',
            id="unknown-section",
        ),
        pytest.param(
            '"sweep.trials" = [3, 6]',
            "sweep.trials",
            f'"sweep" is not a section a trial can vary. Valid sections: {SECTIONS}',
            id="the-sweep-itself",
        ),
        pytest.param(
            '"lr" = [1e-5]',
            "lr",
            'expected a dotted key "section.key", e.g. "optimizer.lr", or a list of tables of keys that vary together',
            id="not-dotted",
        ),
        pytest.param(
            '"runner.batch_size" = [0, 8]',
            "runner.batch_size",
            "0: [runner] batch_size: expected an integer >= 1, got 0",
            id="value-breaks-constraint",
        ),
        pytest.param(
            '"optimizer.lr" = { low = 0.0, high = 1e-3 }',
            "optimizer.lr",
            "0.0: [optimizer] lr: expected a number > 0, got 0.0",
            id="range-end-breaks-constraint",
        ),
        pytest.param(
            '"runner.eval_strategy" = { low = 1, high = 2 }',
            "runner.eval_strategy",
            "a range needs a number key; eval_strategy takes string: give a list of values instead",
            id="range-on-string-key",
        ),
        pytest.param(
            '"runner.group_by_length" = { low = 0, high = 1 }',
            "runner.group_by_length",
            "a range needs a number key; group_by_length takes boolean: give a list of values instead",
            id="range-on-boolean-key",
        ),
        pytest.param(
            '"runner.num_epochs" = { low = 1.5, high = 3 }',
            "runner.num_epochs",
            "num_epochs takes integers: low, high and step must be integers",
            id="integer-key-float-ends",
        ),
        pytest.param(
            '"runner.num_epochs" = { low = 1, high = 3, step = 0.5 }',
            "runner.num_epochs",
            "num_epochs takes integers: low, high and step must be integers",
            id="integer-key-float-step",
        ),
        pytest.param(
            '"optimizer.lr" = { low = 1e-3, high = 1e-5 }',
            "optimizer.lr",
            "low (0.001) must be less than high (1e-05)",
            id="low-above-high",
        ),
        pytest.param(
            '"optimizer.lr" = { low = 1e-5, high = 1e-5 }',
            "optimizer.lr",
            "low (1e-05) must be less than high (1e-05)",
            id="low-equals-high",
        ),
        pytest.param(
            '"optimizer.lr" = { low = 0.0, high = 1e-3, log = true }',
            "optimizer.lr",
            "a log range needs low > 0, got 0.0",
            id="log-from-zero",
        ),
        pytest.param(
            '"optimizer.lr" = { low = 1e-5, high = 1e-3, log = true, step = 1e-5 }',
            "optimizer.lr",
            "a range takes log or step, not both",
            id="log-and-step",
        ),
        pytest.param(
            '"optimizer.lr" = { low = 1e-5, high = 1e-3, step = 0 }',
            "optimizer.lr",
            "step must be greater than 0, got 0",
            id="zero-step",
        ),
        pytest.param(
            '"optimizer.lr" = { low = 1e-5, high = 1e-3, lg = true }',
            "optimizer.lr",
            'unknown range key lg (did you mean "log"?). Valid keys: low, high, log, step',
            id="unknown-range-key",
        ),
        pytest.param(
            '"optimizer.lr" = { low = 1e-5 }',
            "optimizer.lr",
            "a range needs high, e.g. { low = 1e-5, high = 1e-3 }",
            id="range-without-high",
        ),
        pytest.param(
            '"optimizer.lr" = { low = "small", high = 1e-3 }',
            "optimizer.lr",
            'low must be a finite number, got "small"',
            id="range-end-not-a-number",
        ),
        pytest.param(
            '"optimizer.lr" = { low = 1e-5, high = 1e-3, log = "yes" }',
            "optimizer.lr",
            'log must be true or false, got "yes"',
            id="log-not-a-boolean",
        ),
        pytest.param('"optimizer.lr" = []', "optimizer.lr", "an empty list: give at least one value", id="empty-list"),
        pytest.param(
            '"optimizer.lr" = [1e-5, 3e-5, 1e-5]',
            "optimizer.lr",
            "lists a value twice: an array [1e-05, 3e-05, 1e-05]",
            id="duplicate-values",
        ),
        pytest.param(
            '"optimizer.betas" = [[0.9, 0.999]]',
            "optimizer.betas",
            "a value to try must be a string, a number or a boolean, got an array [0.9, 0.999]",
            id="non-scalar-value",
        ),
        pytest.param(
            '"optimizer.lr" = 3e-5',
            "optimizer.lr",
            "expected a list of values or a range { low = ..., high = ... }, got 3e-05",
            id="neither-list-nor-range",
        ),
        pytest.param(
            '"scheduler.use" = { low = 0, high = 1 }',
            "scheduler.use",
            "plugins are chosen from a list of names, not a range",
            id="range-of-plugins",
        ),
        pytest.param(
            '"scheduler.use" = ["linear", "constant"]\n"scheduler.num_cycles" = [0.5]',
            "scheduler.num_cycles",
            'none of the plugins of "scheduler.use" (linear, constant) has a key num_cycles',
            id="key-no-chosen-plugin-has",
        ),
        pytest.param(
            '"scheduler.use" = ["cosine", "cosine_with_restarts"]\n"scheduler.num_cycles" = [0.5]',
            "scheduler.num_cycles",
            '0.5 with "scheduler.use" = "cosine_with_restarts": [scheduler] num_cycles: '
            "expected an integer >= 1, got 0.5",
            id="value-checked-with-each-plugin",
        ),
        pytest.param(
            '"runner.eval_strategy" = ["epoch", "steps"]',
            "runner.eval_strategy",
            '"steps": [runner] eval_steps: eval_strategy = "steps" needs eval_steps, e.g. eval_steps = 100',
            id="value-breaks-a-rule-between-keys",
        ),
    ],
)
def test_a_mistake_in_the_space_is_one_problem(registry, space, key, message):
    assert problems_of(registry, with_sweep(space)) == [in_space(key, message)]


def test_an_unknown_key_of_a_section_is_one_problem_with_the_valid_keys(registry):
    # The key is wrong, not any of its values: one problem, however many values are listed.
    [problem] = problems_of(registry, with_sweep('"optimizer.lrr" = [1e-5, 3e-5]'))

    assert re.fullmatch(
        re.escape(in_space("optimizer.lrr", "")) + r"(1e-05: )?\[optimizer\] lrr: unknown key "
        r'\(did you mean "lr"\?\)\. Valid keys: lr, betas, .*',
        problem,
    )


def test_an_unknown_plugin_choice_is_reported_with_the_valid_choices(registry):
    [problem] = problems_of(registry, with_sweep('"scheduler.use" = ["linear", "cosin"]'))

    assert problem.startswith(
        in_space(
            "scheduler.use",
            '"cosin": [scheduler] use: unknown scheduler "cosin" (did you mean "cosine"?). Valid choices: ',
        )
    )
    assert "cosine_with_restarts" in problem


def test_a_plugin_choice_is_checked_against_the_base_keys_of_its_section(registry):
    text = with_sweep(
        '"scheduler.use" = ["linear", "constant"]',
        base=edit(BASE, 'use = "linear"\n', 'use = "linear"\nwarmup_ratio = 0.1\n'),
    )

    [problem] = problems_of(registry, text)

    assert problem.startswith(in_space("scheduler.use", '"constant": [scheduler] warmup_ratio: unknown key'))


# --- every problem at once -------------------------------------------------------------------

SEVERAL_MISTAKES = """\
"optimiser.lr" = [1e-5]
"runner.batch_size" = [0, 8]
"scheduler.warmup_ratio" = []
"optimizer.weight_decay" = { low = 0.0, high = 0.1, log = true }
"""


def test_every_mistake_of_a_space_is_reported_in_one_pass(registry):
    problems = problems_of(registry, with_sweep(SEVERAL_MISTAKES))

    assert sorted(problems) == sorted(
        [
            in_space(
                "optimiser.lr",
                f'"optimiser" is not a section a trial can vary (did you mean "optimizer"?). '
                f"Valid sections: {SECTIONS}",
            ),
            in_space("runner.batch_size", "0: [runner] batch_size: expected an integer >= 1, got 0"),
            in_space("scheduler.warmup_ratio", "an empty list: give at least one value"),
            in_space("optimizer.weight_decay", "a log range needs low > 0, got 0.0"),
        ]
    )


def test_mistakes_in_sweep_and_in_its_space_are_reported_together(registry):
    # The base experiment is valid, so the space can be checked against it even though [sweep]
    # itself has a problem: one pass should show both.
    text = with_sweep('"optimiser.lr" = [1e-5]', sweep='method = "random"')

    assert problems_of(registry, text) == [
        f'{FILE}: [sweep] trials: method = "random" needs the number of trials, e.g. trials = 20',
        in_space(
            "optimiser.lr",
            f'"optimiser" is not a section a trial can vary (did you mean "optimizer"?). Valid sections: {SECTIONS}',
        ),
    ]


def test_xp_validate_prints_every_problem_and_exits_2(registry, tmp_path):
    path = write(tmp_path, with_sweep(SEVERAL_MISTAKES))

    result = CliRunner().invoke(main, ["validate", str(path)])

    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)  # no traceback
    lines = result.stderr.splitlines()
    space_lines = [line for line in lines if line.startswith(f"{path}: [sweep.space] ")]
    assert sorted(line.split('"')[1] for line in space_lines) == [
        "optimiser.lr",
        "optimizer.weight_decay",
        "runner.batch_size",
        "scheduler.warmup_ratio",
    ]
    assert len(lines) == 5
    assert lines[-1] == "1 of 1 experiment file(s) invalid; nothing was run."
    assert "Traceback" not in result.output


def test_xp_validate_accepts_a_valid_sweep(tmp_path):
    path = write(tmp_path, with_sweep(VALID_SPACE))

    result = CliRunner().invoke(main, ["validate", str(path)])

    assert (result.exit_code, result.stdout) == (0, f"ok: {path}\n")


# --- [sweep] itself ----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["tpe", "random"])
def test_a_sampled_study_needs_its_number_of_trials(registry, method):
    text = with_sweep('"optimizer.lr" = [1e-5, 3e-5]', sweep=f'method = "{method}"')

    assert problems_of(registry, text) == [
        f'{FILE}: [sweep] trials: method = "{method}" needs the number of trials, e.g. trials = 20'
    ]


def test_the_default_method_is_tpe_and_needs_trials(registry):
    assert problems_of(registry, with_sweep('"optimizer.lr" = [1e-5, 3e-5]', sweep="")) == [
        f'{FILE}: [sweep] trials: method = "tpe" needs the number of trials, e.g. trials = 20'
    ]


def test_a_grid_needs_no_trials(registry):
    space = space_of(registry, with_sweep('"optimizer.lr" = [1e-5, 3e-5]', sweep='method = "grid"'))

    assert [d.key for d in space] == ["optimizer.lr"]


def test_an_empty_space_is_refused(registry):
    assert problems_of(registry, f"{BASE}\n[sweep]\ntrials = 4\n") == [
        f'{FILE}: [sweep] space: no keys to vary: add [sweep.space], e.g. "optimizer.lr" = '
        "{ low = 1e-5, high = 1e-3, log = true }"
    ]


def test_the_metric_must_be_one_the_experiment_computes(registry):
    text = with_sweep('"optimizer.lr" = [1e-5, 3e-5]', sweep='trials = 4\nmetric = "precision"')

    assert problems_of(registry, text) == [
        f'{FILE}: [sweep] metric: "precision" is not a metric this experiment computes; '
        "expected one of eval_accuracy, eval_f1, eval_loss"
    ]


@pytest.mark.parametrize("metric", ["f1", "eval_f1", "eval/f1", "loss"])
def test_a_computed_metric_is_accepted_however_it_is_spelt(registry, metric):
    space_of(registry, with_sweep('"optimizer.lr" = [1e-5, 3e-5]', sweep=f'trials = 4\nmetric = "{metric}"'))


# --- grids -------------------------------------------------------------------------------------


@pytest.mark.parametrize("values", ["{ low = 0.0, high = 0.2 }", "{ low = 0.01, high = 0.2, log = true }"])
def test_a_grid_refuses_a_range_it_cannot_enumerate(registry, values):
    text = with_sweep(f'"scheduler.warmup_ratio" = {values}', sweep='method = "grid"')

    assert problems_of(registry, text) == [
        in_space(
            "scheduler.warmup_ratio",
            'method = "grid" needs the values to try: a list, or a range with step (and no log)',
        )
    ]


def test_a_stepped_float_range_is_enumerated_by_a_grid(registry):
    space = space_of(
        registry,
        with_sweep('"scheduler.warmup_ratio" = { low = 0.0, high = 0.2, step = 0.1 }', sweep='method = "grid"'),
    )

    assert grid_points(space) == [
        {"scheduler.warmup_ratio": 0.0},
        {"scheduler.warmup_ratio": 0.1},
        {"scheduler.warmup_ratio": 0.2},
    ]
    assert grid_size(space) == 3


def test_an_integer_range_is_enumerated_by_one_without_a_step(registry):
    space = space_of(
        registry,
        with_sweep(
            '"runner.num_epochs" = { low = 2, high = 4 }\n"runner.batch_size" = [8, 16]', sweep='method = "grid"'
        ),
    )

    assert grid_points(space) == [{"runner.num_epochs": n, "runner.batch_size": b} for n in (2, 3, 4) for b in (8, 16)]


def test_a_grid_of_too_many_combinations_is_refused(registry):
    text = with_sweep('"scheduler.warmup_ratio" = { low = 0.0, high = 1.0, step = 0.0001 }', sweep='method = "grid"')

    assert problems_of(registry, text) == [
        in_space(
            "scheduler.warmup_ratio",
            "a grid of 10001 combinations (more than 10000): use fewer values, a coarser step, "
            'or method = "random" with trials',
        )
    ]


def test_grid_points_leave_out_a_key_its_plugin_lacks_and_run_that_combination_once(registry):
    space = space_of(
        registry,
        with_sweep(
            '"scheduler.use" = ["linear", "cosine"]\n"scheduler.num_cycles" = [0.5, 1.0]', sweep='method = "grid"'
        ),
    )

    assert grid_points(space) == [
        {"scheduler.use": "linear"},
        {"scheduler.use": "cosine", "scheduler.num_cycles": 0.5},
        {"scheduler.use": "cosine", "scheduler.num_cycles": 1.0},
    ]


@pytest.mark.parametrize(
    ("space", "base", "message"),
    [
        pytest.param(
            '"runner.eval_strategy" = ["epoch", "no"]\n"runner.early_stopping_patience" = [2]',
            BASE,
            'the combination runner.eval_strategy="no", runner.early_stopping_patience=2: [runner] '
            'early_stopping_patience: early stopping needs evaluations; set eval_strategy to "epoch" or "steps"',
            id="runner-rule",
        ),
        pytest.param(
            '"runner.eval_strategy" = ["epoch", "no"]',
            BASE + "\n[checkpoint]\nat_evaluation = true\n",
            None,
            id="rule-between-sections-of-a-single-value",
        ),
        pytest.param(
            '"hardware.device" = ["auto", "cpu"]\n"hardware.precision" = ["fp32", "fp16"]',
            BASE,
            'the combination hardware.device="cpu", hardware.precision="fp16": [hardware] precision: fp16 mixed '
            'precision needs a GPU; with device = "cpu" use precision = "bf16" or "fp32"',
            id="hardware-rule",
        ),
    ],
)
def test_a_grid_combination_that_breaks_a_rule_between_keys_is_reported(registry, space, base, message):
    problems = problems_of(registry, with_sweep(space, sweep='method = "grid"', base=base))

    if message is None:  # the value alone breaks the rule: reported at its key
        assert problems == [
            in_space(
                "runner.eval_strategy",
                '"no": [checkpoint] at_evaluation: the runner '
                'never evaluates (eval_strategy = "no"); '
                "set every_steps instead",
            )
        ]
    else:  # each value is fine alone: only the combination is wrong
        assert problems == [f"{FILE}: [sweep.space]: {message}"]


# --- keys that vary together ------------------------------------------------------------------

EVALUATION = """\
evaluation = [
    { "runner.eval_strategy" = "steps", "runner.eval_steps" = 50 },
    { runner.eval_strategy = "epoch" },
]
"optimizer.lr" = [1e-5, 3e-5]
"""


def test_keys_that_only_make_sense_together_vary_together_as_tables(registry):
    # eval_steps alone, or eval_strategy = "steps" alone, breaks a rule of the runner: together they do not
    evaluation, lr = space_of(registry, with_sweep(EVALUATION, sweep='method = "grid"'))

    assert evaluation.key == "evaluation" and not evaluation.chooses_plugin
    assert evaluation.values.values == (
        'runner.eval_strategy="steps", runner.eval_steps=50',
        'runner.eval_strategy="epoch"',
    )
    assert evaluation.sets('runner.eval_strategy="epoch"') == (("runner.eval_strategy", "epoch"),)
    assert grid_points((evaluation, lr)) == [
        {"evaluation": 'runner.eval_strategy="steps", runner.eval_steps=50', "optimizer.lr": 1e-5},
        {"evaluation": 'runner.eval_strategy="steps", runner.eval_steps=50', "optimizer.lr": 3e-5},
        {"evaluation": 'runner.eval_strategy="epoch"', "optimizer.lr": 1e-5},
        {"evaluation": 'runner.eval_strategy="epoch"', "optimizer.lr": 3e-5},
    ]
    assert settings_of((evaluation, lr), grid_points((evaluation, lr))[0]) == {
        "runner.eval_strategy": "steps",
        "runner.eval_steps": 50,
        "optimizer.lr": 1e-5,
    }


def test_a_table_may_choose_a_plugin_with_its_keys_and_the_section_s_other_keys_follow_it(registry):
    space = space_of(
        registry,
        with_sweep(
            'schedule = [{ "scheduler.use" = "cosine", "scheduler.num_cycles" = 0.5 },'
            ' { "scheduler.use" = "linear" }]\n"scheduler.warmup_ratio" = [0.0, 0.1]',
            sweep='method = "grid"',
        ),
    )

    assert [d.key for d in space] == ["schedule", "scheduler.warmup_ratio"]
    assert space[0].chooses_plugin and space[1].only_with == ("cosine", "linear")
    assert len(grid_points(space)) == 4


@pytest.mark.parametrize(
    ("space", "message"),
    [
        pytest.param(
            'evaluation = [{ "runner.eval_strategy" = "steps" }, { "runner.eval_strategy" = "epoch" }]',
            'table 1: [runner] eval_steps: eval_strategy = "steps" needs eval_steps, e.g. eval_steps = 100',
            id="a-table-checked-whole",
        ),
        pytest.param(
            'evaluation = [{ "runner.eval_strategy" = "epoch" }, {}]',
            "table 2 is empty: give the keys it sets",
            id="empty-table",
        ),
        pytest.param(
            'evaluation = [{ "runner.eval_strategy" = "epoch" }, { "runner.eval_strategy" = "epoch" }]',
            "lists a table twice",
            id="table-twice",
        ),
        pytest.param(
            'evaluation = [{ "runner.eval_stratgy" = "epoch" }]',
            'table 1: [runner] eval_stratgy: unknown key (did you mean "eval_strategy"?). Valid keys:',
            id="unknown-key",
        ),
        pytest.param(
            'evaluation = [{ "eval_strategy" = "epoch" }]',
            'eval_strategy: expected a dotted key "section.key", e.g. "optimizer.lr"',
            id="key-not-dotted",
        ),
        pytest.param(
            'evaluation = [{ "runner.eval_strategy" = ["epoch"] }]',
            'runner.eval_strategy: a value to try must be a string, a number or a boolean, got an array ["epoch"]',
            id="value-not-scalar",
        ),
        pytest.param(
            '"runner.evaluation" = [{ "runner.eval_strategy" = "epoch" }]',
            "a list of tables sets several keys together: name it with a word of your own, e.g. evaluation = ",
            id="dotted-name",
        ),
        pytest.param(
            'schedule = [{ "scheduler.use" = "cosine" }, { "scheduler.warmup_ratio" = 0.1 }]',
            "a plugin one table chooses (section.use) must be chosen by every table",
            id="plugin-chosen-by-some-tables",
        ),
        pytest.param(
            '"scheduler.use" = ["linear", "cosine"]\nschedule = [{ "scheduler.warmup_ratio" = 0.1 }]',
            'sets keys of [scheduler], whose plugin "scheduler.use" varies on its own: '
            "choose scheduler.use in each table instead",
            id="plugin-varied-elsewhere",
        ),
        pytest.param(
            '"runner.num_epochs" = [3, 4]\nevaluation = [{ "runner.num_epochs" = 2 }]',
            'runner.num_epochs is varied by "runner.num_epochs" too: vary it in one place',
            id="varied-twice",
        ),
    ],
)
def test_a_mistake_in_keys_that_vary_together_is_one_problem(registry, space, message):
    [problem] = problems_of(registry, with_sweep(space))

    entry = space.splitlines()[-1].split(" = ")[0].strip('"')  # the entry at fault: the last one written
    assert problem.startswith(in_space(entry, message))


def test_a_grid_checks_every_combination_of_tables_with_the_other_keys(registry):
    problems = problems_of(
        registry,
        with_sweep(
            'evaluation = [{ "runner.eval_strategy" = "epoch" }, { "runner.eval_strategy" = "no" }]\n'
            '"runner.early_stopping_patience" = [2]',
            sweep='method = "grid"',
        ),
    )

    assert problems == [
        f'{FILE}: [sweep.space]: the combination runner.eval_strategy="no", runner.early_stopping_patience=2: '
        '[runner] early_stopping_patience: early stopping needs evaluations; set eval_strategy to "epoch" or "steps"'
    ]


# --- what a trial sets -------------------------------------------------------------------------


def test_override_text_is_what_set_takes():
    assert override_text("optimizer.lr", 3e-05) == "optimizer.lr=3e-05"
    assert override_text("scheduler.use", "cosine") == 'scheduler.use="cosine"'
    assert override_text("runner.group_by_length", True) == "runner.group_by_length=true"


def test_a_trial_sets_only_the_keys_of_its_plugin(registry):
    space = space_of(registry, with_sweep(VALID_SPACE))

    def pick(dimension, chosen):
        return dimension.values.values[0] if isinstance(dimension.values, Choice) else dimension.values.low

    assert [(d.key, value) for d, value in trial_overrides(space, pick)] == [
        ("scheduler.use", "linear"),
        ("optimizer.lr", 1e-5),
        ("runner.num_epochs", 2),
    ]


# --- a file with [sweep] is still an experiment ------------------------------------------------


def test_load_reads_the_sweep_apart_from_the_experiment(registry, tmp_path):
    path = write(tmp_path, with_sweep(VALID_SPACE, sweep='trials = 12\npruner = "median"'))

    experiment = tracker.load(path, ["optimizer.lr=1e-4"], registry=registry)

    assert "sweep" not in experiment.resolved()
    assert experiment.components["optimizer"].options["lr"] == 1e-4
    assert (experiment.sweep["method"], experiment.sweep["trials"], experiment.sweep["pruner"]) == ("tpe", 12, "median")
    assert [d.key for d in experiment.space] == [
        "scheduler.use",
        "optimizer.lr",
        "runner.num_epochs",
        "scheduler.num_cycles",
    ]


def test_a_file_without_sweep_has_no_space(registry):
    experiment, _ = check_experiment(raw(BASE), registry)

    assert (experiment.sweep, experiment.space) == (None, ())


def test_the_sweep_changes_neither_the_config_nor_the_run_name(registry, tmp_path):
    plain = tracker.load(write(tmp_path / "plain", BASE), registry=registry)
    swept = tracker.load(write(tmp_path / "swept", with_sweep(VALID_SPACE)), registry=registry)

    assert swept.resolved() == plain.resolved()
    assert swept.run_name == plain.run_name


def test_xp_show_prints_the_experiment_without_its_sweep(tmp_path):
    path = write(tmp_path, with_sweep(VALID_SPACE))

    result = CliRunner().invoke(main, ["show", str(path)])

    assert result.exit_code == 0
    assert "[optimizer]" in result.stdout
    assert "[sweep" not in result.stdout and "num_cycles" not in result.stdout


# --- types: what a range draws, what counts as the same value ----------------------------------


def test_a_range_over_a_key_that_is_an_integer_for_one_chosen_plugin_draws_only_integers(registry):
    # num_cycles is a number for cosine, an integer >= 1 for cosine_with_restarts: a trial of
    # cosine_with_restarts must not draw 1.7. Either the range is of integers or it is refused,
    # whichever order the plugins are listed in.
    for plugins in ('["cosine", "cosine_with_restarts"]', '["cosine_with_restarts", "cosine"]'):
        text = with_sweep(f'"scheduler.use" = {plugins}\n"scheduler.num_cycles" = {{ low = 1, high = 3 }}')
        experiment, _ = check_experiment(raw(text), registry)
        if experiment is not None:
            [cycles] = [d for d in experiment.space if d.key == "scheduler.num_cycles"]
            assert cycles.values.integer, f"{plugins}: a float range {cycles.values}"


def test_values_equal_once_typed_are_duplicates(registry):
    # max_grad_norm is a number: 1 and 1.0 are one value, and a grid would run the same trial twice.
    text = with_sweep('"runner.max_grad_norm" = [1, 1.0]', sweep='method = "grid"')

    assert problems_of(registry, text) == [in_space("runner.max_grad_norm", "lists a value twice: an array [1, 1.0]")]

"""The built-in schedules: every transformers schedule under its name, warmup as steps or a ratio,
and the learning rate each step as transformers computes it."""

import inspect
import math
import subprocess
import sys

import pluggy
import pytest
import torch
import transformers
from transformers.optimization import Adafactor

from tests.declared import problems_of
from tracker import hookspecs
from tracker.errors import BuildError
from xp_plugins import scheduler as plugin

METRIC_DRIVEN = {"reduce_lr_on_plateau", "greedy"}  # stepped with a metric: scheduler.step(eval_loss)


@pytest.fixture
def optimizer():
    """SGD with lr 1.0, so the learning rate reads as the schedule's multiplier."""
    return torch.optim.SGD([parameter()], lr=1.0)


def parameter():
    return torch.nn.Parameter(torch.zeros(2))


def trajectory(scheduler, optimizer, num_steps):
    """The learning rate before each of `num_steps` steps, and after the last one."""
    lrs = []
    for _ in range(num_steps):
        lrs.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return [*lrs, scheduler.get_last_lr()[0]]


def test_every_transformers_schedule_is_registered_under_its_name():
    assert set(plugin.SCHEDULES) == {schedule.value for schedule in transformers.SchedulerType}


def test_the_hook_registers_every_schedule():
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(plugin)
    manager.check_pending()
    registered = {}
    manager.hook.xp_register_schedulers(register=registered.__setitem__)
    assert registered == plugin.SCHEDULES


@pytest.mark.parametrize("name", plugin.SCHEDULES)
def test_each_signature_is_a_schema(name):
    """The runner passes (optimizer, num_training_steps); every other option is a typed TOML key."""
    factory = plugin.SCHEDULES[name]
    parameters = list(inspect.signature(factory).parameters.values())
    assert [p.name for p in parameters[:2]] == ["optimizer", "num_training_steps"]
    for option in parameters[2:]:
        assert option.kind is inspect.Parameter.KEYWORD_ONLY
        assert option.annotation is not inspect.Parameter.empty
        assert option.default is not inspect.Parameter.empty
    assert factory.__doc__.strip().splitlines()[0]


def test_linear_with_warmup_steps(optimizer):
    scheduler = plugin.linear(optimizer, 10, warmup_steps=2)
    expected = [0.0, 0.5] + [(10 - step) / 8 for step in range(2, 11)]
    assert trajectory(scheduler, optimizer, 10) == pytest.approx(expected)


def test_linear_with_a_warmup_ratio_rounds_the_warmup_steps_up(optimizer):
    scheduler = plugin.linear(optimizer, 10, warmup_ratio=0.25)  # ceil(2.5) = 3 warmup steps
    expected = [0.0, 1 / 3, 2 / 3] + [(10 - step) / 7 for step in range(3, 11)]
    assert trajectory(scheduler, optimizer, 10) == pytest.approx(expected)


def test_cosine_goes_from_the_full_learning_rate_to_zero(optimizer):
    lrs = trajectory(plugin.cosine(optimizer, 10), optimizer, 10)
    assert (lrs[0], lrs[5], lrs[10]) == pytest.approx((1.0, 0.5, 0.0))


def test_cosine_with_min_lr_ends_at_its_floor(optimizer):
    lrs = trajectory(plugin.cosine_with_min_lr(optimizer, 10, min_lr_rate=0.1), optimizer, 10)
    assert (lrs[0], lrs[10]) == pytest.approx((1.0, 0.1))


def test_warmup_stable_decay_phases_follow_the_ratios(optimizer):
    scheduler = plugin.warmup_stable_decay(optimizer, 10, warmup_ratio=0.2, decay_ratio=0.3, decay_type="linear")
    expected = [0.0, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2 / 3, 1 / 3, 0.0]
    assert trajectory(scheduler, optimizer, 10) == pytest.approx(expected)


@pytest.mark.parametrize("name", plugin.SCHEDULES)
def test_every_schedule_builds_and_steps_with_its_defaults(name):
    optimizer = torch.optim.SGD([parameter()], lr=0.1)
    scheduler = plugin.SCHEDULES[name](optimizer, 20)
    for step in range(20):
        optimizer.step()
        if name in METRIC_DRIVEN:
            scheduler.step(1.0 / (step + 1))
        else:
            scheduler.step()
    lr = optimizer.param_groups[0]["lr"]
    assert math.isfinite(lr) and lr >= 0


@pytest.mark.parametrize(
    ("options", "problems"),
    [
        ({"warmup_steps": 2, "warmup_ratio": 0.1}, {"warmup_ratio": "set warmup_steps or warmup_ratio, not both"}),
        ({"warmup_ratio": 1.5}, {"warmup_ratio": "expected a number in [0, 1], got 1.5"}),
        ({"warmup_ratio": -0.1}, {"warmup_ratio": "expected a number in [0, 1], got -0.1"}),
        ({"warmup_steps": -1}, {"warmup_steps": "expected an integer >= 0, got -1"}),
        ({"warmup_steps": 0.5}, {"warmup_steps": "expected an integer >= 0, got 0.5"}),
        ({"warmup_steps": 2}, {}),
        ({"warmup_ratio": 0.1}, {}),
        ({"warmup_steps": 0, "warmup_ratio": 0.1}, {}),  # 0 steps is the default: no warmup given twice
    ],
)
def test_warmup_is_steps_or_a_ratio(options, problems):
    assert problems_of(plugin.linear, **options) == problems


@pytest.mark.parametrize(
    ("factory", "options", "problems"),
    [
        (
            plugin.warmup_stable_decay,
            {"decay_steps": 2, "decay_ratio": 0.2},
            {"decay_ratio": "set decay_steps or decay_ratio, not both"},
        ),
        (
            plugin.warmup_stable_decay,
            {"warmup_ratio": 0.5, "decay_ratio": 0.6},
            {"decay_ratio": "warmup_ratio (0.5) and decay_ratio (0.6) add up to more than the whole training"},
        ),
        (plugin.warmup_stable_decay, {"warmup_ratio": 0.5, "decay_ratio": 0.5}, {}),
        (
            plugin.cosine_with_min_lr,
            {"min_lr": 0.1, "min_lr_rate": 0.1},
            {"min_lr_rate": "set min_lr or min_lr_rate, not both"},
        ),
        (
            plugin.cosine_warmup_with_min_lr,
            {"min_lr": 0.0, "min_lr_rate": 0.1},
            {"min_lr_rate": "set min_lr or min_lr_rate, not both"},
        ),
        (plugin.cosine, {"num_cycles": 0}, {"num_cycles": "expected a number > 0, got 0"}),
        (plugin.cosine_with_restarts, {"num_cycles": 1.5}, {"num_cycles": "expected an integer >= 1, got 1.5"}),
        (plugin.polynomial, {"power": 0}, {"power": "expected a number > 0, got 0"}),
        (plugin.reduce_lr_on_plateau, {"factor": 1.0}, {"factor": "expected a number in (0, 1), got 1.0"}),
        (plugin.reduce_lr_on_plateau, {"mode": "maximum"}, {"mode": 'expected one of "min", "max", got "maximum"'}),
        (plugin.greedy, {"factor": 1.5}, {"factor": "expected a number in (0, 1), got 1.5"}),
        (plugin.greedy, {"min_lr": 2.0, "max_lr": 1.0}, {"min_lr": "must be below max_lr (1.0), got 2.0"}),
        (plugin.constant, {"warmup_steps": 1}, {"warmup_steps": "unknown key. Valid keys: none"}),
    ],
)
def test_schedule_options_are_reported_at_their_key(factory, options, problems):
    assert problems_of(factory, **options) == problems


@pytest.mark.parametrize(
    ("build", "key"),
    [
        (lambda opt: plugin.warmup_stable_decay(opt, 10, warmup_steps=5, decay_steps=6), "decay_steps"),
        (lambda opt: plugin.polynomial(opt, 10, lr_end=2.0), "lr_end"),  # above the optimizer's lr 1.0
    ],
)
def test_options_that_depend_on_the_training_length_or_the_optimizer_fail_at_build(build, key, optimizer):
    with pytest.raises(BuildError) as raised:
        build(optimizer)
    assert raised.value.key == key


def test_an_optimizer_that_sets_its_own_learning_rate_cannot_be_scheduled():
    optimizer = Adafactor([parameter()])  # relative_step=True: lr is None
    with pytest.raises(BuildError, match="relative_step = false"):
        plugin.linear(optimizer, 10)


def test_importing_the_module_imports_nothing_heavy():
    heavy = ("torch", "transformers", "sklearn", "scipy", "numpy")
    code = f"import sys, xp_plugins.scheduler; print([m for m in {heavy!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"

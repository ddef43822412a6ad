"""The built-in optimizers: options reach the torch optimizer, and biases and normalisation
weights go in a group without weight decay."""

import copy
import subprocess
import sys

import pluggy
import pytest
import torch
from torch import nn
from transformers.optimization import Adafactor

from tests.declared import problems_of
from tracker import hookspecs
from tracker.errors import BuildError
from tracker.spec.keys import spec_of
from xp_plugins import optimizer as plugin


class TinyRMSNorm(nn.Module):
    """A custom norm layer, as transformers models define them: found by its class name."""

    def __init__(self, size):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))


class Scale(nn.Module):
    """A plain module: only its attribute name says it is a norm."""

    def __init__(self, size):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))


class TinyModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.dense = nn.Linear(4, 4)
        self.LayerNorm = nn.LayerNorm(4)
        self.gate = TinyRMSNorm(4)
        self.final_layer_norm = Scale(4)
        self.head = nn.Linear(4, 2)
        self.frozen = nn.Linear(4, 4)
        self.frozen.requires_grad_(False)


DECAYED = {"dense.weight", "head.weight"}
NOT_DECAYED = {
    "dense.bias",
    "LayerNorm.weight",
    "LayerNorm.bias",
    "gate.weight",
    "final_layer_norm.weight",
    "head.bias",
}

BUILDERS = {
    "adamw": lambda model, **options: plugin.adamw(model, **options),
    "sgd": lambda model, **options: plugin.sgd(model, **options),
    "adafactor": lambda model, **options: plugin.adafactor(model, lr=1e-3, relative_step=False, **options),
}


@pytest.fixture
def model():
    torch.manual_seed(0)
    return TinyModel()


def group_names(optimizer, model):
    """Parameter names per group, with that group's weight decay."""
    names = {id(param): name for name, param in model.named_parameters()}
    return [
        ({names[id(param)] for param in group["params"]}, group["weight_decay"]) for group in optimizer.param_groups
    ]


def test_the_hook_registers_every_optimizer():
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(plugin)
    manager.check_pending()
    registered = {}
    manager.hook.xp_register_optimizers(register=registered.__setitem__)
    assert registered == {"adamw": plugin.adamw, "sgd": plugin.sgd, "adafactor": plugin.adafactor}


@pytest.mark.parametrize("name", BUILDERS)
def test_biases_and_norm_weights_get_no_weight_decay(name, model):
    optimizer = BUILDERS[name](model, weight_decay=0.1)
    assert group_names(optimizer, model) == [(DECAYED, 0.1), (NOT_DECAYED, 0.0)]


@pytest.mark.parametrize("name", BUILDERS)
def test_without_exclusion_every_trainable_parameter_decays(name, model):
    optimizer = BUILDERS[name](model, weight_decay=0.1, exclude_bias_and_norm_from_decay=False)
    assert group_names(optimizer, model) == [(DECAYED | NOT_DECAYED, 0.1)]


def test_frozen_parameters_are_left_out(model):
    optimizer = plugin.adamw(model)
    optimized = {id(param) for group in optimizer.param_groups for param in group["params"]}
    assert all(id(param) not in optimized for param in model.frozen.parameters())


def test_tied_weights_are_optimized_once(model):
    model.tied = nn.Linear(4, 2)
    model.tied.weight = model.head.weight  # one Parameter in two modules, as tied embeddings are
    optimizer = plugin.adamw(model, weight_decay=0.1)
    params = [param for group in optimizer.param_groups for param in group["params"]]
    assert len(params) == len({id(param) for param in params})


def test_a_step_decays_only_the_decayed_group(model):
    optimizer = plugin.adamw(model, lr=0.1, weight_decay=0.5)
    before = {name: param.detach().clone() for name, param in model.named_parameters()}
    for param in model.parameters():
        param.grad = torch.zeros_like(param)  # zero gradients: only decoupled weight decay moves weights
    optimizer.step()
    for name, param in model.named_parameters():
        factor = 1 - 0.1 * 0.5 if name in DECAYED else 1.0
        torch.testing.assert_close(param.detach(), before[name] * factor)


def test_adamw_options_reach_the_torch_optimizer(model):
    optimizer = plugin.adamw(model, lr=1e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01)
    assert isinstance(optimizer, torch.optim.AdamW)
    for group in optimizer.param_groups:
        assert (group["lr"], group["betas"], group["eps"]) == (1e-3, (0.8, 0.99), 1e-6)


def test_adamw_defaults_follow_the_hugging_face_course(model):
    optimizer = plugin.adamw(model)
    assert optimizer.defaults["lr"] == 5e-5
    assert [group["weight_decay"] for group in optimizer.param_groups] == [0.0, 0.0]


def test_adamw_is_fused_by_default_and_fused_or_not_it_is_the_same_algorithm(model):
    """The fused kernel (the Trainer's default) is several times faster on a CPU; the updates are
    those of torch's default kernel, to rounding."""
    fused, plain = copy.deepcopy(model), copy.deepcopy(model)
    optimizers = {
        "fused": plugin.adamw(fused, lr=1e-2, weight_decay=0.1),
        "plain": plugin.adamw(plain, lr=1e-2, weight_decay=0.1, fused=False),
    }
    assert optimizers["fused"].defaults["fused"] is True and not optimizers["plain"].defaults["fused"]
    for step in range(3):
        for twin in (fused, plain):
            torch.manual_seed(step)
            for param in twin.parameters():
                param.grad = torch.randn_like(param)
        for optimizer in optimizers.values():
            optimizer.step()
    for (name, a), (_, b) in zip(fused.named_parameters(), plain.named_parameters(), strict=True):
        torch.testing.assert_close(a, b, msg=name)


def test_sgd_options_reach_the_torch_optimizer(model):
    optimizer = plugin.sgd(model, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)
    assert isinstance(optimizer, torch.optim.SGD)
    for group in optimizer.param_groups:
        assert group["lr"] == 0.05 and group["momentum"] == 0.9
        assert group["nesterov"] is True and group["dampening"] == 0.0


def test_adafactor_computes_its_own_step_size_by_default(model):
    optimizer = plugin.adafactor(model)
    assert isinstance(optimizer, Adafactor)
    assert optimizer.defaults["lr"] is None and optimizer.defaults["relative_step"]


def test_adafactor_with_an_external_learning_rate(model):
    optimizer = plugin.adafactor(
        model, lr=1e-3, relative_step=False, scale_parameter=False, beta1=0.9, eps=(1e-30, 1e-2)
    )
    settings = optimizer.defaults
    assert (settings["lr"], settings["beta1"], settings["eps"]) == (1e-3, 0.9, (1e-30, 1e-2))
    assert not settings["relative_step"] and not settings["scale_parameter"]


@pytest.mark.parametrize(
    ("options", "problems"),
    [
        (
            {"lr": 1e-3},
            {
                "lr": "adafactor computes its own step size when relative_step = true; "  # the default
                "remove lr or set relative_step = false"
            },
        ),
        ({"relative_step": False}, {"lr": "adafactor needs an lr when relative_step = false"}),
        (
            {"lr": 1e-3, "relative_step": False, "warmup_init": True},
            {"warmup_init": "warmup_init = true requires relative_step = true"},
        ),
        ({"lr": 1e-3, "relative_step": False}, {}),
        ({"warmup_init": True}, {}),
    ],
)
def test_adafactor_takes_its_step_size_from_one_place(options, problems):
    assert problems_of(plugin.adafactor, **options) == problems


@pytest.mark.parametrize(
    ("factory", "options", "message"),
    [
        (plugin.adamw, {"lr": -1.0}, {"lr": "expected a number > 0, got -1.0"}),
        (plugin.adamw, {"lr": 0}, {"lr": "expected a number > 0, got 0"}),
        (plugin.adamw, {"lr": float("inf")}, {"lr": "expected a number > 0, got inf (numbers must be finite)"}),
        (
            plugin.adamw,
            {"betas": [0.9, 1.5]},
            {"betas": "expected an array of 2 (a number in [0, 1), a number in [0, 1)), got an array [0.9, 1.5]"},
        ),
        (plugin.adamw, {"eps": 0}, {"eps": "expected a number > 0, got 0"}),
        (plugin.adamw, {"lr": "5e-5"}, {"lr": 'expected a number > 0, got "5e-5" (a string: write it without quotes)'}),
        (plugin.sgd, {"weight_decay": -0.1}, {"weight_decay": "expected a number >= 0, got -0.1"}),
        (plugin.sgd, {"momentum": 1.0}, {"momentum": "expected a number in [0, 1), got 1.0"}),
        (plugin.sgd, {"nesterov": True}, {"nesterov": "Nesterov momentum needs momentum > 0 and dampening = 0"}),
        (
            plugin.sgd,
            {"nesterov": True, "momentum": 0.9, "dampening": 0.1},
            {"nesterov": "Nesterov momentum needs momentum > 0 and dampening = 0"},
        ),
        (plugin.adafactor, {"decay_rate": 0.5}, {"decay_rate": "expected a number < 0, got 0.5"}),
        (plugin.adafactor, {"beta1": 1.0}, {"beta1": "expected a number in [0, 1), got 1.0"}),
        (
            plugin.adafactor,
            {"eps": [0, 1e-3]},
            {"eps": "expected an array of 2 (a number > 0, a number > 0), got an array [0, 0.001]"},
        ),
    ],
    ids=[
        "negative lr",
        "zero lr",
        "infinite lr",
        "beta of 1.5",
        "zero eps",
        "quoted lr",
        "negative decay",
        "momentum of 1",
        "nesterov without momentum",
        "nesterov with dampening",
        "positive decay rate",
        "beta1 of 1",
        "zero adafactor eps",
    ],
)
def test_invalid_values_are_reported_at_their_key(factory, options, message):
    assert problems_of(factory, **options) == message


def test_valid_values_arrive_as_the_optimizer_takes_them():
    options, problems = spec_of(plugin.adamw).check({"lr": 1, "betas": [0, 0.999]})
    assert problems == [] and (options["lr"], options["betas"]) == (1.0, (0.0, 0.999))  # a float, a tuple
    assert problems_of(plugin.sgd, nesterov=True, momentum=0.9) == {}


def test_a_model_without_trainable_parameters_is_a_build_error(model):
    model.requires_grad_(False)
    with pytest.raises(BuildError, match="no trainable parameters"):
        plugin.adamw(model)


def test_importing_the_module_imports_nothing_heavy():
    heavy = ("torch", "transformers", "sklearn", "scipy", "numpy")
    code = f"import sys, xp_plugins.optimizer; print([m for m in {heavy!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"

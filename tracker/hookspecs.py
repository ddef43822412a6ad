"""The hooks a plugin implements: one per component kind, each shaped `register(name, factory)`.

A factory's keyword-only parameters are the schema of its TOML section (names, defaults,
annotations); its positional parameters are supplied by the runner (the model, the optimizer, ...).
"""

import pluggy

PROJECT = "xp"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def xp_register_datasets(register):
    """Register dataset factories: `register(name, factory)`; a factory returns a `TaskData`."""


@hookspec
def xp_register_tokenizers(register):
    """Register tokenizer factories: `factory(model_checkpoint, **options)` returns a `TextEncoder`."""


@hookspec
def xp_register_collators(register):
    """Register collator factories: `factory(tokenizer, **options)` returns a batch collate function."""


@hookspec
def xp_register_models(register):
    """Register model factories: `factory(labels, **options)` returns a `torch.nn.Module`."""


@hookspec
def xp_register_optimizers(register):
    """Register optimizer factories: `factory(model, **options)` returns a `torch.optim.Optimizer`."""


@hookspec
def xp_register_schedulers(register):
    """Register scheduler factories: `factory(optimizer, num_training_steps, **options)`."""


@hookspec
def xp_register_metrics(register):
    """Register metric factories: `factory(**options)` returns a `Metric`."""


@hookspec
def xp_register_runners(register):
    """Register runner factories: `factory(**options)` returns a `Runner`."""

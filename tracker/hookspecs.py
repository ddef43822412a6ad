"""The hooks a plugin implements: one per component kind, each shaped `register(name, factory)`.

A factory's keyword-only parameters are the schema of its TOML section (names, defaults,
annotations); its positional parameters are supplied by the runner (the model, the optimizer, ...).
"""

import pluggy

PROJECT = "xp"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def xp_register_tasks(register):
    """Register task factories: `factory(**options)` returns a `Task` (tracker.components), which
    every other component asks what the task needs: targets, model head, predictions, export."""


@hookspec(firstresult=True)
def xp_default_task():
    """The name of the task a file without a [task] section means (xp's own plugins answer)."""


@hookspec
def xp_register_datasets(register):
    """Register dataset factories: `factory(task, seed, **options)` returns a `TaskData`, its
    targets read by `task.read_targets`."""


@hookspec
def xp_register_tokenizers(register):
    """Register tokenizer factories: `factory(model_checkpoint, **options)` returns a `TextEncoder`,
    which encodes each batch of rows with `Task.encode`."""


@hookspec
def xp_register_collators(register):
    """Register collator factories: `factory(tokenizer, task, **options)` returns a batch collate
    function (padding `labels` with `task.label_padding` when they are sequences)."""


@hookspec
def xp_register_models(register):
    """Register model factories: `factory(head, **options)` returns a `torch.nn.Module` with the
    task's `Head`."""


@hookspec
def xp_register_adapters(register):
    """Register adapter factories: `factory(**options)` returns an `Adapter` (tracker.components),
    which adds a few trainable weights to the model and freezes the rest (an optional
    [adapter] section; LoRA)."""


@hookspec
def xp_register_optimizers(register):
    """Register optimizer factories: `factory(model, **options)` returns a `torch.optim.Optimizer`."""


@hookspec
def xp_register_schedulers(register):
    """Register scheduler factories: `factory(optimizer, num_training_steps, **options)`."""


@hookspec
def xp_register_metrics(register):
    """Register metric factories: `factory(data, **options)` returns a `Metric`; `data` is the
    `TaskData`, whose task names the classes or tags (`label_names`), for scores per class."""


@hookspec
def xp_register_runners(register):
    """Register runner factories: `factory(**options)` returns a `Runner`."""

"""Model plugins: a pretrained transformer with the head the task asks for (tracker.components.Head)."""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any

from tracker.plugin import (
    Annotated,
    BuildError,
    Field,
    Name,
    PositiveInt,
    RunsCode,
    data_rules,
    did_you_mean,
    hookimpl,
    why_not_loaded,
)
from xp_plugins.checkpoint import Checkpoint, resolve_checkpoint
from xp_plugins.encoder_decoder import encoder_decoder

if TYPE_CHECKING:
    from tracker.plugin import Head


def _labels_agree(options, data):
    num_labels, head = options["num_labels"], data.task.head()
    wanted = head.config.get("num_labels")
    if num_labels is not None and wanted is not None and num_labels != wanted:
        yield "num_labels", f"num_labels = {num_labels}, but the task needs {wanted} ({data.task.describe()})"


def _overrides_fit_the_config(options, task):
    """Each override names an attribute of the checkpoint's config, with a value of its type, and
    the changed architecture can be built (on the meta device: no memory, no weights read)."""
    overrides = options["config_overrides"]
    if not overrides:
        return
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(
            resolve_checkpoint(options["checkpoint"]),
            revision=options["revision"],
            trust_remote_code=options["trust_remote_code"],
        )
    except (OSError, ValueError, BuildError):  # the checkpoint itself is reported when the model is built
        return
    wrong = False
    for name, value in overrides.items():
        if not hasattr(config, name):
            wrong = True
            yield (
                "config_overrides",
                (f'{type(config).__name__} has no attribute "{name}"{did_you_mean(name, config.to_dict())}'),
            )
            continue
        current = getattr(config, name)
        if current is not None and not _same_kind(value, current):
            wrong = True
            yield (
                "config_overrides",
                (
                    f"{name} = {value!r}: {type(config).__name__}.{name} is "
                    f"{type(current).__name__} ({current!r}), not {type(value).__name__}"
                ),
            )
        elif isinstance(value, float) and not math.isfinite(value):
            wrong = True
            yield "config_overrides", f"{name} = {value!r}: numbers must be finite"
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            wrong = True
            yield "config_overrides", f"{name} = {value!r}: sizes, counts and rates of a config cannot be negative"
    if not wrong:
        yield from _buildable(config, overrides, task)


def _same_kind(value: Any, current: Any) -> bool:
    if isinstance(current, bool) or isinstance(value, bool):
        return isinstance(current, bool) and isinstance(value, bool)
    if isinstance(current, (int, float)):
        return isinstance(value, (int, float)) and (isinstance(current, float) or isinstance(value, int))
    return isinstance(value, type(current))


def _buildable(config: Any, overrides: dict[str, Any], data: Any):
    import torch

    head = data.task.head()
    for name, value in {**overrides, **head.config}.items():
        setattr(config, name, value)
    try:
        with torch.device("meta"):
            _auto_class(head).from_config(config)
    except Exception as error:
        yield "config_overrides", f"the model cannot be built with these overrides: {type(error).__name__}: {error}"


def _auto_class(head: Head) -> Any:
    import transformers

    return getattr(transformers, head.auto_class)


@data_rules(_labels_agree, _overrides_fit_the_config)
def auto(
    head: Head,
    *,
    checkpoint: Annotated[Checkpoint, Field(description='hub id, local folder, or "pkg:<python package>/<folder>"')],
    num_labels: Annotated[PositiveInt | None, Field(description="must agree with the data when given")] = None,
    config_overrides: Annotated[
        dict[str, Any] | None, Field(description="changes to the model config, e.g. {num_hidden_layers = 6}")
    ] = None,
    from_scratch: Annotated[bool, Field(description="random weights from the config")] = False,
    trust_remote_code: Annotated[bool, RunsCode("runs Python code shipped with the checkpoint")] = False,
    revision: Annotated[Name | None, Field(description="a hub branch, tag or commit")] = None,
) -> Any:
    """A pretrained transformer from a checkpoint, with the head the task asks for ([task]).

    The task names the transformers Auto class and what it sets on the config (for sequence
    classification: the label names as id2label, and the loss). `checkpoint` is a hub id, a local
    folder or "pkg:<package>/<folder>". `num_labels`, when given, must agree with the task.
    `config_overrides` = {num_hidden_layers = 2} changes the config before loading;
    `from_scratch` = true builds the architecture with random weights.
    """
    from transformers import AutoConfig

    path = resolve_checkpoint(checkpoint)
    try:
        config = AutoConfig.from_pretrained(path, revision=revision, trust_remote_code=trust_remote_code, **head.config)
    except (OSError, ValueError) as error:  # missing/unreachable checkpoint, or a folder without a config
        raise BuildError(
            "checkpoint",
            f'cannot load a model config from "{checkpoint}": {why_not_loaded(checkpoint, error)}. For '
            'offline use give a local folder or "pkg:<package>/<folder>".',
        ) from None

    for name, value in (config_overrides or {}).items():  # checked against the config by the data rules
        setattr(config, name, value)

    auto_class = _auto_class(head)
    if from_scratch:
        return auto_class.from_config(config, trust_remote_code=trust_remote_code)
    try:
        return auto_class.from_pretrained(path, config=config, revision=revision, trust_remote_code=trust_remote_code)
    except OSError as error:  # e.g. a folder with a config but no weights
        raise BuildError(
            "checkpoint",
            f'cannot load model weights from "{checkpoint}": {error} '
            "(from_scratch = true builds the model without them)",
        ) from None


@functools.wraps(auto)  # the same keys, rules and behaviour
def sequence_classification(head: Head, **options: Any) -> Any:
    return auto(head, **options)


# Files written before tasks were plugins name the model plugin so; they keep working, under the
# same run names (a file's run name hashes the plugin names it writes).
sequence_classification.__doc__ = (
    "`auto` under the name it had before tasks were plugins: files that name it run unchanged, under the "
    "same run names."
)


@hookimpl
def xp_register_models(register):
    register("auto", auto)
    register("sequence_classification", sequence_classification)
    register("encoder_decoder", encoder_decoder)

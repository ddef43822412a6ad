"""Model plugins: a pretrained transformer with a sequence-classification head sized to the task's labels."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tracker.errors import BuildError, did_you_mean
from tracker.hookspecs import hookimpl
from xp_plugins.checkpoint import resolve_checkpoint

if TYPE_CHECKING:
    from tracker.components import LabelSpec


def sequence_classification(
    labels: LabelSpec,
    *,
    checkpoint: str,
    num_labels: int | None = None,
    config_overrides: dict[str, Any] | None = None,
    from_scratch: bool = False,
    trust_remote_code: bool = False,
    revision: str | None = None,
) -> Any:
    """AutoModelForSequenceClassification from a checkpoint, with the task's label names as id2label.

    `checkpoint` is a hub id, a local folder or "pkg:<package>/<folder>". `num_labels`, when
    given, must agree with the data. `config_overrides` = {num_hidden_layers = 2} changes the
    config before loading; `from_scratch` = true builds the architecture with random weights.
    """
    if num_labels is not None and num_labels != labels.num_labels:
        data = ("is a regression task (1 output)" if labels.is_regression
                else f"has {labels.num_labels} labels: {', '.join(labels.names)}")
        raise BuildError("num_labels", f"num_labels = {num_labels}, but the data {data}")

    from transformers import AutoConfig, AutoModelForSequenceClassification

    path = resolve_checkpoint(checkpoint)
    if labels.is_regression:
        head = {"num_labels": 1, "problem_type": "regression"}
    else:
        head = {"num_labels": labels.num_labels, "problem_type": "single_label_classification",
                "id2label": dict(enumerate(labels.names)),
                "label2id": {name: i for i, name in enumerate(labels.names)}}
    try:
        config = AutoConfig.from_pretrained(path, revision=revision, trust_remote_code=trust_remote_code, **head)
    except (OSError, ValueError) as error:  # missing/unreachable checkpoint, or a folder without a config
        raise BuildError("checkpoint", f'cannot load a model config from "{checkpoint}": {error} For offline '
                                       'use give a local folder or "pkg:<package>/<folder>".') from None

    for name, value in (config_overrides or {}).items():
        if not hasattr(config, name):
            raise BuildError("config_overrides", f'{type(config).__name__} has no attribute "{name}"'
                                                 f"{did_you_mean(name, config.to_dict())}")
        setattr(config, name, value)

    if from_scratch:
        return AutoModelForSequenceClassification.from_config(config, trust_remote_code=trust_remote_code)
    try:
        return AutoModelForSequenceClassification.from_pretrained(
            path, config=config, revision=revision, trust_remote_code=trust_remote_code)
    except OSError as error:  # e.g. a folder with a config but no weights
        raise BuildError("checkpoint", f'cannot load model weights from "{checkpoint}": {error} '
                                       "(from_scratch = true builds the model without them)") from None


@hookimpl
def xp_register_models(register):
    register("sequence_classification", sequence_classification)

"""Adapter plugins: a few weights trained beside a frozen pretrained model, saved alone, put back
on that model to predict. `lora` is LoRA on PEFT (low-rank updates of chosen layers).

PEFT wraps the task's model in its task class (sequence classification, token classification,
question answering, sequence-to-sequence and causal LMs), which also trains the task's head,
newly initialised, by default: a frozen random head would learn nothing.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tracker.plugin import Annotated, BuildError, Field, Name, PositiveInt, did_you_mean, hookimpl

if TYPE_CHECKING:
    from tracker.plugin import Head

# The PEFT task type of each transformers Auto class a task may ask for: PEFT's class for it
# knows the model's inputs and which modules are the head.
PEFT_TASK_TYPES = {
    "AutoModelForSequenceClassification": "SEQ_CLS",
    "AutoModelForTokenClassification": "TOKEN_CLS",
    "AutoModelForQuestionAnswering": "QUESTION_ANS",
    "AutoModelForSeq2SeqLM": "SEQ_2_SEQ_LM",
    "AutoModelForCausalLM": "CAUSAL_LM",
}
# Whether a path names a local folder: a hub id has one "/" at most and no leading "." or "/".
_LOCAL_PREFIXES = ("/", ".", "~")

LayerNames = Annotated[list[Name], Field(min_length=1)]
Dropout = Annotated[float, Field(ge=0, lt=1)]


class LoraAdapter:
    """LoRA with PEFT's LoraConfig: the task model's chosen layers get trainable low-rank updates."""

    def __init__(self, options: Mapping[str, Any]):
        self.options = dict(options)
        self.save_merged = bool(options["save_merged"])

    def describe(self) -> str:
        targets = self.options["target_modules"]
        return f"LoRA r={self.options['r']} on {', '.join(targets) if targets else 'the attention projections'}"

    def attach(self, model: Any, head: Head) -> Any:
        from peft import LoraConfig, get_peft_model

        task_type = PEFT_TASK_TYPES.get(head.auto_class)
        layers = _adaptable_layers(model)
        targets = self.options["target_modules"] or _default_targets(model, layers)
        _check_named(model, "target_modules", targets, layers)
        to_save = self.options["modules_to_save"]
        if to_save:
            _check_named(model, "modules_to_save", to_save, _module_names(model))
        elif task_type is None:  # no PEFT class knows this head: say which modules to train
            raise BuildError(
                "modules_to_save",
                f"the adapter does not know the head of {head.auto_class}: name the modules trained whole "
                f"with the adapter (its head), e.g. [{_quoted(_top_modules(model))}]",
            )
        config = LoraConfig(
            task_type=task_type,
            r=self.options["r"],
            lora_alpha=self.options["alpha"],
            lora_dropout=self.options["dropout"],
            target_modules=list(targets),
            bias=self.options["bias"],
            modules_to_save=list(to_save) if to_save else None,
        )
        with _quiet_peft():
            return get_peft_model(model, config)

    def save(self, model: Any, folder: Path) -> None:
        """The runner saved the adapter alone in `folder` (PEFT's save_pretrained); the task
        model's config goes beside it (its head: classes, names), for the base to be built as it
        was trained."""
        model.get_base_model().config.save_pretrained(folder)

    def merge(self, model: Any) -> Any:
        """The trained model with the adapter merged into its weights, in place: a plain
        transformers model."""
        return model.merge_and_unload()

    def load(self, folder: Path, model_class: str, base_model: str | None) -> Any:
        """The base model (`base_model`, else the one the adapter records) built with the config
        saved in `folder`, the adapter in `folder` merged into it: a plain transformers model."""
        import transformers
        from peft import PeftConfig, PeftModel

        recorded = PeftConfig.from_pretrained(str(folder)).base_model_name_or_path
        base = base_model or recorded
        if _is_missing_folder(base):
            raise FileNotFoundError(
                f'this adapter was trained on the base model "{recorded}", which is not here'
                + (f' (nor is "{base}")' if base != recorded else "")
                + "; point to a copy: xp predict --base-model FOLDER, or mlflow.pyfunc.load_model(uri, "
                'model_config={"base_model": FOLDER})'
            )
        config = transformers.AutoConfig.from_pretrained(folder)
        base_weights = getattr(transformers, model_class).from_pretrained(base, config=config)
        with _quiet_peft():
            return PeftModel.from_pretrained(base_weights, folder).merge_and_unload()


@contextlib.contextmanager
def _quiet_peft() -> Iterator[None]:
    """PEFT asks transformers 5 for `is_gradient_checkpointing`, which it deprecated: a warning
    between two libraries, not the user's business."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
        yield


def _is_missing_folder(name: str | None) -> bool:
    if not name:
        return True
    path = Path(name).expanduser()
    looks_local = name.startswith(_LOCAL_PREFIXES) or name.count("/") > 1
    return looks_local and not path.is_dir()


def _adaptable_layers(model: Any) -> dict[str, list[str]]:
    """The layers LoRA can adapt (linear, 1-D convolution as GPT-2's, embedding), by their own
    name (`query`), with the full names of the modules of that name."""
    from torch import nn
    from transformers.pytorch_utils import Conv1D

    layers: dict[str, list[str]] = {}
    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Embedding, nn.Conv1d, Conv1D)) and name:
            layers.setdefault(name.rsplit(".", 1)[-1], []).append(name)
    return layers


def _module_names(model: Any) -> dict[str, list[str]]:
    names: dict[str, list[str]] = {}
    for name, _ in model.named_modules():
        if name:
            names.setdefault(name.rsplit(".", 1)[-1], []).append(name)
    return names


def _top_modules(model: Any) -> list[str]:
    return [name for name, _ in model.named_children()]


def _default_targets(model: Any, layers: Mapping[str, list[str]]) -> list[str]:
    """PEFT's choice for the model type: its attention projections (query and value for BERT)."""
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING

    model_type = str(getattr(model.config, "model_type", ""))
    targets = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING.get(model_type)
    if not targets:
        raise BuildError(
            "target_modules",
            f'no default layers for the model type "{model_type}": name the layers to adapt, '
            f"e.g. its attention projections; its layers: {_quoted(layers)}",
        )
    return sorted(targets)


def _check_named(model: Any, key: str, names: Iterable[str], known: Mapping[str, list[str]]) -> None:
    """Each name is a module's own name (`query`) or its full name (`bert.encoder.layer.0.attention.self.query`),
    as PEFT matches them; a BuildError naming those that exist, before training."""
    full_names = {full for fulls in known.values() for full in fulls}
    for name in names:
        if name in known or name in full_names or any(full.endswith(f".{name}") for full in full_names):
            continue
        raise BuildError(
            key,
            f'"{name}" names no module of {type(model).__name__}{did_you_mean(name, known)}; '
            f"its {'layers' if key == 'target_modules' else 'modules'}: {_quoted(known)}",
        )


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(f'"{name}"' for name in sorted(names))


def lora(
    *,
    r: Annotated[PositiveInt, Field(description="the rank of each low-rank update")] = 8,
    alpha: Annotated[PositiveInt, Field(description="the updates are scaled by alpha / r")] = 16,
    dropout: Annotated[Dropout, Field(description="dropout on the adapter's input")] = 0.1,
    target_modules: Annotated[
        LayerNames | None,
        Field(description="the layers to adapt, by name (query, value); default: the attention projections"),
    ] = None,
    bias: Annotated[
        Literal["none", "all", "lora_only"], Field(description="which biases train: none, all, or the adapted layers'")
    ] = "none",
    modules_to_save: Annotated[
        LayerNames | None,
        Field(description="modules trained whole beside the adapter; default: the task's head"),
    ] = None,
    save_merged: Annotated[
        bool, Field(description="also save the model with the adapter merged into its weights")
    ] = False,
) -> LoraAdapter:
    """LoRA (PEFT): trainable low-rank updates of the model's attention projections, the rest frozen.

    `r` and `alpha` size and scale the updates; `target_modules` names the layers adapted (default:
    the model type's attention projections, e.g. query and value for BERT); the task's head
    trains whole (`modules_to_save` names other modules to). The run saves the adapter alone,
    with the base model it was trained on recorded; `save_merged` also saves the merged model.
    """
    return LoraAdapter(
        {
            "r": r,
            "alpha": alpha,
            "dropout": dropout,
            "target_modules": target_modules,
            "bias": bias,
            "modules_to_save": modules_to_save,
            "save_merged": save_merged,
        }
    )


@hookimpl
def xp_register_adapters(register):
    register("lora", lora)

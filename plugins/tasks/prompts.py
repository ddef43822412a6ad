"""How an instruction-tuning row becomes a prompt: a template the experiment writes, or the
tokenizer's chat template, or the Alpaca format (the instruction, the optional input, then
"### Response:"), which instruction-tuned models without a chat template are trained on."""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

ALPACA_INSTRUCTION, ALPACA_INPUT, ALPACA_RESPONSE = "### Instruction:\n", "### Input:\n", "### Response:\n"


def placeholders(template: str) -> list[str]:
    """The names of a template's `{name}` fields, in order; a ValueError for a template Python's
    str.format cannot read (an unmatched brace)."""
    return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]


# The fields a template may name: the rows' text columns by their role, first the instruction, then
# its input; and the [task] system prompt.
FIELDS = ("instruction", "input", "system")


@dataclass(frozen=True)
class PromptFormat:
    """Renders each row's prompt: with `template` (fields {instruction}, {input}, {system}), else
    the tokenizer's chat template when it has one (the instruction, and its input, as the user's
    message; `system` as the system message), else the Alpaca format. A row's texts come in the
    order of the dataset's text columns: the instruction, then the input (optional)."""

    template: str | None
    system: str

    def kind(self, tokenizer: Any) -> str:
        """Which format renders, in a few words, for the console."""
        if self.template is not None:
            return "the [task] template"
        return "the tokenizer's chat template" if self.uses_chat_template(tokenizer) else "the Alpaca format"

    def uses_chat_template(self, tokenizer: Any) -> bool:
        return self.template is None and bool(getattr(tokenizer, "chat_template", None))

    def render(self, texts: Sequence[Sequence[Any]], tokenizer: Any) -> list[str]:
        """The prompt of each row (`texts`: the values of each text column, the instruction's first),
        ending where the response starts."""
        instructions = texts[0]
        inputs = texts[1] if len(texts) > 1 else [""] * len(instructions)
        return [self._one(_text(i), _text(g), tokenizer) for i, g in zip(instructions, inputs, strict=True)]

    def _one(self, instruction: str, given: str, tokenizer: Any) -> str:
        if self.template is not None:
            return self.template.format(instruction=instruction, input=given, system=self.system)
        if self.uses_chat_template(tokenizer):
            user = instruction + (f"\n\n{given}" if given else "")
            messages = ([{"role": "system", "content": self.system}] if self.system else []) + [
                {"role": "user", "content": user}
            ]
            return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        opening = f"{self.system}\n\n" if self.system else ""
        supplied = f"{ALPACA_INPUT}{given}\n\n" if given else ""  # Alpaca leaves out an empty input
        return f"{opening}{ALPACA_INSTRUCTION}{instruction}\n\n{supplied}{ALPACA_RESPONSE}"


def _text(value: Any) -> str:
    """A cell as text: a list of sentences joined by spaces."""
    if isinstance(value, (list, tuple)):
        return " ".join(str(part) for part in value)
    return "" if value is None else str(value)

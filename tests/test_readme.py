"""The README is part of the product: its plugin reference matches the registry."""

import os
import re
from pathlib import Path

from tracker import listing
from tracker.registry import load_registry

README = Path(__file__).parents[1] / "README.md"


def test_readme_lists_every_builtin_component_and_key():
    registry = load_registry(environ={**os.environ, "XP_DISABLE_PLUGIN_AUTOLOAD": "1"})
    embedded = re.search(r"<!-- plugins:start -->\n(.*)<!-- plugins:end -->", README.read_text(), re.S)
    assert embedded, "README lost its plugin reference markers"
    assert embedded.group(1) == listing.as_markdown(registry.all()), (
        "README's plugin reference is stale: regenerate it with `xp plugins --markdown`"
    )


def test_readme_starts_with_the_two_setup_commands():
    commands = re.findall(r"^pip install .*$", README.read_text(), re.M)
    assert commands[0].endswith("xp run experiments/quickstart.toml")
    assert commands[1].endswith("python -m pytest")

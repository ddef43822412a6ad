"""What plugins may import from xp is one module, tracker.plugin, and it is documented: xp's own
plugins and the examples import nothing else from xp, and docs/PLUGINS.md names every one of its
names."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import tracker.plugin

REPOSITORY = Path(__file__).resolve().parents[2]
PLUGIN_SOURCES = sorted([*(REPOSITORY / "plugins").rglob("*.py"), *(REPOSITORY / "examples").rglob("*.py")])


def xp_imports(path: Path) -> list[str]:
    """The modules of xp (`tracker`, `tracker.*`) a file imports, at any depth of its code."""
    modules = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.append(node.module)
        elif isinstance(node, ast.Import):
            modules.extend(alias.name for alias in node.names)
    return [module for module in modules if module == "tracker" or module.startswith("tracker.")]


@pytest.mark.parametrize("path", PLUGIN_SOURCES, ids=lambda path: str(path.relative_to(REPOSITORY)))
def test_plugins_import_only_the_plugin_api_from_xp(path):
    assert set(xp_imports(path)) <= {"tracker.plugin"}


def test_every_name_of_the_plugin_api_is_documented():
    page = (REPOSITORY / "docs" / "PLUGINS.md").read_text(encoding="utf-8")
    assert [name for name in tracker.plugin.__all__ if f"`{name}`" not in page] == []

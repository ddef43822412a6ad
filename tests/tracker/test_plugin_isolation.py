"""A plugin cannot break xp: one that raises, calls sys.exit or hangs while importing, whose hook
fails, or that registers a factory xp cannot read is listed as broken with its reason, and every
other command keeps working with the remaining plugins.

Each plugin is a real installed-looking distribution (a dist-info with an `xp.plugins` entry
point) on the PYTHONPATH of a real `python -m tracker` process.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.tracker.test_example_plugin import experiment, xp

GOOD_FACTORY = '''
from tracker.hookspecs import hookimpl
from tracker.spec.declare import PositiveFloat


def lion(model, *, lr: PositiveFloat = 1e-4):
    """A good optimizer factory."""
'''

PLUGINS = {
    "raises at import": ('raise RuntimeError("the plugin is broken")\n', "RuntimeError: the plugin is broken"),
    "exits at import": ("import sys\nsys.exit(3)\n", "SystemExit: the plugin called sys.exit(3)"),
    "hangs at import": ("import time\ntime.sleep(60)\n", "importing the plugin did not finish within 1 s"),
    "hook raises": (
        GOOD_FACTORY
        + """
@hookimpl
def xp_register_optimizers(register):
    raise ValueError("cannot register today")
""",
        "ValueError: cannot register today",
    ),
    "hook exits": (
        GOOD_FACTORY
        + """
@hookimpl
def xp_register_optimizers(register):
    raise SystemExit(4)
""",
        "SystemExit: the plugin called sys.exit(4)",
    ),
    "unreadable signature": (
        "from __future__ import annotations\n"
        + GOOD_FACTORY
        + '''

def broken(model, *, lr: NoSuchType = 1.0):  # noqa: F821
    """An annotation that cannot be resolved."""


@hookimpl
def xp_register_optimizers(register):
    register("lion", lion)
    register("broken", broken)
''',
        'the annotation of key "lr" of broken cannot be resolved',
    ),
}


def _install(site: Path, source: str) -> Path:
    site.mkdir()
    (site / "xp_shaky.py").write_text(source)
    info = site / "xp_shaky-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: xp-shaky\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[xp.plugins]\nshaky = xp_shaky\n")
    return site


@pytest.mark.parametrize("name", PLUGINS)
def test_a_misbehaving_plugin_is_listed_as_broken_and_xp_keeps_working(tmp_path, name):
    source, reason = PLUGINS[name]
    site = _install(tmp_path / "site", source)

    started = time.monotonic()
    listed = xp("plugins", "--json", pythonpath=site, XP_PLUGIN_TIMEOUT="1")
    assert time.monotonic() - started < 30
    assert listed.returncode == 0, listed.stderr
    listing = json.loads(listed.stdout)
    [broken] = listing["broken"]
    assert broken["distribution"] == "xp-shaky" and reason in broken["error"]
    assert "adamw" in {plugin["name"] for plugin in listing["plugins"]}

    validated = xp("validate", str(experiment(tmp_path, "adamw")), pythonpath=site, XP_PLUGIN_TIMEOUT="1")
    assert validated.returncode == 0, validated.stderr
    assert "ok: " in validated.stdout


def test_the_good_factories_of_a_partly_broken_plugin_still_work(tmp_path):
    site = _install(tmp_path / "site", PLUGINS["unreadable signature"][0])

    listing = json.loads(xp("plugins", "--json", pythonpath=site).stdout)
    assert [b["entry_point"] for b in listing["broken"]] == ["xp-shaky:shaky (optimizer broken)"]
    assert "lion" in {plugin["name"] for plugin in listing["plugins"]}
    result = xp(
        "validate", str(experiment(tmp_path, "lion", optimizer="lion")), "--set", "optimizer.lr=-1", pythonpath=site
    )
    assert result.returncode == 2 and "[optimizer] lr: expected a number > 0, got -1" in result.stderr

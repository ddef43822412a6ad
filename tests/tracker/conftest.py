"""Fixtures shared by the tracker tests."""

from __future__ import annotations

import pytest

from tracker.registry import load_registry


@pytest.fixture(scope="module")
def registry():
    """The installed built-in plugins, as `xp` sees them; a module that needs other plugins
    (fakes, extra ones) defines its own `registry`."""
    return load_registry()

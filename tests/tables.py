"""Reading the tables xp prints (tracker.tables): a header, a rule, then one line per row."""

from __future__ import annotations


def table_rows(text: str) -> list[list[str]]:
    """The rows under the header and its rule, each split on whitespace (so a cell holding a
    space spans two fields; the first columns, experiment, runner and status, have none)."""
    header, rule, *rows = text.splitlines()
    assert header.split()[:3] == ["experiment", "runner", "status"], text
    assert set(rule.replace(" ", "")) == {"─"}, text
    return [row.split() for row in rows]

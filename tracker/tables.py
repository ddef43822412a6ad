"""Terminal tables, drawn by rich: aligned columns, plain text when the output is not a terminal."""

from __future__ import annotations

from collections.abc import Sequence


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]], title: str | None = None) -> str:
    """The table as text, as wide as its contents (never wrapped to the terminal: piped into a
    file or `grep`, a row stays one line)."""
    import io

    from rich.box import SIMPLE_HEAD
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(*header, title=title, box=SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for row in rows:
        # Text, not markup: a cell's "[model]" (a section named in an error) is shown as written.
        table.add_row(*(Text(str(cell)) for cell in row))
    buffer = io.StringIO()
    Console(file=buffer, width=10_000, color_system=None, highlight=False).print(table)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"

"""Terminal tables show their cells as written."""

from tracker.tables import render_table


def test_a_cell_naming_a_section_in_brackets_keeps_it():
    """rich would read "[model]" as markup and drop it: an error's section vanished from the summary."""
    text = render_table(["status", "main metric"], [["invalid", "no checkpoint: set one in the [model] section"]])
    assert "set one in the [model] section" in text

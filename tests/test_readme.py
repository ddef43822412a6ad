"""The README is the overview a newcomer reads first: the two set-up commands, one example of every
command, and a link to every page of docs/. What it shows is checked with the rest of the docs
(tests/test_docs.py)."""

import re

from tests.test_docs import README, REPO, read_page, relative_links, xp_invocations
from tracker.cli import main as xp


def test_readme_starts_with_the_two_setup_commands():
    commands = re.findall(r"^pip install .*$", README.read_text(), re.M)
    assert commands[0].endswith("xp run experiments/quickstart.toml")
    assert commands[1].endswith("python -m pytest")


def test_readme_shows_every_command_once_at_least():
    shown = {arguments[0] for block in read_page(README).blocks for arguments in xp_invocations(block) if arguments}
    assert set(xp.commands) - shown == set(), "the README's tour lacks an example of these commands"


def test_readme_links_every_page_of_the_docs():
    linked = {(README.parent / link.partition("#")[0]).resolve() for link in relative_links(read_page(README))}
    pages = set((REPO / "docs").rglob("*.md"))
    assert {page.relative_to(REPO).as_posix() for page in pages - linked} == set(), "pages the README does not link"

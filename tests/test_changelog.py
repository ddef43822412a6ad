"""The changelog is the release history users read: `xp --version` names its newest release."""

import re
from pathlib import Path

from click.testing import CliRunner

import tracker
from tracker.cli import main

CHANGELOG = Path(__file__).parents[1] / "CHANGELOG.md"
RELEASE_HEADING = re.compile(r"^## \[(\d+\.\d+\.\d+)\] - (\d{4}-\d{2}-\d{2})$", re.M)


def releases() -> list[str]:
    return RELEASE_HEADING.findall(CHANGELOG.read_text())


def test_xp_version_prints_the_newest_release_of_the_changelog():
    newest_version, _ = releases()[0]
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"xp, version {newest_version}"
    assert tracker.__version__ == newest_version


def test_the_changelog_keeps_an_unreleased_section_above_releases_newest_first():
    text = CHANGELOG.read_text()
    assert text.index("## [Unreleased]") < text.index("## [" + releases()[0][0] + "]")
    versions = [tuple(int(part) for part in version.split(".")) for version, _ in releases()]
    dates = [date for _, date in releases()]
    assert versions == sorted(versions, reverse=True)
    assert dates == sorted(dates, reverse=True)
    assert {"0.1.0", "0.2.0"} <= {version for version, _ in releases()}


def test_every_change_sits_under_a_keep_a_changelog_heading():
    kinds = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}
    headings = re.findall(r"^### (.+)$", CHANGELOG.read_text(), re.M)
    assert headings
    assert set(headings) <= kinds

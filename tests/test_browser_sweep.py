"""A sweep in the MLflow UI, in a real headless Chromium used as a person would: the experiment's
runs table lists the study's run with its two trials folded under it, and its expander unfolds
them right below it, indented.

MLflow 3 nests a run under the run its `mlflow.parentRunId` tag names. The parent's Run Name cell
gets a +/- expander; its children stay out of the table until that is clicked (the open state is
kept in the browser's local storage, so a fresh profile starts folded), then are listed below it,
their names pushed a nesting step to the right by a spacer that grows with the level (24 px a
level). ag-grid's own `ag-row-level-*` class is 0 on every row: the nesting is MLflow's alone.

Driven with test_browser's Page; skipped without chromium, except in CI (CI=true).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.mlflow_helpers import mlflow_server, rest
from tests.test_browser import CHROMIUM, CLASSIC_VIEW, page  # noqa: F401 (page: the fixture)
from tests.test_sweep import STUDY, sweep_file, xp

# Decided before the module's sweep is run: a minute of training is no use without a browser.
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="chromium not installed (apt-get install -y chromium); CI runs this test",
)

TRIALS = [f"{STUDY}-trial-0", f"{STUDY}-trial-1"]
RUN_NAME = '[col-id*="Run Name"]'
# The runs listed in the table, top to bottom: each one's name, where its name starts on screen,
# where its row is, and whether its Run Name cell has an expander.
RUN_ROWS = f"""all('[role=row][row-id]').map(row => {{
  const cell = row.querySelector('{RUN_NAME}');
  const link = cell && cell.querySelector('a[href*="/runs/"]');
  return link && {{name: link.innerText.trim(), left: link.getBoundingClientRect().left,
                   top: row.getBoundingClientRect().top, expander: !!cell.querySelector('button')}};
}}).filter(Boolean).sort((a, b) => a.top - b.top)"""


@dataclass
class Swept:
    """A finished grid sweep of two learning rates and a server on its store."""

    base: str
    experiment_id: str


@pytest.fixture(scope="module")
def swept(tmp_path_factory, tiny_checkpoint) -> Iterator[Swept]:
    folder = tmp_path_factory.mktemp("swept")
    file = sweep_file(folder, tiny_checkpoint, {"optimizer.lr": [1e-4, 1e-3]}, epochs=1)
    result = xp(folder, "sweep", str(file))
    assert result.returncode == 0, result.stderr[-3000:]
    with mlflow_server(f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}", folder) as base:
        experiments = rest(base, "/api/2.0/mlflow/experiments/search", {"max_results": 100})["experiments"]
        [parent] = rest(
            base,
            "/api/2.0/mlflow/runs/search",
            {
                "experiment_ids": [experiment["experiment_id"] for experiment in experiments],
                "filter": "tags.`xp.sweep` = 'parent'",
            },
        )["runs"]
        yield Swept(base, parent["info"]["experiment_id"])


def test_the_trials_of_a_sweep_unfold_under_the_study_run_in_the_runs_table(swept, page):  # noqa: F811
    # 1. The table finds all three runs but lists only the study's, with an expander: the
    # trials are folded under it. (Were they not nested, all three would be listed, no expander.)
    page.open(f"{swept.base}/#/experiments/{swept.experiment_id}?{CLASSIC_VIEW}")
    page.wait_for("withText('span', '3 matching runs')", "3 matching runs in the runs table")
    page.wait_for(
        f"{RUN_ROWS}.some(row => row.name === {json.dumps(STUDY)} && row.expander)", "the study's run, with an expander"
    )
    folded = page.evaluate(RUN_ROWS)
    assert [row["name"] for row in folded] == [STUDY], folded
    page.click(expander(STUDY), "the expander of the study's run", screenshot="1-trials-folded")

    # 2. Unfolded: the two trials right below the study's run, their names indented, no
    # expander of their own.
    rows = page.wait_for(
        f"(rows => rows.length === 3 && rows[0].name === {json.dumps(STUDY)} && rows)({RUN_ROWS})",
        "the two trials listed below the study's run",
    )
    page.screenshot("2-trials-unfolded")
    parent, *trials = rows
    assert sorted(row["name"] for row in trials) == TRIALS, rows
    assert [row["expander"] for row in trials] == [False, False], rows
    indents = {round(row["left"] - parent["left"]) for row in trials}
    assert len(indents) == 1 and indents.pop() >= 16, rows  # one nesting step, the same for both

    # 3. The expander folds them away again.
    page.click(expander(STUDY), "the expander of the study's run")
    page.wait_for(f"{RUN_ROWS}.map(row => row.name).join() === {json.dumps(STUDY)}", "the trials folded again")
    page.screenshot("3-trials-folded-again")


def expander(run_name: str) -> str:
    """The +/- button in the Run Name cell of the row of `run_name`."""
    return (
        f"all('[role=row][row-id] {RUN_NAME}').find(cell => "
        f"cell.querySelector('a[href*=\"/runs/\"]')?.innerText.trim() === {json.dumps(run_name)})"
        "?.querySelector('button')"
    )

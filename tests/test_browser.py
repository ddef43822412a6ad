"""The MLflow UI in a real headless Chromium, used as a person would: the experiment opens on its
runs table, two runs are ticked and compared on one `train/loss` chart, and a run's page leads to
its Logged Model with the metrics linked to it.

Chromium is driven over the Chrome DevTools Protocol on a pipe (`--remote-debugging-pipe`: JSON
messages ended by a NUL byte on its file descriptors 3 and 4), so neither a client library nor a
port is needed. Clicks are real mouse events at the element's place on screen, sent once the
element stands still and nothing covers it. A screenshot of every step is saved in tmp_path.

Needs Debian's chromium (`apt-get install -y chromium`); skipped without it, except in CI
(CI=true), where a missing browser is a failure.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.mlflow_helpers import REGISTERED_MODEL

pytest_plugins = ["tests.mlflow_helpers"]

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
# MLflow 3.17 chooses between its GenAI and its classic machine-learning view from this URL
# parameter, else from the reader's last choice, else GenAI; the experiment's
# `mlflow.experimentKind` tag does not steer it. Links into the UI must carry it.
CLASSIC_VIEW = "workflowType=machine_learning"
LOSS = "train/loss"


def test_experiment_opens_on_its_runs_and_two_ticked_runs_share_one_loss_chart(tracked_pair, page):
    first, second = tracked_pair.run_names
    experiment = f"#/experiments/{tracked_pair.experiment_id}"

    # 1. The experiment opens on its runs table (the classic view), not on the GenAI overview.
    page.open(f"{tracked_pair.base}/{experiment}?{CLASSIC_VIEW}")
    page.wait_for(
        f"all('[role=row]').filter(row => {json.dumps(tracked_pair.run_names)}.some("
        "name => row.innerText.includes(name))).length >= 2",
        "both runs listed in the runs table",
    )
    assert page.evaluate("location.hash.split('?')[0]") == f"{experiment}/runs"
    page.screenshot("1-runs-table")

    # 2. Tick both runs, compare them, and plot train/loss for both.
    for name in (first, second):
        page.click(row_checkbox(name), f"the checkbox of {name}")
        page.wait_for(f"{row_checkbox(name)}.checked", f"{name} ticked")
    page.screenshot("2-two-runs-ticked")
    page.click("document.querySelector('[data-testid=runs-compare-button]')", "the Compare button")
    page.wait_for("withText('h2, span, div', 'Comparing 2 Runs from 1 Experiment')", "the compare page")
    page.click(f"withText('a[title=\"Plot chart\"]', {json.dumps(LOSS)})", f"the {LOSS} link in the metrics table")
    chart = page.wait_for(chart_card(LOSS, [first, second]), f"the {LOSS} chart with a legend of both runs")
    page.screenshot("3-loss-chart")
    # Two curves drawn in the plot, one in each legend entry's colour. MLflow colours a run by a
    # hash of its id into a palette, so two runs now and then share a colour: count the curves.
    assert len(chart["curves"]) >= 2, chart
    assert set(chart["legend"]) == {f"{first} ({LOSS})", f"{second} ({LOSS})"}, chart
    assert set(chart["legend"].values()) <= set(chart["curves"]), chart


def test_run_page_leads_to_its_logged_model_and_linked_metrics(tracked_pair, page):
    run, model = tracked_pair.runs[0], tracked_pair.models[0]  # the run whose model was registered
    run_name, model_id = run["info"]["run_name"], model["info"]["model_id"]
    model_route = f"#/experiments/{tracked_pair.experiment_id}/models/{model_id}"
    eval_loss = {metric["key"]: metric["value"] for metric in model["data"]["metrics"]}["eval/loss"]

    # 1. The run's page: its final eval/loss is linked to the model, which its Logged models
    # section lists.
    page.open(
        f"{tracked_pair.base}/#/experiments/{tracked_pair.experiment_id}/runs/{run['info']['run_id']}?{CLASSIC_VIEW}"
    )
    row = page.wait_for(
        table_row("eval/loss", linking_to=model_route), "eval/loss in the run's metrics, linked to the model"
    )
    assert (float(row["cells"][1]), row["cells"][-1]) == (eval_loss, "model"), row
    page.click(
        logged_model_link(model_route),
        "the model in the run's Logged models (1) section",
        screenshot="1-run-logged-models",
    )

    # 2. The model's page: its name and id, the run that logged it, its registered version, and
    # the run's final eval/loss linked to it.
    page.wait_for(
        f"withText('h2', 'model') && testId('key-value-Model ID')?.innerText.endsWith({json.dumps(model_id)})",
        f"the page of the Logged Model named model, {model_id}",
    )
    assert page.evaluate("location.hash.split('?')[0]") == model_route
    page.wait_for(
        f"testId('key-value-Source run')?.innerText.endsWith({json.dumps(run_name)})",
        f"{run_name} as the model's source run",
    )
    page.wait_for(
        f"all('a').some(a => a.getAttribute('href') === '#/models/{REGISTERED_MODEL}/versions/1')",
        f"the registered version {REGISTERED_MODEL} v1",
    )
    row = page.wait_for(
        table_row("eval/loss", "testId('logged-model-details-metrics-table')"), "eval/loss in the model's metrics table"
    )
    page.screenshot("2-logged-model")
    _metric, _dataset, source_run, value = row["cells"]
    assert (source_run, float(value)) == (run_name, eval_loss), row


def row_checkbox(run_name: str) -> str:
    """The runs table's selection checkbox on the row of `run_name`."""
    return (
        f"all('[role=row]').find(row => row.innerText.includes({json.dumps(run_name)}))"
        "?.querySelector('input[aria-label^=\"Press Space to toggle row selection\"]')"
    )


def table_row(first_cell: str, within: str = "document", linking_to: str = "") -> str:
    """The texts of the cells and the links of the table row whose first cell reads `first_cell`
    (and which links to a route starting with `linking_to`); null until there is one."""
    return (
        f"all('[role=row]', {within}).map(row => ({{"
        "cells: all('[role=cell]', row).map(cell => cell.innerText.trim()),"
        " links: all('a', row).map(a => a.getAttribute('href') || '')}))"
        f".find(row => row.cells[0] === {json.dumps(first_cell)}"
        f" && row.links.some(link => link.startsWith({json.dumps(linking_to)})))"
    )


def logged_model_link(model_route: str) -> str:
    """The link to the model at `model_route` in the run page's "Logged models (1)" section: the
    smallest box around that heading with such a link, as long as no other section is in it."""
    link = json.dumps(f'a[href^="{model_route}"]')
    return f"""(() => {{
      let section = withText('h4', 'Logged models (1)');
      while (section && !section.querySelector({link})) section = section.parentElement;
      return section && all('h4', section).length === 1 ? section.querySelector({link}) : null;
    }})()"""


def chart_card(title: str, run_names: list[str]) -> str:
    """The chart titled `title` whose legend names every run: its legend (text -> colour) and the
    colours of the curves drawn in its plot; null until it is rendered."""
    entries = json.dumps([f"{name} ({title})" for name in run_names])
    return f"""(() => {{
      const complete = card => withText('*', {json.dumps(title)}, card)
        && {entries}.every(entry => withText('span', entry, card));
      for (const plot of all('.js-plotly-plot')) {{
        let card = plot;  // the smallest box around the plot with the title and the whole legend
        while (card && !complete(card)) card = card.parentElement;
        if (!card || all('.js-plotly-plot', card).length > 1) continue;
        const legend = Object.fromEntries({entries}.map(entry => {{
          const swatch = withText('span', entry, card).parentElement.querySelector('svg path');
          return [entry, swatch && swatch.style.stroke];
        }}));
        const curves = all('g.trace path.js-line', plot).filter(line => (line.getAttribute('d') || '').includes('L'))
          .map(line => line.style.stroke);
        if (curves.length >= {len(run_names)}) return {{legend, curves}};
      }}
      return null;
    }})()"""


@pytest.fixture
def page(tmp_path) -> Iterator[Page]:
    """A tab of a fresh headless Chromium; its profile, log and screenshots in tmp_path."""
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but chromium is not installed (apt-get install -y chromium)")
        pytest.skip("chromium not installed (apt-get install -y chromium); CI runs this test")
    with Page.launched(CHROMIUM, tmp_path) as opened:
        yield opened


# Prepended to every evaluated expression: the few DOM look-ups the tests are written with.
HELPERS = """
const all = (selector, root = document) => [...root.querySelectorAll(selector)];
const withText = (selector, text, root = document) => all(selector, root).find(e => e.textContent.trim() === text);
const testId = (id, root = document) => root.querySelector(`[data-testid="${id}"]`);
"""
# The point to click on the element, once it is laid out, in view, not moving since the last
# look and not covered by anything else (a menu, a chart that is still growing above it).
CLICK_POINT = """((element) => {
  if (!element) return null;
  element.scrollIntoView({block: 'center', inline: 'center'});
  const box = element.getBoundingClientRect();
  const [x, y] = [box.x + box.width / 2, box.y + box.height / 2];
  const place = [box.x, box.y, box.width, box.height].join();
  const still = window.__lastClickPlace === place;
  window.__lastClickPlace = place;
  const hit = document.elementFromPoint(x, y);
  return still && box.width > 0 && hit && element.contains(hit) ? [x, y] : null;
})(%s)"""


# Chromium reads DevTools commands on its fd 3 and writes answers on its fd 4: this moves the
# pipe's ends there, then becomes Chromium (no shell: dash takes no fd above 9, no preexec_fn:
# not safe in a process with threads).
PIPE_ON_FDS_3_AND_4 = """
import fcntl, os, sys
ends = [fcntl.fcntl(int(fd), fcntl.F_DUPFD_CLOEXEC, 10) for fd in sys.argv[1:3]]
for fd in sys.argv[1:3]:
    os.close(int(fd))
os.dup2(ends[0], 3)
os.dup2(ends[1], 4)
os.execv(sys.argv[3], sys.argv[3:])
"""


class Page:
    """One tab of a headless Chromium, driven over the DevTools Protocol on a pipe."""

    WIDTH, HEIGHT = 1600, 1000

    def __init__(self, browser: subprocess.Popen, commands: int, answers: int, shots: Path):
        self.browser, self.commands, self.answers, self.shots = browser, commands, answers, shots
        self.received = b""
        self.last_id = 0
        self.session = None  # until attached, commands go to the browser itself
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=self.WIDTH,
            height=self.HEIGHT,
            deviceScaleFactor=1,
            mobile=False,
        )

    @classmethod
    @contextlib.contextmanager
    def launched(cls, executable: str, folder: Path) -> Iterator[Page]:
        """Chromium with a fresh profile in `folder`, its log and screenshots there too."""
        to_browser, commands = os.pipe()
        answers, from_browser = os.pipe()
        launch = [
            sys.executable,
            "-c",
            PIPE_ON_FDS_3_AND_4,
            str(to_browser),
            str(from_browser),
            executable,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={folder / 'profile'}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        log = (folder / "chromium.log").open("w")
        browser = subprocess.Popen(
            launch, pass_fds=(to_browser, from_browser), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
        os.close(to_browser)
        os.close(from_browser)
        try:
            yield cls(browser, commands, answers, folder)
        finally:
            os.close(commands)  # Chromium exits when its command pipe closes
            try:
                browser.wait(timeout=10)
            except subprocess.TimeoutExpired:
                browser.kill()
                browser.wait()
            os.close(answers)
            log.close()

    def send(self, method: str, timeout: float = 30, **params: Any) -> dict[str, Any]:
        """One DevTools command, to the tab once attached; its result. Events are not needed: the
        tests look at the page itself."""
        self.last_id += 1
        message = {"id": self.last_id, "method": method, "params": params}
        if self.session:
            message["sessionId"] = self.session
        os.write(self.commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            answer = self._next_message(deadline, method)
            if answer.get("id") == self.last_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer["result"]

    def _next_message(self, deadline: float, method: str) -> dict[str, Any]:
        while b"\0" not in self.received:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.answers], [], [], left)[0]:
                raise TimeoutError(f"Chromium did not answer {method}")
            chunk = os.read(self.answers, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium exited; see {self.shots / 'chromium.log'}")
            self.received += chunk
        message, self.received = self.received.split(b"\0", 1)
        return json.loads(message)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page, with HELPERS in scope; an element is
        returned as true."""
        wrapped = f"(() => {{ {HELPERS}; const value = ({expression}); return value instanceof Node || value; }})()"
        answer = self.send("Runtime.evaluate", expression=wrapped, returnByValue=True)
        if "exceptionDetails" in answer:
            raise RuntimeError(f"{expression}: {answer['exceptionDetails'].get('exception', {}).get('description')}")
        return answer["result"].get("value")

    def open(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def wait_for(self, expression: str, what: str, timeout: float = 30) -> Any:
        """The first truthy value of `expression`, looked at every tenth of a second."""
        deadline = time.monotonic() + timeout
        while not (value := self.evaluate(expression)):
            if time.monotonic() > deadline:
                shot = self.screenshot("timed-out")
                raise AssertionError(
                    f"{what}: not on the page after {timeout}s ({self.evaluate('location.href')}; screenshot {shot})"
                )
            time.sleep(0.1)
        return value

    def click(self, element: str, what: str, screenshot: str | None = None, timeout: float = 30) -> None:
        """A real left click in the middle of the element that `element` evaluates to; the
        screenshot, if named, is taken just before, with the element in view."""
        x, y = self.wait_for(CLICK_POINT % element, f"{what}, visible and clickable", timeout)
        if screenshot:
            self.screenshot(screenshot)
        self.send("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def screenshot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"]))
        return path

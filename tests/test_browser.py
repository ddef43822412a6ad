"""The MLflow UI, rendered by a real headless Chromium: the experiment page lists both runs.

Needs Debian's chromium (`apt-get install -y chromium`); skipped without it, except in CI
(CI=true), where a missing browser is a failure.
"""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

pytest_plugins = ["tests.mlflow_helpers"]

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)


def rendered_dom(url: str, profile, budget_ms: int) -> str:
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}", "--dump-dom", url],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_experiment_page_lists_both_runs(tracked_pair, tmp_path):
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but chromium is not installed (apt-get install -y chromium)")
        pytest.skip("chromium not installed (apt-get install -y chromium); CI runs this test")
    # MLflow 3's experiment page opens on the GenAI overview; the runs table is its /runs tab.
    url = f"{tracked_pair.base}/#/experiments/{tracked_pair.experiment_id}/runs"
    dom = rendered_dom(url, tmp_path / "profile", 20000)
    missing = [name for name in tracked_pair.run_names if name not in dom]
    assert not missing, f"run names {missing} not in the rendered page ({len(dom)} characters of DOM)"

"""A test that fails or times out ends the processes it started (tests/leftover_processes.py)."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import psutil

pytest_plugins = ["pytester"]

REPO_ROOT = Path(__file__).parents[1]

STARTS_A_PROCESS_AND_TIMES_OUT = """
    import subprocess, sys
    from pathlib import Path

    def test_a_run_that_never_ends(tmp_path_factory):
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
        Path({pid_file!r}).write_text(str(child.pid))
        child.wait(timeout=0.5)  # raises TimeoutExpired: the test fails with its child running
"""

SESSION_SERVER = """
    import subprocess, sys
    from pathlib import Path

    import psutil
    import pytest

    @pytest.fixture(scope="session")
    def server():
        process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        Path({pid_file!r}).write_text(str(process.pid))
        yield process
        process.kill()
        process.wait()

    def test_first(server):
        assert server.poll() is None

    def test_second(server):
        assert server.poll() is None  # still running: the first test's cleanup left it alone
"""


def running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def run_with_the_fixture(pytester, monkeypatch, source: str):
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    pytester.makepyfile(textwrap.dedent(source))
    return pytester.runpytest_subprocess("-p", "tests.leftover_processes", "-p", "no:cacheprovider")


def gone_soon(pid: int, seconds: float = 5) -> bool:
    deadline = time.monotonic() + seconds
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not running(pid)


def test_a_test_that_times_out_leaves_no_process_behind(pytester, monkeypatch, tmp_path):
    pid_file = tmp_path / "pid"
    result = run_with_the_fixture(pytester, monkeypatch, STARTS_A_PROCESS_AND_TIMES_OUT.format(pid_file=str(pid_file)))
    result.assert_outcomes(failed=1)
    pid = int(pid_file.read_text())
    assert gone_soon(pid), f"the failed test's process {pid} is still running"


def test_a_process_of_a_session_fixture_outlives_each_test_until_the_session_ends(pytester, monkeypatch, tmp_path):
    pid_file = tmp_path / "pid"
    result = run_with_the_fixture(pytester, monkeypatch, SESSION_SERVER.format(pid_file=str(pid_file)))
    result.assert_outcomes(passed=2)
    assert gone_soon(int(pid_file.read_text()))  # ended by its own fixture at the end of the session

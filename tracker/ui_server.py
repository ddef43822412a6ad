"""`xp ui`'s MLflow server: its address checked before it starts, its URL given only once it
answers, and the whole of it (uvicorn and its workers, MLflow's job runner) stopped however
`xp ui` ends: Ctrl-C, SIGTERM, SIGHUP, or the server failing."""

from __future__ import annotations

import collections
import contextlib
import errno
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import IO, Any

from tracker.redact import mask_uri
from tracker.tracking.uris import CLASSIC_VIEW

# MLflow's UI starts four uvicorn workers and a job runner: about 15 s on a quiet laptop, over a
# minute on a busy two-core machine.
STARTUP_SECONDS = 240
# What uvicorn needs to finish its requests and the job runner its consumers after SIGTERM; then
# SIGKILL. A UI server only reads the store, and SQLite survives a kill.
GRACE_SECONDS = 10
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
WILDCARDS = ("", "0.0.0.0", "::")  # listen on every address; reached from here on loopback
_KEPT_LINES = 50  # the tail of the server's output kept to explain a failure
_LOG_PREFIX = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \w+(?: [\w.]+)?:\s*")  # MLflow's and uvicorn's
# Lines that never say why a server failed: warnings, the source line under a warning, traceback
# frames (indented), and MLflow's own pointer to the lines above it.
_NOISE = re.compile(r"^\s|Warning: |Please see the logs above|Press CTRL\+C|^Traceback \(most recent call last\)")


class UIError(Exception):
    """Why the UI is not served, in one line; `bad_input` when the command line's choice is why
    (exit code 2), otherwise the server failed (exit code 1)."""

    def __init__(self, line: str, bad_input: bool = False):
        super().__init__(line)
        self.bad_input = bad_input


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP, stopping `xp ui` as Ctrl-C does."""


def serve(store: str, host: str, port: int, say: Callable[[str], None]) -> None:
    """Serve the MLflow UI on `store` until a stop signal, then stop every process of it. `say`
    tells the person what happens; UIError when the UI cannot be served or stops on its own."""
    check_address(host, port)
    shown = mask_uri(store)
    signals = StopSignals()
    with signals.handled():
        say(f"starting the MLflow UI on {shown} ...")
        server = None
        try:
            server = UIServer.start(store, host, port)
            base = server.wait_until_answering(STARTUP_SECONDS)
            say(f"MLflow UI: {base}/#/experiments?{CLASSIC_VIEW}  (store: {shown}; Ctrl-C stops it)")
            code = server.process.wait()
            server.stop()  # what is left of it, so that its last words are all read
            raise UIError(f"the MLflow UI stopped on its own (exit code {code}): {server.last_words()}")
        except KeyboardInterrupt:  # Ctrl-C, SIGTERM or SIGHUP: stopping is what was asked
            pass
        finally:
            signals.hold()
            if server is not None:
                server.stop(signals.again)


def check_address(host: str, port: int) -> None:
    """UIError (bad input) unless the server can listen on `host`:`port`, bound here the way
    uvicorn will bind it."""
    try:
        _bind(host, port).close()
    except socket.gaierror as error:
        raise UIError(f"--host {host}: cannot resolve it ({_lower(error.strerror)}); {_HOSTS}", True) from None
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise UIError(_port_in_use(host, port), True) from None
        if error.errno == errno.EADDRNOTAVAIL:
            raise UIError(
                f"--host {host}: no network interface of this machine has that address; {_HOSTS}", True
            ) from None
        if error.errno == errno.EACCES:
            raise UIError(f"--port {port}: permission denied; expected a port from 1024 to 65535", True) from None
        raise UIError(f"cannot listen on {host} port {port} ({_lower(error.strerror)})", True) from None


_HOSTS = "expected one of this machine's addresses, such as 127.0.0.1, or 0.0.0.0 for all of them"


def _bind(host: str, port: int) -> socket.socket:
    # uvicorn's own choice of family, and its SO_REUSEADDR: Linux still refuses a port something
    # listens on, while a port left in TIME_WAIT by a UI just stopped is free to take again.
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
    except BaseException:
        listener.close()
        raise
    return listener


def _port_in_use(host: str, port: int) -> str:
    """One line naming the port and the way out: the next free port, when one is near."""
    for candidate in range(port + 1, min(port + 20, 65535) + 1):
        with contextlib.suppress(OSError):
            _bind(host, candidate).close()
            return f"port {port} is in use on {host} (another MLflow UI?); give another, e.g. --port {candidate}"
    return f"port {port} is in use on {host} (another MLflow UI?); give another with --port N"


class UIServer:
    """An `mlflow ui` process in a session of its own, with the tail of what it printed."""

    def __init__(self, process: subprocess.Popen[bytes], host: str, port: int):
        self.process = process
        self.host, self.port = host, port
        self.base = local_base(host, port)  # the URL that reaches it from this machine
        self.stopped = False
        self.output: collections.deque[str] = collections.deque(maxlen=_KEPT_LINES)
        self.reader = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self.reader.start()

    @classmethod
    def start(cls, store: str, host: str, port: int) -> UIServer:
        command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", store]
        process = subprocess.Popen(
            [*command, "--host", host, "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            # Its own session: the terminal's Ctrl-C and hang-up reach `xp ui`, which stops the
            # whole group, and the group holds every process MLflow starts.
            start_new_session=True,
        )
        return cls(process, host, port)

    def wait_until_answering(self, seconds: float) -> str:
        """The server's base URL once it answers /health; UIError if it dies or stays silent."""
        deadline = time.monotonic() + seconds
        while True:
            if self.process.poll() is not None:
                self.stop()
                raise self._failure()
            if _answers(f"{self.base}/health"):
                return self.base
            if time.monotonic() > deadline:
                self.stop()
                raise UIError(f"the MLflow UI did not answer within {seconds:.0f} s: {self.last_words()}")
            time.sleep(0.5)

    def _failure(self) -> UIError:
        words = self.last_words()
        if "address already in use" in words.lower():  # taken between check_address and its bind
            return UIError(_port_in_use(self.host, self.port), True)
        return UIError(f"the MLflow UI exited before it answered (exit code {self.process.returncode}): {words}")

    def last_words(self) -> str:
        """The last line of its output that says something: an error, not a warning or a frame."""
        self.reader.join(timeout=2)  # what it printed before it ended
        for line in reversed(self.output):
            text = _LOG_PREFIX.sub("", line.rstrip())
            if text and not _NOISE.search(text):
                return text
        return "it printed nothing"

    def stop(self, again: threading.Event | None = None) -> None:
        """SIGTERM to every process of its group, SIGKILL to those still there after the grace
        period, or as soon as `again` is set (a second Ctrl-C). Once: a group id may be reused."""
        if self.stopped:
            return
        self.stopped = True
        again = again or threading.Event()
        _signal_group(self.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + GRACE_SECONDS
        while _group_alive(self.process) and time.monotonic() < deadline and not again.is_set():
            time.sleep(0.1)
        _signal_group(self.process.pid, signal.SIGKILL)
        deadline = time.monotonic() + GRACE_SECONDS
        while _group_alive(self.process) and time.monotonic() < deadline:
            time.sleep(0.1)

    def _read(self, stream: IO[bytes]) -> None:
        for line in stream:
            self.output.append(line.decode(errors="replace"))


def local_base(host: str, port: int) -> str:
    """http://HOST:PORT as a browser on this machine reaches it: loopback for a wildcard host."""
    if host in WILDCARDS:
        host = "::1" if ":" in host else "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _answers(url: str) -> bool:
    # No proxy: HTTP_PROXY in the environment must not send a look at this machine elsewhere.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=2) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _signal_group(group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signum)


def _group_alive(leader: subprocess.Popen[bytes]) -> bool:
    leader.poll()  # reaped, or the group would hold on to its zombie
    try:
        os.killpg(leader.pid, 0)
    except ProcessLookupError:
        return False
    return True


class StopSignals:
    """Ctrl-C, SIGTERM and SIGHUP (a closed terminal, a process manager): the first raises
    KeyboardInterrupt, so that `xp ui` stops its server; any later one, or any once `hold()` is
    called, only sets `again`: stopping goes on, without its grace period."""

    def __init__(self) -> None:
        self.again = threading.Event()
        self.holding = False

    def hold(self) -> None:
        self.holding = True

    def handle(self, signum: int, frame: Any) -> None:
        if self.holding:
            self.again.set()
            return
        self.holding = True
        raise KeyboardInterrupt() if signum == signal.SIGINT else Stopped()

    @contextlib.contextmanager
    def handled(self) -> Iterator[None]:
        """STOP_SIGNALS handled in the block, the handlers before put back after. Outside the
        main thread signals cannot be handled: nothing changes there."""
        previous = {}
        try:
            for signum in STOP_SIGNALS:
                previous[signum] = signal.signal(signum, self.handle)
        except ValueError:  # not the main thread
            pass
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def _lower(text: str | None) -> str:
    text = text or "unknown error"
    return text[:1].lower() + text[1:]

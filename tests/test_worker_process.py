"""``python worker.py`` as operators run it: Prometheus metrics from the Temporal SDK, and a
SIGTERM that lets the activity in flight finish instead of cancelling it."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from temporalio.api.enums.v1 import EventType

from localslack import SlackEmulator
from starter.desk import IncidentDesk
from tests.processes import DevServer, Processes, WorkerProcess, free_port
from tests.support import eventually, every_run_history
from workflows.models import Declaration
from workflows.policy import default_policy

TASK_QUEUE = "incidents"
RESTART = timedelta(seconds=50)
HOLD = 3.0  # seconds the slow Slack keeps the first conversations.create waiting


class SlowSlack:
    """A proxy to the emulator that holds the first ``conversations.create`` for HOLD seconds,
    so a test can stop the worker while that activity is running."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.held: list[str] = []
        self.answered: list[str] = []
        self.base_url = ""
        self._runner: web.AppRunner | None = None

    async def forward(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if method == "conversations.create" and not self.held:
            self.held.append(method)
            await asyncio.sleep(HOLD)
        headers = {k: v for k, v in request.headers.items() if k.lower() in _FORWARDED}
        async with httpx.AsyncClient(timeout=30) as http:
            answer = await http.request(
                request.method,
                self.upstream + method,
                params=dict(request.query),
                content=await request.read(),
                headers=headers,
            )
        self.answered.append(method)
        return web.Response(
            body=answer.content,
            status=answer.status_code,
            content_type=answer.headers.get("content-type", "application/json").split(";")[0],
        )

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self.forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/api/"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


_FORWARDED = {"authorization", "content-type"}


@pytest.fixture
async def slow_slack() -> AsyncIterator[tuple[SlackEmulator, SlowSlack]]:
    emulator = SlackEmulator()
    await emulator.start()
    proxy = SlowSlack(emulator.base_url)
    await proxy.start()
    try:
        yield emulator, proxy
    finally:
        await proxy.stop()
        await emulator.stop()


async def test_worker_serves_metrics_and_finishes_its_activity_on_sigterm(
    tmp_path: Path, slow_slack: tuple[SlackEmulator, SlowSlack]
) -> None:
    emulator, proxy = slow_slack
    processes = Processes()
    try:
        server = DevServer(tmp_path / "temporal.db", tmp_path / "temporal.log")
        processes.track(server.process)
        await server.start()
        metrics_port = free_port()

        def worker() -> WorkerProcess:
            return WorkerProcess(
                tmp_path / "worker.log",
                temporal_address=server.address,
                task_queue=TASK_QUEUE,
                slack_api_url=proxy.base_url,
                env={"WORKER_METRICS_PORT": str(metrics_port), "WORKER_SHUTDOWN_GRACE": "20"},
            )

        first = processes.track(await worker().started())
        async with httpx.AsyncClient(timeout=10) as http:
            metrics = await http.get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert metrics.status_code == 200
        assert "temporal_worker_start" in metrics.text, metrics.text[:2000]

        desk = IncidentDesk(await server.connect(), TASK_QUEUE, default_policy())
        declaring = asyncio.create_task(
            # Long enough for a worker to stop and another to start on a loaded machine.
            desk.declare(Declaration(title="Checkout failing", severity="sev1"), wait=RESTART)
        )
        await eventually(lambda: proxy.held, timeout=30)
        assert isinstance(first, WorkerProcess) and first.popen is not None
        first.send(signal.SIGTERM)
        assert await asyncio.to_thread(first.popen.wait, 30) == 0, first.output()
        assert "conversations.create" in proxy.answered, "the held call finished before exit"
        assert "worker_stopping" in first.output()

        processes.track(await worker().started())
        state, created = await asyncio.wait_for(declaring, 60)
        assert created and state.channel is not None

        events = await every_run_history(desk.client, state.id)
        started = [
            e.activity_task_started_event_attributes
            for e in events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        ]
        scheduled = {
            e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
            for e in events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        }
        opened = [s for s in started if scheduled[s.scheduled_event_id] == "slack_open_incident"]
        assert len(opened) == 1
        # The first worker ran it to the end: one attempt, reported by that process.
        assert opened[0].attempt == 1
        assert opened[0].identity.startswith(f"{first.pid}@")
        assert len(emulator.calls_to("conversations.create")) == 1
    finally:
        processes.stop_all()

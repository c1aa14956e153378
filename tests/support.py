"""Helpers the tests share: waiting on what Slack received, reading histories, serving apps."""

from __future__ import annotations

import asyncio
import email
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from email.message import Message
from typing import Any, TypeVar

import uvicorn
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory
from typer.testing import CliRunner

from config import Settings
from devrun import free_port
from localslack import SlackEmulator
from starter import cli
from starter.desk import IncidentDesk

T = TypeVar("T")


def upgrade_database(url: str) -> None:
    """``incident db upgrade`` against ``url``: the suite makes its schema the way operators do."""
    result = CliRunner().invoke(cli.app, ["db", "upgrade"], env={"INCIDENT_DATABASE_URL": url})
    assert result.exit_code == 0, result.output


async def eventually(
    probe: Callable[[], T | None],
    timeout: float = 10.0,
    interval: float = 0.05,
    explain: Callable[[], object] | None = None,
) -> T:
    """Wait until ``probe`` returns something truthy; fail with what it (or ``explain``) saw."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        await asyncio.sleep(interval)
    seen = explain() if explain is not None else last
    raise AssertionError(f"condition not met within {timeout}s; last seen: {seen!r}")


async def until(
    probe: Callable[[], Awaitable[T]], accept: Callable[[T], bool], timeout: float = 10.0
) -> bool:
    """Poll an async probe (a visibility query, say) until ``accept`` likes its answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if accept(await probe()):
            return True
        await asyncio.sleep(0.1)
    return False


@asynccontextmanager
async def serve_http(app: Any) -> AsyncIterator[str]:
    """An ASGI app served by uvicorn on a free 127.0.0.1 port, in the session's loop (so the
    in-process worker keeps running beside it); its base URL while in use."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    await eventually(lambda: server.started or serving.done(), timeout=10)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        await serving


@asynccontextmanager
async def serve_slack_app(
    settings: Settings, desk: IncidentDesk, slack: SlackEmulator, secret: str
) -> AsyncIterator[str]:
    """The API with its Slack app, the emulator's console pointed at it as `make run` does."""
    from starter.api.app import create_app

    api_settings = settings.model_copy(
        update={"slack_signing_secret": secret, "api_tokens": "slack-test-token"}
    )
    async with serve_http(create_app(api_settings, desk=desk)) as url:
        slack.console.app_url, slack.console.signing_secret = url, secret
        try:
            yield url
        finally:
            slack.console.app_url = ""


class Inbox:
    """aiosmtpd handler: keeps every message it is given."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        content = envelope.content  # type: ignore[attr-defined]
        recipients = list(envelope.rcpt_tos)  # type: ignore[attr-defined]
        self.messages.append((recipients, email.message_from_bytes(content)))
        return "250 OK"

    def with_subject(self, part: str) -> list[tuple[list[str], Message]]:
        return [(to, m) for to, m in self.messages if part in str(m["Subject"])]


@contextmanager
def local_smtp() -> Iterator[Inbox]:
    """An SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it is sent, for as long as used."""
    from aiosmtpd.controller import Controller

    handler = Inbox(free_port())
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port)
    controller.start()
    try:
        yield handler
    finally:
        controller.stop()


async def every_run(client: Client, workflow_id: str) -> list[WorkflowHistory]:
    """The history of every run of a workflow, oldest first: an incident continues as new once
    it is open, so the opening and later commands live in different runs."""
    runs: list[WorkflowHistory] = []
    run_id: str | None = None
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        runs.insert(0, history)
        started = history.events[0].workflow_execution_started_event_attributes
        if not started.continued_execution_run_id:
            return runs
        run_id = started.continued_execution_run_id


async def every_run_history(client: Client, workflow_id: str) -> list[HistoryEvent]:
    """The events of every run of a workflow, oldest first."""
    return [event for run in await every_run(client, workflow_id) for event in run.events]


async def incident_ids(client: Client) -> set[str]:
    """Every incident visibility knows, once each (an incident's runs share its id)."""
    return {e.id async for e in client.list_workflows("WorkflowType = 'IncidentWorkflow'")}

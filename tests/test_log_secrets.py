"""No secret in any log line: the real worker process, debug logging, Slack failing on purpose."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from localslack import Fault, SlackEmulator
from logs import REDACTED, SecretRedactor
from starter.desk import IncidentDesk
from tests.processes import DevServer, Processes, WorkerProcess
from tests.support import eventually
from workflows.models import Declaration
from workflows.policy import default_policy

BOT_TOKEN = "xoxb-4242-4242-NEVERLOGME"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SECRETS = ("NEVERLOGME", SIGNING_SECRET)
TASK_QUEUE = "incidents-secrets"


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DevServer]:
    """A dev server of its own, so its incidents and logs are this file's alone."""
    where = tmp_path_factory.mktemp("secrets")
    server = DevServer(where / "temporal.db", where / "temporal.log")
    try:
        yield await server.start()
    finally:
        server.stop()


def test_redactor_hides_tokens_in_text_nested_fields_and_secret_named_fields() -> None:
    redact = SecretRedactor([SIGNING_SECRET])
    event = redact(
        None,
        "info",
        {
            "event": f"Sending a request - headers: {{'Authorization': 'Bearer {BOT_TOKEN}'}}",
            "headers": {"Authorization": "anything", "Accept": "json"},
            "app": "xapp-1-A0-123-abc",
            "signing_secret": "whatever",
            "note": [f"sig {SIGNING_SECRET}"],
        },
    )
    assert "NEVERLOGME" not in str(event) and SIGNING_SECRET not in str(event)
    assert "xapp-1" not in event["app"] and event["signing_secret"] == REDACTED
    assert event["headers"] == {"Authorization": REDACTED, "Accept": "json"}


@pytest.mark.parametrize("log_format", ["console", "json"])
async def test_worker_logs_no_secret_while_slack_fails(
    log_format: str, server: DevServer, tmp_path: Path
) -> None:
    processes = Processes()
    async with SlackEmulator(tokens=[BOT_TOKEN]) as slack:
        # A server error, a connection-level refusal, a permanent error and a rate limit:
        # each ends in a traceback or a retry in the worker's log.
        slack.inject(Fault(method="conversations.setTopic", status=503, times=3))
        slack.inject(Fault(method="pins.add", status=500))
        slack.inject(Fault(method="conversations.setPurpose", error="fatal_error"))
        slack.inject(Fault(method="chat.postMessage", status=429, retry_after=0))
        slack.inject(Fault(method="conversations.invite", error="fatal_error", times=2))
        worker = WorkerProcess(
            tmp_path / "worker.log",
            temporal_address=server.address,
            task_queue=TASK_QUEUE,
            slack_api_url=slack.base_url,
            env={
                "LOG_FORMAT": log_format,
                "LOG_LEVEL": "debug",
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            },
        )
        processes.track(worker)
        try:
            await worker.started()
            desk = IncidentDesk(await server.connect(), TASK_QUEUE, default_policy())
            state, _ = await desk.declare(
                Declaration(title="Logs leak", severity="sev2", commander="U0ALICE01")
            )
            assert state.channel is not None
            await eventually(lambda: slack.pins(state.channel.id) if state.channel else None, 30)
            await eventually(lambda: len(slack.calls_to("conversations.setTopic")) >= 4, 30)
        finally:
            processes.stop_all()
    log = worker.log.read_text()
    # The faults really were logged: debug request lines and failure tracebacks.
    assert "Traceback (most recent call last)" in log
    assert "chat.postMessage" in log and "Authorization" in log
    assert [line for line in log.splitlines() if any(s in line for s in SECRETS)] == []
    assert "xoxb-" not in log

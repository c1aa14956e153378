"""No secret in any log line: the real worker process, debug logging, Slack failing on purpose."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from config import Settings
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


def test_the_secret_settings_are_typed_as_secrets() -> None:
    assert set(Settings.secret_fields()) == {
        "api_tokens",
        "slack_signing_secret",
        "temporal_api_key",
        "temporal_tls_client_key_data",
        "temporal_tls_key",
        "slack_bot_token",
        "slack_app_token",
        "paging_routing_key",
        "pagerduty_webhook_secret",
        "webhook_url",
        "smtp_password",
        "database_url",
    }


def test_printed_settings_show_no_secret() -> None:
    values = {name: f"{name}-value-{n:04}" for n, name in enumerate(Settings.secret_fields())}
    settings = Settings.model_validate(values)
    for shown in (repr(settings), str(settings), settings.model_dump_json()):
        assert [value for value in values.values() if value in shown] == []


def test_every_secret_setting_is_redacted_by_name_and_by_value() -> None:
    values = {name: f"{name}-value-{n:04}" for n, name in enumerate(Settings.secret_fields())}
    redact = SecretRedactor.of(Settings.model_validate(values))
    for name, value in values.items():
        event = redact(None, "info", {"event": f"sent {value}", name: "short", "nested": {name: 1}})
        assert event == {"event": f"sent {REDACTED}", name: REDACTED, "nested": {name: REDACTED}}


def test_a_secret_setting_added_later_is_redacted_without_touching_logs() -> None:
    class WithPager(Settings):
        pager_passphrase: SecretStr | None = None

    event = {"event": "paging with correct-horse-battery", "pager_passphrase": "x"}
    redacted = SecretRedactor.of(WithPager(pager_passphrase="correct-horse-battery"))(
        None, "info", event
    )
    assert redacted == {"event": f"paging with {REDACTED}", "pager_passphrase": REDACTED}
    assert SecretRedactor.of(Settings())(None, "info", event) == event


def test_the_password_in_a_database_url_is_redacted_on_its_own() -> None:
    settings = Settings(database_url="postgresql+psycopg://incidents:hunter2-secret@db/incidents")
    event = SecretRedactor.of(settings)(None, "info", {"event": "login hunter2-secret refused"})
    assert event["event"] == f"login {REDACTED} refused"


@pytest.mark.parametrize("log_format", ["console", "json"])
async def test_worker_logs_no_secret_while_slack_fails(
    log_format: str, server: DevServer, tmp_path: Path
) -> None:
    processes = Processes()
    async with SlackEmulator(tokens=[BOT_TOKEN]) as slack:
        # A server error, a connection-level refusal, a permanent error and a rate limit:
        # each ends in a retry in the worker's log.
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
    # The faults really were logged: debug request lines and the steps tried again (Slack's
    # own trouble is retried inside the opening now, not failed with a traceback).
    assert "opening_step_tried_again" in log and "status: 503" in log
    assert "chat.postMessage" in log and "Authorization" in log
    assert [line for line in log.splitlines() if any(s in line for s in SECRETS)] == []
    assert "xoxb-" not in log

"""Two-way PagerDuty: its v3 webhooks, signed, acknowledge our incidents there acknowledged.

The production worker pages a local PagerDuty stand-in (tests/test_paging.py's receiver); the
webhook goes through the real API app to the incident workflow, and the acknowledger is found
in the Slack emulator by email.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from temporalio.client import Client

from config import Settings
from starter.api.app import create_app
from starter.api.routes.integrations import signed
from starter.desk import IncidentDesk
from tests.test_paging import TASK_QUEUE, Receiver, at_least, paging_worker, receiver
from tests.test_timers import MARGIN, escalating_policy, tier
from workflows.lifecycle import commands as cmd
from workflows.models import Declaration, IncidentState, Status
from workflows.policy import default_policy

__all__ = ["paging_worker", "receiver"]  # fixtures this module uses

SECRET = "pagerduty-signing-secret-0123456789"
ESCALATE_AGAIN_AFTER = 4.0  # seconds: the second tier, which an acknowledgement must stop


def app_for(settings: Settings, client: Client, secret: str | None) -> httpx.AsyncClient:
    desk = IncidentDesk(client, TASK_QUEUE, default_policy())
    configured = SecretStr(secret) if secret else None
    app = create_app(settings.model_copy(update={"pagerduty_webhook_secret": configured}), desk)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


@pytest.fixture(scope="module")
async def api(settings: Settings, client: Client) -> AsyncIterator[httpx.AsyncClient]:
    async with app_for(settings, client, SECRET) as http:
        yield http


def webhook(event_type: str, incident_key: str, agent: dict[str, Any] | None = None) -> bytes:
    """A v3 delivery as PagerDuty sends one (its documented example, made ours)."""
    user = {"id": "PXPGF42", "summary": "Earline Greenholt", "type": "user_reference"}
    payload = {
        "event": {
            "id": str(uuid.uuid4()),
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": "2026-12-05T18:45:22.169Z",
            "agent": {**user, **(agent or {})},
            "client": {"name": "PagerDuty"},
            "data": {
                "id": "PGR0VU2",
                "type": "incident",
                "html_url": "https://acme.pagerduty.com/incidents/PGR0VU2",
                "number": 2,
                "status": event_type.removeprefix("incident."),
                "incident_key": incident_key,
                "title": "INC-1 SEV1: Pay",
                "assignees": [user],
                "urgency": "high",
            },
        }
    }
    return json.dumps(payload).encode()


def signature(body: bytes, secret: str = SECRET) -> str:
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def deliver(api: httpx.AsyncClient, body: bytes, header: str | None) -> httpx.Response:
    headers = {b"Content-Type": b"application/json"}
    if header is not None:  # as bytes: anyone may send any
        headers[b"X-PagerDuty-Signature"] = header.encode()
    return await api.post("/integrations/pagerduty", content=body, headers=headers)


async def paged(
    client: Client, receiver: Receiver, title: str
) -> tuple[IncidentDesk, float, IncidentState]:
    """An incident whose first tier pages PagerDuty and whose second would escalate again."""
    policy = escalating_policy(
        tier(1, "U0BOB0002", page=True), tier(ESCALATE_AGAIN_AFTER, "U0CAROL03")
    )
    desk = IncidentDesk(client, TASK_QUEUE, policy)
    started = time.monotonic()
    state, _ = await desk.declare(Declaration(title=title, severity="sev1", commander="U0ALICE01"))
    await at_least(1, lambda: receiver.events(state.id))  # the trigger went to PagerDuty
    return desk, started, state


def test_a_signature_is_accepted_among_several_and_refused_otherwise() -> None:
    body = b'{"event": {}}'
    rotating = f"v1={'0' * 64}, {signature(body)}"
    assert signed(SECRET, body, signature(body))
    assert signed(SECRET, body, rotating), "during a rotation either secret signs"
    assert not signed(SECRET, body, signature(body, "another-secret"))
    assert not signed(SECRET, body + b" ", signature(body)), "the raw body is what is signed"
    assert not signed(SECRET, body, signature(body).replace("v1=", "v0="))


async def test_unsigned_and_badly_signed_deliveries_are_refused(api: httpx.AsyncClient) -> None:
    body = webhook("incident.acknowledged", "incident-1")
    assert (await deliver(api, body, None)).status_code == 401
    assert (await deliver(api, body, signature(body, "not-the-secret"))).status_code == 401
    assert (await deliver(api, body, "v1=ü")).status_code == 401
    tampered = body.replace(b"incident-1", b"incident-2")
    assert (await deliver(api, tampered, signature(body))).status_code == 401


async def test_without_a_secret_the_integration_is_off(settings: Settings, client: Client) -> None:
    body = webhook("incident.acknowledged", "incident-1")
    async with app_for(settings, client, None) as off:
        assert (await deliver(off, body, signature(body))).status_code == 404


async def test_events_that_are_not_about_our_incidents_are_accepted_and_ignored(
    api: httpx.AsyncClient,
) -> None:
    for key in ("d3640fbd41094207a1c11e58e46b1662", "42", "incident-999999"):
        body = webhook("incident.acknowledged", key)
        answer = await deliver(api, body, signature(body))
        assert answer.status_code == 202, answer.text
        assert answer.json()["incident"] is None
    body = webhook("incident.priority_updated", "incident-1")
    assert (await deliver(api, body, signature(body))).status_code == 202
    malformed = b'{"event": {"id": "E1"}}'
    assert (await deliver(api, malformed, signature(malformed))).status_code == 422


async def test_acknowledged_in_pagerduty_acknowledges_here_as_the_slack_person_and_stops_escalation(
    client: Client, paging_worker: None, receiver: Receiver, api: httpx.AsyncClient
) -> None:
    desk, started, state = await paged(client, receiver, "Pay")
    body = webhook(
        "incident.acknowledged", state.id, {"summary": "Bob B.", "email": "bob@example.com"}
    )
    answer = await deliver(api, body, signature(body))
    assert answer.status_code == 200, answer.text
    assert answer.json()["incident"] == state.id
    again = await deliver(api, body, signature(body))  # PagerDuty delivers at least once
    assert again.status_code == 200, again.text

    acknowledged = await desk.get(state.id)
    assert acknowledged.acknowledged_by == "U0BOB0002"
    notes = [e for e in acknowledged.timeline if "in PagerDuty" in e.text]
    assert [e.text for e in notes] == ["Acknowledged in PagerDuty by <@U0BOB0002>."]
    # Our acknowledge goes back to PagerDuty too, which ignores it for an acknowledged incident.
    await at_least(2, lambda: receiver.events(state.id))

    await asyncio.sleep(max(0.0, started + ESCALATE_AGAIN_AFTER + MARGIN - time.monotonic()))
    later = await desk.get(state.id)
    assert later.escalation_level == 1, "the second tier never fired"
    assert not [e for e in later.timeline if e.kind == "escalated" and "U0CAROL03" in e.text]


async def test_someone_slack_does_not_know_is_named_and_the_integration_acknowledges(
    client: Client, paging_worker: None, receiver: Receiver, api: httpx.AsyncClient
) -> None:
    desk, _, state = await paged(client, receiver, "Billing")
    agent = {"summary": "Pat <!channel> Doe", "email": "pat@elsewhere.example"}
    body = webhook("incident.acknowledged", state.id, agent)
    assert (await deliver(api, body, signature(body))).status_code == 200
    acknowledged = await desk.get(state.id)
    assert acknowledged.acknowledged_at is not None and acknowledged.acknowledged_by is None
    assert "Acknowledged in PagerDuty by Pat !channel Doe." in [
        e.text for e in acknowledged.timeline
    ]


async def test_resolved_in_pagerduty_is_noted_but_not_applied(
    client: Client, paging_worker: None, receiver: Receiver, api: httpx.AsyncClient
) -> None:
    desk, _, state = await paged(client, receiver, "Search")
    await desk.command(state.id, cmd.Acknowledge(by="U0ALICE01"))
    body = webhook("incident.resolved", state.id)
    answer = await deliver(api, body, signature(body))
    assert answer.status_code == 200, answer.text
    after = await desk.get(state.id)
    assert after.status is not Status.RESOLVED and after.resolved_at is None
    noted = [e.text for e in after.timeline if e.text.startswith("Resolved in PagerDuty")]
    assert noted == [
        "Resolved in PagerDuty by Earline Greenholt; not resolved here: people decide."
    ]


async def test_pagerduty_echoing_what_was_done_here_adds_nothing(
    client: Client, paging_worker: None, receiver: Receiver, api: httpx.AsyncClient
) -> None:
    """We tell PagerDuty when an incident is acknowledged or resolved here, and its webhook
    then tells us back: neither echo is noted."""
    desk, _, state = await paged(client, receiver, "Ledger")
    echoes = {"summary": "Incident automation", "type": "service_reference"}
    await desk.command(state.id, cmd.Acknowledge(by="U0ALICE01"))
    body = webhook("incident.acknowledged", state.id, echoes)
    assert (await deliver(api, body, signature(body))).status_code == 202
    await desk.command(state.id, cmd.Resolve(message="rolled back", by="U0ALICE01"))
    body = webhook("incident.resolved", state.id, echoes)
    assert (await deliver(api, body, signature(body))).status_code == 202
    after = await desk.get(state.id)
    assert after.acknowledged_by == "U0ALICE01"
    assert [e.text for e in after.timeline if "in PagerDuty" in e.text] == []

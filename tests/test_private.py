"""Private incidents, checked for leaks in every place the issue lists: a private channel whose
name carries no word of the title, nothing in the broadcast channel, the status page refused,
Temporal's memo, search attributes, summary and details without title or people, reads
answered only to members and admins (404 to anyone else), and no log line with the title.
Real parts: the session's dev server, worker and emulator, the API over ASGI."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from config import Settings
from localslack import SlackEmulator
from starter.api import create_app
from starter.desk import IncidentDesk
from tests.support import eventually
from workflows.lifecycle.notices import heard
from workflows.lifecycle.opening import channel as channel_to_open
from workflows.lifecycle.states import start
from workflows.models import Declaration
from workflows.policy import default_policy

T0 = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
SERVICE = "test-token-private"
ADMIN = {"Authorization": f"Bearer {SERVICE}"}
ALICE, BOB, CAROL = "U0ALICE01", "U0BOB0002", "U0CAROL03"


def secret_title() -> str:
    return f"Payroll leak zebracorn {uuid.uuid4().hex[:8]}"


def test_a_private_channel_name_carries_no_word_of_the_title() -> None:
    declaration = Declaration(title="Payroll leak zebracorn", severity="sev2", private=True)
    state, effects = start(7, "incident-x", declaration, default_policy(), T0)
    opening = channel_to_open(state, default_policy())
    assert opening.private and opening.name.endswith("-7") and "payroll" not in opening.name
    kept = [str(getattr(effect, "audience", "")) for effect in heard(state, effects)]
    assert kept and not [a for a in kept if "broadcast" in a]


@pytest.fixture(scope="module")
async def api(settings: Settings, desk: IncidentDesk) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update={"api_tokens": SERVICE}), desk=desk)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api", timeout=60) as http:
        yield http


async def personal(api: httpx.AsyncClient, user: str) -> dict[str, str]:
    made = await api.post("/tokens", json={"user": user}, headers=ADMIN)
    assert made.status_code == 201, made.text
    return {"Authorization": f"Bearer {made.json()['token']}"}


async def declare_private(api: httpx.AsyncClient, title: str) -> dict[str, Any]:
    body = {"title": title, "severity": "sev2", "by": ALICE, "private": True}
    answer = await api.post("/incidents", params={"wait": "true"}, json=body, headers=ADMIN)
    assert answer.status_code == 201, answer.text
    incident: dict[str, Any] = answer.json()
    return incident


async def test_a_private_incident_gets_a_private_channel_and_nothing_in_the_broadcast(
    api: httpx.AsyncClient, slack: SlackEmulator
) -> None:
    title = secret_title()
    incident = await declare_private(api, title)
    assert incident["private"] is True
    channel = slack.channels[incident["channel"]["id"]]
    assert channel.is_private and "zebracorn" not in channel.name and "payroll" not in channel.name
    assert channel.name.endswith(f"-{incident['number']}")
    await eventually(lambda: any("declared" in str(m) for m in slack.messages(channel.id)))
    (broadcast,) = [c for c in slack.channels.values() if c.name == "incidents"]
    told = [m for m in slack.messages(broadcast.id) if incident["label"] in str(m)]
    assert told == [] and all("zebracorn" not in str(m) for m in slack.messages(broadcast.id))

    public = await api.post(
        f"/incidents/{incident['id']}/public", json={"message": "We are on it"}, headers=ADMIN
    )
    assert public.status_code == 409, public.text
    assert "private incident never goes on the status page" in public.text
    body = {"title": title, "severity": "sev2", "private": True, "public": {"message": "Down"}}
    refused = await api.post("/incidents", json=body, headers=ADMIN)
    assert refused.status_code == 422 and "private incident never goes" in refused.text

"""Alerts in, end to end: Alertmanager's real payloads through the API to the real worker and
the Slack emulator. A storm of one group is one incident with a handful of Slack messages."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from config import Settings
from localslack import SlackEmulator
from starter.api.app import create_app
from starter.desk import IncidentDesk
from tests.conftest import TASK_QUEUE, seconds_policy
from tests.support import eventually, incident_ids
from tests.test_timers import MARGIN, notices, posted_after, tier
from workflows.lifecycle import commands as cmd
from workflows.models import IncidentState
from workflows.policy import Policy, default_policy

TOKEN = "test-token-alerts"
SECRET = "grafana-shared-secret-0123456789"
FIXTURES = Path(__file__).parent / "fixtures" / "alerts"


def alert_policy() -> Policy:
    policy = default_policy().model_dump()
    policy["alerts"] = {
        "sources": {"grafana": {"hmac_secret": SECRET}},
        "rules": [
            {"match": {"team": "search"}, "drop": True},
            {
                "match": {"team": "payments"},
                "severity": "sev1",
                "title": "{alertname} on {service}",
                "components": ["checkout"],
                "on_resolved": "monitoring",
            },
        ],
    }
    return Policy.model_validate(policy)


@pytest.fixture(scope="module")
async def api(
    settings: Settings, client: Client, desk: IncidentDesk
) -> AsyncIterator[httpx.AsyncClient]:
    alerting = IncidentDesk(client, TASK_QUEUE, alert_policy())
    app = create_app(settings.model_copy(update={"api_tokens": TOKEN}), desk=alerting)
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://api", headers=headers, timeout=60
    ) as http:
        yield http


def firing(group: str, alerts: int = 2) -> dict[str, Any]:
    """The documented example payload, made a group of its own with this many alerts."""
    payload: dict[str, Any] = json.loads((FIXTURES / "alertmanager_firing.json").read_text())
    payload["groupKey"] = f'{{}}:{{alertname="CheckoutErrorRate", run="{group}"}}'
    template = payload["alerts"][0]
    payload["alerts"] = []
    for n in range(alerts):
        alert = copy.deepcopy(template)
        alert["fingerprint"] = f"{n:016x}"
        alert["labels"]["instance"] = f"checkout-{n}:9090"
        payload["alerts"].append(alert)
    return payload


def resolved(payload: dict[str, Any]) -> dict[str, Any]:
    done = copy.deepcopy(payload)
    done["status"] = "resolved"
    for alert in done["alerts"]:
        alert["status"] = "resolved"
        alert["endsAt"] = "2026-11-24T22:00:00Z"
    return done


async def incident_of(api: httpx.AsyncClient, ref: str) -> dict[str, Any]:
    incident: dict[str, Any] = (await api.get(f"/incidents/{ref}")).json()
    return incident


async def test_an_alert_storm_of_one_group_is_one_incident_with_a_handful_of_messages(
    api: httpx.AsyncClient, slack: SlackEmulator
) -> None:
    group = uuid.uuid4().hex[:8]
    started = time.monotonic()
    first = await api.post("/alerts/alertmanager", json=firing(group, alerts=1000))
    assert first.status_code == 201, first.text
    ref = first.json()["incident"]
    # Alertmanager re-sends the group while it fires: 100 more notifications, 20 at a time.
    gate = asyncio.Semaphore(20)

    async def again() -> httpx.Response:
        async with gate:
            return await api.post("/alerts/alertmanager", json=firing(group, alerts=10))

    answers = await asyncio.gather(*(again() for _ in range(100)))
    assert {a.status_code for a in answers} == {200}
    assert {a.json()["incident"] for a in answers} == {ref}
    took = time.monotonic() - started

    incident = await _folded(api, ref, notifications=101)
    assert incident["title"] == "CheckoutErrorRate on checkout"
    assert incident["severity"] == "sev1" and incident["components"] == ["checkout"]
    channels = [c for c in slack.channels.values() if f"[{ref}]" in c.purpose]
    assert len(channels) == 1
    posted = [c for c in slack.calls_to("chat.postMessage") if ref in json.dumps(c.args)]
    assert len(posted) <= 4, f"{len(posted)} Slack messages for one storm"
    print(f"\nstorm: 1 + 100 notifications (1,990 alerts) in {took:.1f}s, {len(posted)} posts")


async def _folded(api: httpx.AsyncClient, ref: str, notifications: int) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        incident = await incident_of(api, ref)
        digests = [e for e in incident["timeline"] if e["kind"] == "alerts"]
        if digests and f"({notifications} notifications)" in digests[-1]["text"]:
            return incident
        await asyncio.sleep(0.2)
    raise AssertionError(f"the notifications never all reached {ref}: {digests}")


async def test_a_real_alertmanager_resending_its_growing_group_reads_as_thirty_alerts(
    api: httpx.AsyncClient,
) -> None:
    """Alertmanager 0.25's own notifications (tests/record_alertmanager.py): 3, 10, 30 and 30
    firing instances of one group, then all resolved. Summed, that was "73 firing"."""
    notifications = json.loads((FIXTURES / "alertmanager_growing_group.json").read_text())
    receiver = f"incidents-{uuid.uuid4().hex[:8]}"  # a group of this test's own
    answers = []
    for n, notification in enumerate(notifications, start=1):
        answer = await api.post("/alerts/alertmanager", json={**notification, "receiver": receiver})
        assert answer.status_code in (200, 201), answer.text
        answers.append(answer.json())
        if n == 4:
            digest = (await _folded(api, answers[0]["incident"], notifications=4))["timeline"]
            assert [e for e in digest if e["kind"] == "alerts"][-1]["text"].startswith(
                "Alerts: 30 firing, 0 resolved (4 notifications)"
            )
    ref: str = answers[0]["incident"]
    assert {a["incident"] for a in answers} == {ref}
    incident = await _folded(api, ref, notifications=5)
    digests = [e["text"] for e in incident["timeline"] if e["kind"] == "alerts"]
    assert digests[-1].startswith("Alerts: 0 firing, 30 resolved (5 notifications)")


async def test_a_resolved_group_is_posted_once_and_moves_the_incident_to_monitoring(
    api: httpx.AsyncClient, slack: SlackEmulator
) -> None:
    payload = firing(uuid.uuid4().hex[:8])
    ref = (await api.post("/alerts/alertmanager", json=payload)).json()["incident"]
    answer = await api.post("/alerts/alertmanager", json=resolved(payload))
    assert answer.status_code == 200 and answer.json()["incident"] == ref

    async def monitoring() -> dict[str, Any] | None:
        incident = await incident_of(api, ref)
        # The channel shows once the whole opening is done, which may be after this.
        opened = incident["channel"] is not None
        return incident if incident["status"] == "monitoring" and opened else None

    deadline = time.monotonic() + 20
    while not await monitoring():
        assert time.monotonic() < deadline, "resolved alerts never moved it to monitoring"
        await asyncio.sleep(0.2)
    incident = await incident_of(api, ref)
    channel = incident["channel"]["id"]

    def told() -> list[str]:
        texts = [m.get("text", "") for m in slack.messages(channel)]
        return [t for t in texts if "All alerts of the group resolved" in t]

    assert len(await eventually(told)) == 1
    late = await api.post("/alerts/alertmanager", json=resolved(firing("nothing-open")))
    assert late.json() == {
        "incident": None,
        "created": False,
        "detail": "no open incident for this alert group",
    }


async def test_malformed_payloads_name_the_field_and_declare_nothing(
    api: httpx.AsyncClient, client: Client
) -> None:
    before = await incident_ids(client)
    bad = firing("bad")
    bad["version"] = "3"
    del bad["alerts"][0]["status"]
    answer = await api.post("/alerts/alertmanager", json=bad)
    assert answer.status_code == 422
    where = {tuple(p["loc"]) for p in answer.json()["detail"]}
    assert ("body", "version") in where and ("body", "alerts", 0, "status") in where
    empty = await api.post("/alerts/generic", json={"key": "k", "title": "  "})
    assert empty.status_code == 422 and "title" in empty.text
    dropped = await api.post(
        "/alerts/generic", json={"key": "s", "title": "Search slow", "labels": {"team": "search"}}
    )
    assert dropped.json()["detail"] == "the policy drops alerts like these"
    assert await incident_ids(client) == before


async def test_a_source_proves_itself_with_its_own_hmac_signature(api: httpx.AsyncClient) -> None:
    body = json.dumps({"source": "grafana", "key": uuid.uuid4().hex, "title": "Disk full"})
    anonymous = {"Authorization": "", "Content-Type": "application/json"}
    unsigned = await api.post("/alerts/generic?source=grafana", content=body, headers=anonymous)
    assert unsigned.status_code == 401
    digest = hmac.new(SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
    signed = {**anonymous, "X-Incident-Signature": f"sha256={digest}"}
    other_source = await api.post("/alerts/generic", content=body, headers=signed)
    assert other_source.status_code == 401, "the signature proves only its own source"
    accepted = await api.post("/alerts/generic?source=grafana", content=body, headers=signed)
    assert accepted.status_code == 201, accepted.text


async def test_a_token_with_non_ascii_characters_is_a_401_not_a_crash(
    api: httpx.AsyncClient,
) -> None:
    # A raw latin-1 byte in the header: what a client can send that is not ASCII.
    headers = [(b"Authorization", "Bearer \u00e9t\u00e9".encode("latin-1"))]
    request = httpx.Request(
        "POST", "http://api/alerts/generic", json={"key": "k", "title": "x"}, headers=headers
    )
    answer = await api.send(request)
    assert answer.status_code == 401


def escalating_alert_policy() -> Policy:
    """Seconds-scale sev1 tiers: tier 1 (Carol) after 30 s, tier 2 (Dave) 1 s after it; payments
    alerts start at tier 1."""
    policy = seconds_policy(escalation=[tier(30, "U0CAROL03"), tier(1, "U0DAVE004")]).model_dump()
    policy["alerts"] = {
        "rules": [{"match": {"team": "payments"}, "severity": "sev1", "escalation_level": 1}]
    }
    return Policy.model_validate(policy)


@asynccontextmanager
async def api_with(policy: Policy, settings: Settings, client: Client) -> AsyncIterator[Any]:
    desk = IncidentDesk(client, TASK_QUEUE, policy)
    app = create_app(settings.model_copy(update={"api_tokens": TOKEN}), desk=desk)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api", headers=headers, timeout=60
    ) as http:
        yield http, desk


async def test_an_alert_rule_escalation_level_notifies_tier_one_at_once_and_tier_two_on_time(
    settings: Settings, client: Client, worker: None, slack: SlackEmulator
) -> None:
    async with api_with(escalating_alert_policy(), settings, client) as (api, desk):
        answer = await api.post("/alerts/alertmanager", json=firing(uuid.uuid4().hex[:8]))
        assert answer.status_code == 201, answer.text
        state = await desk.get(answer.json()["incident"])
        assert state.escalation_level == 1, "declared at tier 1, not 30 s later"
        state = await eventually_opened(desk, state.id)
        assert state.channel is not None
        members = slack.channels[state.channel.id].members
        first = await eventually(lambda: notices(slack, state, "escalated"))
        assert "<@U0CAROL03>" in first[0]["text"] and "U0CAROL03" in members
        assert posted_after(slack, state, first[0]) < 5, "tier 1 heard at once, not after 30 s"

        def both_tiers() -> list[dict[str, Any]] | None:
            found = notices(slack, state, "escalated")
            return found if len(found) >= 2 else None

        second = (await eventually(both_tiers))[1]
        assert "<@U0DAVE004>" in second["text"] and "U0DAVE004" in members
        # Tier 2's timer counts from the declaration: 1 s, not 30 s + 1 s.
        assert 1.0 <= posted_after(slack, state, second) <= 1.0 + MARGIN
        assert (await desk.get(state.id)).escalation_level == 2


async def eventually_opened(desk: IncidentDesk, ref: str) -> IncidentState:
    deadline = time.monotonic() + 15
    while (state := await desk.get(ref)).channel is None:
        assert time.monotonic() < deadline, f"{ref} never got its channel"
        await asyncio.sleep(0.1)
    return state


async def test_a_later_notification_s_new_runbook_becomes_a_bookmark_once(
    api: httpx.AsyncClient, slack: SlackEmulator, client: Client
) -> None:
    first = firing(uuid.uuid4().hex[:8])
    ref = (await api.post("/alerts/alertmanager", json=first)).json()["incident"]
    later = copy.deepcopy(first)
    later["alerts"][1]["annotations"]["runbook_url"] = "https://runbooks.example.com/checkout/db"
    for _ in range(3):  # Alertmanager repeats itself: the new runbook must stay one bookmark
        answer = await api.post("/alerts/alertmanager", json=later)
        assert answer.status_code == 200 and answer.json()["incident"] == ref
    await _folded(api, ref, notifications=4)
    # Signals and commands are applied in order, and the channel's writes (bookmarks, posts)
    # run in that order: once this update is in the channel, every bookmark is made.
    desk = IncidentDesk(client, TASK_QUEUE, alert_policy())
    state = await desk.command(ref, cmd.PostUpdate(message="barrier"))
    assert state.channel is not None
    channel = state.channel.id
    await eventually(lambda: [m for m in slack.messages(channel) if "barrier" in m.get("text", "")])
    links = [b["link"] for b in slack.channels[channel].bookmarks]
    assert links.count("https://runbooks.example.com/checkout/db") == 1
    assert links.count("https://runbooks.example.com/checkout/error-rate") == 1
    assert "https://runbooks.example.com/checkout/db" in [link.url for link in state.links]

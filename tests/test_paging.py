"""Paging: PagerDuty Events API v2 compatible events and the generic JSON webhook, sent to a
local HTTP receiver by the production worker.

A tier with ``page = true`` triggers once; acknowledging and resolving follow with the same
``dedup_key`` (the incident id), and only for an incident that was paged. A 5xx is retried; a
4xx refusal is a problem on the incident's timeline, and the incident goes on.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import pytest
from aiohttp import web
from temporalio.client import Client

from config import Settings
from localslack import SlackEmulator
from starter.desk import IncidentDesk
from tests.support import eventually
from tests.test_timers import escalating_policy, notices, tier
from workflows.lifecycle import commands as cmd
from workflows.models import Declaration, IncidentState
from workflows.policy import Policy

TASK_QUEUE = "incidents-paging"
ROUTING_KEY = "R0UTINGKEY0123456789ABCDEFGHIJKL"
T = TypeVar("T")


@dataclass
class Received:
    path: str
    status: int
    body: dict[str, Any]


@dataclass
class Receiver:
    """Records every JSON body; answers 202 unless told to fail the next requests."""

    base_url: str = ""
    received: list[Received] = field(default_factory=list)
    answers: dict[str, deque[int]] = field(default_factory=dict)

    @property
    def pagerduty_url(self) -> str:
        return f"{self.base_url}/v2/enqueue"

    @property
    def webhook_url(self) -> str:
        return f"{self.base_url}/hooks/incidents"

    def fail_next(self, path: str, *statuses: int) -> None:
        self.answers.setdefault(path, deque()).extend(statuses)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        queued = self.answers.get(request.path)
        status = queued.popleft() if queued else 202
        self.received.append(Received(request.path, status, body))
        if status >= 400:
            return web.json_response({"status": "invalid event", "errors": ["no"]}, status=status)
        return web.json_response(
            {"status": "success", "message": "Event processed", "dedup_key": body.get("dedup_key")},
            status=status,
        )

    def events(self, incident_id: str, accepted_only: bool = True) -> list[dict[str, Any]]:
        """PagerDuty events for one incident, in arrival order."""
        return [
            r.body
            for r in self.received
            if r.path == "/v2/enqueue"
            and r.body.get("dedup_key") == incident_id
            and (r.status < 300 or not accepted_only)
        ]

    def hooks(self, incident_id: str) -> list[dict[str, Any]]:
        """Webhook bodies for one incident, in arrival order."""
        return [
            r.body
            for r in self.received
            if r.path == "/hooks/incidents" and r.body.get("incident", {}).get("id") == incident_id
        ]


@asynccontextmanager
async def serving_receiver() -> AsyncIterator[Receiver]:
    """A PagerDuty Events v2 and webhook receiver on a free 127.0.0.1 port."""
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/v2/enqueue", receiver.handle)
    app.router.add_post("/hooks/incidents", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    receiver.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield receiver
    finally:
        await runner.cleanup()


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    async with serving_receiver() as serving:
        yield serving


@pytest.fixture(scope="module")
async def paging_worker(
    client: Client, worker: None, slack: SlackEmulator, receiver: Receiver, settings: Settings
) -> AsyncIterator[None]:
    """The production worker on a queue of its own, paging the receiver."""
    from worker import build_worker

    paging = Settings(
        task_queue=TASK_QUEUE,
        slack_api_url=slack.base_url,
        paging_url=receiver.pagerduty_url,
        paging_routing_key=ROUTING_KEY,
        webhook_url=receiver.webhook_url,
        database_url=settings.database_url,  # the session's, already upgraded
    )
    async with httpx.AsyncClient() as http, build_worker(client, paging, http):
        yield


async def at_least(count: int, probe: Callable[[], list[T]], timeout: float = 10) -> list[T]:
    """Wait until ``probe`` has ``count`` items; return them all."""

    def enough() -> list[T] | None:
        found = probe()
        return found if len(found) >= count else None

    return await eventually(enough, timeout=timeout)


async def declare(client: Client, policy: Policy, title: str) -> tuple[IncidentDesk, IncidentState]:
    desk = IncidentDesk(client, TASK_QUEUE, policy)
    state, _ = await desk.declare(
        Declaration(title=title, severity="sev1", commander="U0ALICE01", components=["checkout"])
    )
    return desk, state


async def settled(desk: IncidentDesk, slack: SlackEmulator, state: IncidentState) -> None:
    """Wait until everything queued before now has run: the outbox runs in order, so once a
    fresh update reaches Slack every page queued before it has been sent (or refused)."""
    updated = await desk.command(state.id, cmd.PostUpdate(message="barrier", by="U0ALICE01"))
    key = f"update-{updated.notices_posted}"
    await eventually(
        lambda: [
            m
            for m in notices(slack, state, "update-")
            if m["metadata"]["event_payload"]["key"] == key
        ],
        timeout=15,
    )


async def test_unacknowledged_paging_tier_triggers_once_then_acknowledge_and_resolve_follow(
    client: Client, paging_worker: None, slack: SlackEmulator, receiver: Receiver
) -> None:
    desk, state = await declare(client, escalating_policy(tier(1, "U0BOB0002", page=True)), "Pay")
    (trigger,) = await at_least(1, lambda: receiver.events(state.id))
    assert trigger["routing_key"] == ROUTING_KEY
    assert trigger["event_action"] == "trigger"
    assert trigger["dedup_key"] == state.id
    payload = trigger["payload"]
    assert payload["summary"] == f"INC-{state.number} SEV1: Pay"
    assert payload["severity"] == "critical"
    assert payload["source"] == "incident-automation"
    assert payload["component"] == "checkout"
    assert payload["custom_details"]["notify"] == ["U0BOB0002"]
    assert trigger["links"][0]["href"].endswith(f"/workflows/{state.id}")

    await settled(desk, slack, state)  # the only tier has fired: nothing pages again
    assert len(receiver.events(state.id)) == 1
    assert (await desk.get(state.id)).paged_at is not None

    await desk.command(state.id, cmd.Acknowledge(by="U0ALICE01"))
    await at_least(2, lambda: receiver.events(state.id))
    await desk.command(state.id, cmd.Resolve(message="rolled back", by="U0ALICE01"))
    events = await at_least(3, lambda: receiver.events(state.id))
    assert [e["event_action"] for e in events] == ["trigger", "acknowledge", "resolve"]
    assert {e["dedup_key"] for e in events} == {state.id}
    assert {e["routing_key"] for e in events} == {ROUTING_KEY}
    assert "payload" not in events[1] and "payload" not in events[2]

    hooks = await at_least(3, lambda: receiver.hooks(state.id))
    assert [h["event"] for h in hooks] == [
        "incident.trigger",
        "incident.acknowledge",
        "incident.resolve",
    ]
    first, last = hooks[0]["incident"], hooks[-1]["incident"]
    assert first["number"] == state.number and first["title"] == "Pay"
    assert first["severity"] == "sev1" and first["status"] == "investigating"
    assert first["escalation_level"] == 1 and first["components"] == ["checkout"]
    assert last["status"] == "resolved" and last["resolved_at"] is not None
    assert hooks[0]["targets"] == ["U0BOB0002"]
    assert hooks[0]["url"].endswith(f"/workflows/{state.id}")


async def test_nobody_paged_means_no_acknowledge_or_resolve_events(
    client: Client, paging_worker: None, slack: SlackEmulator, receiver: Receiver
) -> None:
    policy = escalating_policy(tier(0.5, "U0BOB0002"))  # notifies in Slack, pages nobody
    desk, state = await declare(client, policy, "Quiet escalation")
    await eventually(lambda: notices(slack, state, "escalated"), timeout=10)
    await desk.command(state.id, cmd.Acknowledge(by="U0ALICE01"))
    await desk.command(state.id, cmd.Resolve(by="U0ALICE01"))
    await settled(desk, slack, state)
    assert (await desk.get(state.id)).paged_at is None
    assert receiver.events(state.id, accepted_only=False) == []
    assert receiver.hooks(state.id) == []


async def test_paging_endpoint_server_error_is_retried_until_the_event_is_accepted(
    client: Client, paging_worker: None, slack: SlackEmulator, receiver: Receiver
) -> None:
    receiver.fail_next("/v2/enqueue", 500)
    desk, state = await declare(client, escalating_policy(tier(0.5, page=True)), "Flaky pager")
    attempts = await at_least(2, lambda: receiver.events(state.id, accepted_only=False), 15)
    statuses = [r.status for r in receiver.received if r.body.get("dedup_key") == state.id]
    assert statuses == [500, 202]
    assert [a["event_action"] for a in attempts] == ["trigger", "trigger"]
    hooks = await at_least(1, lambda: receiver.hooks(state.id))
    assert [h["event"] for h in hooks] == ["incident.trigger"]
    state = await desk.get(state.id)
    assert not [e for e in state.timeline if e.kind == "problem"]


async def test_refused_page_is_a_problem_on_the_timeline_and_the_incident_goes_on(
    client: Client, paging_worker: None, slack: SlackEmulator, receiver: Receiver
) -> None:
    receiver.fail_next("/v2/enqueue", 400)
    policy = escalating_policy(tier(0.5, page=True), tier(0.5, "U0BOB0002"))
    desk, state = await declare(client, policy, "Bad routing key")
    await eventually(lambda: len(notices(slack, state, "escalated")) >= 2, timeout=15)
    state = await desk.get(state.id)
    problems = [e.text for e in state.timeline if e.kind == "problem"]
    assert len(problems) == 1, problems
    assert "trigger page" in problems[0] and "HTTP 400" in problems[0]
    assert [r.status for r in receiver.received if r.body.get("dedup_key") == state.id] == [400]
    assert state.escalation_level == 2  # the next tier still fired
    hooks = await at_least(1, lambda: receiver.hooks(state.id))
    assert hooks[0]["event"] == "incident.trigger"  # PagerDuty's refusal cost the webhook nothing

    # Still paged as far as the incident knows: acknowledging tells the pager, once.
    await desk.command(state.id, cmd.Acknowledge(by="U0ALICE01"))
    events = await at_least(1, lambda: receiver.events(state.id))
    assert [e["event_action"] for e in events] == ["acknowledge"]


async def test_an_incident_declared_past_a_paging_tier_pages_at_the_declaration(
    client: Client, paging_worker: None, slack: SlackEmulator, receiver: Receiver
) -> None:
    policy = escalating_policy(tier(60, "U0BOB0002", page=True), tier(60, "U0CAROL03"))
    desk = IncidentDesk(client, TASK_QUEUE, policy)
    declaration = Declaration(title="Known bad", severity="sev1", escalation_level=1)
    state, _ = await desk.declare(declaration)
    (trigger,) = await at_least(1, lambda: receiver.events(state.id), timeout=10)
    assert trigger["event_action"] == "trigger"
    assert trigger["payload"]["custom_details"]["notify"] == ["U0BOB0002"]
    assert (await desk.get(state.id)).paged_at == state.declared_at
    await desk.command(state.id, cmd.Acknowledge(by="U0ALICE01"))
    events = await at_least(2, lambda: receiver.events(state.id))
    assert [e["event_action"] for e in events] == ["trigger", "acknowledge"]

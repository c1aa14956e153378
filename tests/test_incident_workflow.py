"""IncidentWorkflow through a real client, a real dev server and the Slack emulator."""

from __future__ import annotations

import asyncio

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.client import Client

from localslack import BOT_TOKEN, Fault, SlackEmulator
from starter.desk import IncidentDesk, IncidentNotFound
from tests.support import eventually, every_run_history
from workflows.lifecycle import commands as cmd
from workflows.lifecycle.notices import CommandRefused
from workflows.models import Declaration, Status


def sev1(title: str, **fields: object) -> Declaration:
    return Declaration.model_validate(
        {"title": title, "severity": "sev1", "commander": "U0ALICE01", **fields}
    )


def texts(slack: SlackEmulator, channel_id: str) -> list[str]:
    return [m.get("text", "") for m in slack.messages(channel_id)]


def broadcast_texts(slack: SlackEmulator, incident_id: str) -> list[str]:
    """This incident's notices in #incidents, told apart by their message metadata."""
    broadcast = slack.channel_by_name("incidents")
    assert broadcast is not None
    return [
        m.get("text", "")
        for m in slack.messages(broadcast.id)
        if m.get("metadata", {}).get("event_payload", {}).get("incident_id") == incident_id
    ]


async def test_declaring_makes_one_channel_one_kickoff_one_announcement(desk, slack):
    state, created = await desk.declare(sev1("Checkout failing", responders=["U0BOB0002"]))
    assert created and state.status is Status.INVESTIGATING
    assert state.channel is not None
    assert (
        state.channel.name.startswith("inc-") and state.channel.name.endswith("-checkout-failing")
    ) or "-checkout-failing-" in state.channel.name
    creates = [
        c
        for c in slack.calls_to("conversations.create")
        if c.ok and c.args.get("name") == state.channel.name
    ]
    assert len(creates) == 1
    channel = slack.channels[state.channel.id]
    assert {"U0ALICE01", "U0BOB0002"} <= set(channel.members)
    assert "SEV1" in channel.topic and "Investigating" in channel.topic
    assert "<@U0ALICE01>" in channel.topic
    kickoffs = [
        m
        for m in slack.messages(state.channel.id)
        if m.get("metadata", {}).get("event_payload", {}).get("key") == "kickoff"
    ]
    assert len(kickoffs) == 1
    assert kickoffs[0]["ts"] in slack.pins(state.channel.id)
    assert f"http://127.0.0.1:8233/namespaces/default/workflows/{state.id}" in kickoffs[0]["text"]
    announcements = broadcast_texts(slack, state.id)
    assert len(announcements) == 1
    assert "SEV1" in announcements[0] and f"<#{state.channel.id}>" in announcements[0]


async def test_status_change_posts_in_both_channels_and_topic_follows(desk, slack):
    state, _ = await desk.declare(sev1("Search is slow"))
    state = await desk.command(
        state.id, cmd.SetStatus(status=Status.IDENTIFIED, message="bad index", by="U0ALICE01")
    )
    assert state.status is Status.IDENTIFIED
    assert state.timeline[-1].kind == "status" and state.timeline[-1].actor == "U0ALICE01"
    assert state.channel is not None
    channel_id = state.channel.id
    await eventually(lambda: any("identified" in t for t in broadcast_texts(slack, state.id)))
    await eventually(
        lambda: any("identified" in t and "bad index" in t for t in texts(slack, channel_id))
    )
    await eventually(lambda: "Identified" in slack.channels[channel_id].topic)


async def test_refused_transition_says_why_and_leaves_no_trace(desk, client: Client):
    state, _ = await desk.declare(sev1("Payments double charging"))
    await desk.command(state.id, cmd.SetStatus(status=Status.MONITORING))
    with pytest.raises(CommandRefused, match="cannot move from monitoring back to identified"):
        await desk.command(state.id, cmd.SetStatus(status=Status.IDENTIFIED))
    events = await every_run_history(client, state.id)
    rejected = [
        e for e in events if e.HasField("workflow_execution_update_rejected_event_attributes")
    ]
    accepted = [
        e for e in events if e.HasField("workflow_execution_update_accepted_event_attributes")
    ]
    assert not rejected  # validators reject before anything is written
    assert len(accepted) == 2  # the opening wait and the move to monitoring


async def test_full_lifecycle_with_reopen(desk):
    state, _ = await desk.declare(sev1("Login errors"))
    state = await desk.command(state.id, cmd.Acknowledge(by="U0BOB0002"))
    assert state.acknowledged_by == "U0BOB0002"
    for status in (Status.IDENTIFIED, Status.MONITORING):
        state = await desk.command(state.id, cmd.SetStatus(status=status))
    state = await desk.command(state.id, cmd.Resolve(message="fixed"))
    assert state.status is Status.RESOLVED and state.resolved_at is not None
    state = await desk.command(state.id, cmd.Reopen(reason="back again"))
    assert state.status is Status.INVESTIGATING and state.resolved_at is None
    # Where the report went is noted by the background lane whenever it is done: not the course.
    kinds = [e.kind for e in (await desk.get(state.id)).timeline if e.kind != "document"]
    assert kinds[:1] == ["declared"] and kinds[-4:] == ["status", "status", "resolved", "reopened"]


async def test_search_attributes_find_the_incident(desk, client: Client):
    state, _ = await desk.declare(sev1("Billing export stuck", commander="U0CAROL03"))
    await desk.command(state.id, cmd.SetStatus(status=Status.IDENTIFIED))
    query = (
        f"IncidentNumber = {state.number} AND IncidentSeverity = 'sev1' AND "
        "IncidentStatus = 'identified' AND IncidentCommander = 'U0CAROL03'"
    )

    async def found() -> list[str]:
        return [w.id async for w in client.list_workflows(query)]

    async def probe_until() -> list[str]:
        for _ in range(100):
            ids = await found()
            if ids:
                return ids
            await asyncio.sleep(0.1)
        return []

    assert await probe_until() == [state.id]
    assert state.channel is not None
    channel_query = f"IncidentChannel = '{state.channel.name}'"
    assert [w.id async for w in client.list_workflows(channel_query)] == [state.id]
    listed = await desk.list(severity="sev1", status=Status.IDENTIFIED)
    assert state.id in [i.id for i in listed]


async def test_twenty_concurrent_declarations_get_twenty_distinct_numbers(desk):
    results = await asyncio.gather(*(desk.declare(sev1(f"Storm {i}")) for i in range(20)))
    numbers = [state.number for state, _ in results]
    assert len(set(numbers)) == 20
    assert all(created for _, created in results)
    assert max(numbers) - min(numbers) == 19  # sequential: no gaps when nothing failed


async def test_same_idempotency_key_returns_the_open_incident(desk, key, slack):
    first, created = await desk.declare(sev1("Queue backlog", idempotency_key=key))
    again, created_again = await desk.declare(sev1("Queue backlog (again)", idempotency_key=key))
    assert created and not created_again
    assert again.id == first.id and again.title == "Queue backlog"
    assert first.channel is not None
    assert (
        len(
            [
                c
                for c in slack.calls_to("conversations.create")
                if c.ok and c.args.get("name") == first.channel.name
            ]
        )
        == 1
    )
    await desk.command(first.id, cmd.Resolve())

    async def new_incident_after_resolution() -> bool:
        state, created = await desk.declare(sev1("Queue backlog", idempotency_key=key))
        return created and state.id != first.id

    for _ in range(50):  # the release is a signal: it lands a moment after resolution
        if await new_incident_after_resolution():
            return
        await asyncio.sleep(0.1)
    pytest.fail("the key of a resolved incident still returned the old incident")


async def test_taken_channel_name_gets_the_next_free_suffix(desk, slack, settings):
    web = AsyncWebClient(token=BOT_TOKEN, base_url=slack.base_url)
    first, _ = await desk.declare(sev1("Duplicate name"))
    assert first.channel is not None
    second, _ = await desk.declare(sev1("Duplicate name"))
    assert second.channel is not None
    assert second.channel.name == first.channel.name + "-2"
    info = await web.conversations_info(channel=second.channel.id)
    assert second.id in info["channel"]["purpose"]["value"]


async def test_unknown_responder_is_recorded_and_the_incident_goes_on(desk):
    state, _ = await desk.declare(sev1("Partial outage", responders=["U0NOBODY9", "U0BOB0002"]))
    state = await desk.get(state.id)
    problems = [e.text for e in state.timeline if e.kind == "problem"]
    assert problems == ["could not invite <@U0NOBODY9>: user_not_found"]
    assert state.channel is not None


async def test_rate_limited_post_is_retried_and_posted_once(desk, slack):
    state, _ = await desk.declare(sev1("Rate limited"))
    slack.inject(
        Fault(method="chat.postMessage", error="ratelimited", status=429, retry_after=1, times=1)
    )
    await desk.command(state.id, cmd.PostUpdate(message="unique-update-text-42"))
    assert state.channel is not None
    channel_id = state.channel.id
    await eventually(lambda: [t for t in texts(slack, channel_id) if "unique-update-text-42" in t])
    await asyncio.sleep(0.5)
    assert len([t for t in texts(slack, channel_id) if "unique-update-text-42" in t]) == 1


async def test_unknown_incident(desk: IncidentDesk):
    with pytest.raises(IncidentNotFound):
        await desk.get("INC-999999")
    with pytest.raises(IncidentNotFound):
        await desk.command("incident-999999", cmd.Acknowledge())

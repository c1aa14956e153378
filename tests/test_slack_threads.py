"""The broadcast channel end to end: one announcement per incident, edited in place, with the
incident's course as replies in its thread; a severity's ``broadcast_replies``; the Join button;
a reply whose answer Slack lost is not posted twice. Dev server, worker, the API's Bolt app and
the emulator; every assertion is on what the emulator holds or on the incident."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.client import Client

from config import Settings
from localslack import SlackEmulator
from localslack.control import Fault
from localslack.posts import in_history
from localslack.seed import BOT_TOKEN
from starter.desk import IncidentDesk
from tests.conftest import TASK_QUEUE, seconds_policy
from tests.support import eventually, serve_slack_app
from tests.test_slack_app import Person, declared
from tests.test_slack_events import until
from workflows.lifecycle import commands as cmd
from workflows.models import IncidentState, Role, Status

SECRET = "threads-signing-secret"
ALICE, BOB, CAROL = "U0ALICE01", "U0BOB0002", "U0CAROL03"


@pytest.fixture(scope="module")
def threads_desk(client: Client, worker: None) -> IncidentDesk:
    policy = seconds_policy().model_dump()
    policy["severities"]["sev1"]["broadcast_replies"] = True
    return IncidentDesk(client, TASK_QUEUE, type(seconds_policy()).model_validate(policy))


@pytest.fixture(scope="module")
async def app_url(
    settings: Settings, threads_desk: IncidentDesk, slack: SlackEmulator
) -> AsyncIterator[str]:
    async with serve_slack_app(settings, threads_desk, slack, SECRET) as url:
        yield url


@pytest.fixture
def alice(slack: SlackEmulator, app_url: str) -> Person:
    return Person(slack, ALICE)


def broadcast(slack: SlackEmulator, incident_id: str) -> list[dict[str, Any]]:
    """The incident's messages in #incidents, oldest first, replies included."""
    channel = slack.channel_by_name("incidents")
    assert channel is not None
    return [
        m
        for m in channel.messages
        if ((m.get("metadata") or {}).get("event_payload") or {}).get("incident_id") == incident_id
    ]


def key(message: dict[str, Any]) -> str:
    return str(message["metadata"]["event_payload"]["key"])


async def announced(desk: IncidentDesk, state: IncidentState) -> IncidentState:
    return await until(desk, state.id, lambda s: s.announcement is not None)


async def test_the_incident_s_course_is_in_the_announcement_s_thread_which_shows_it_as_it_is(
    alice: Person, threads_desk: IncidentDesk, slack: SlackEmulator
) -> None:
    state = await announced(threads_desk, await declared(alice, threads_desk, "Threads", "sev2"))
    assert state.announcement is not None
    ts = state.announcement.ts
    for command in (
        cmd.SetStatus(status=Status.IDENTIFIED, message="bad deploy", by=ALICE),
        cmd.PostUpdate(message="rolling back <now> & watching", by=ALICE),
        cmd.AssignRole(role=Role.COMMANDER, user=CAROL, by=ALICE),
        cmd.SetSeverity(severity="sev3", reason="fewer users", by=ALICE),
    ):
        await threads_desk.command(state.id, command)

    def replied() -> list[str]:
        return [key(m) for m in broadcast(slack, state.id) if m.get("thread_ts") == ts != m["ts"]]

    await eventually(lambda: len(replied()) >= 3, timeout=30)
    messages = broadcast(slack, state.id)
    [top] = [m for m in messages if in_history(m)]  # one message per incident in the channel
    assert top["ts"] == ts and key(top) == "announcement"
    assert all(m.get("subtype") != "thread_broadcast" for m in messages)  # sev2: thread only
    assert sorted(k.split("-")[0] for k in replied()) == [
        "severity_changed",
        "status_changed",
        "update",
    ]
    assert len(set(replied())) == len(replied())

    def current() -> str:
        return str(broadcast(slack, state.id)[0].get("text", ""))

    await eventually(lambda: "SEV3" in current() and f"<@{CAROL}>" in current(), timeout=30)
    assert "*Identified*" in current() and "edited" in broadcast(slack, state.id)[0]

    await threads_desk.command(state.id, cmd.Resolve(message="rolled back", by=CAROL))
    await eventually(lambda: "resolved after" in current(), timeout=30)
    await eventually(lambda: any(k.startswith("resolved-") for k in replied()), timeout=30)
    assert len([m for m in broadcast(slack, state.id) if in_history(m)]) == 1


async def test_a_severity_with_broadcast_replies_also_shows_them_in_the_channel(
    alice: Person, threads_desk: IncidentDesk, slack: SlackEmulator
) -> None:
    state = await announced(threads_desk, await declared(alice, threads_desk, "Loud", "sev1"))
    await threads_desk.command(state.id, cmd.PostUpdate(message="still looking", by=ALICE))

    def updates() -> list[dict[str, Any]]:
        return [m for m in broadcast(slack, state.id) if key(m).startswith("update-")]

    await eventually(lambda: bool(updates()), timeout=30)
    [update] = updates()
    assert state.announcement is not None
    assert update["thread_ts"] == state.announcement.ts
    assert update["subtype"] == "thread_broadcast" and in_history(update)


async def test_join_adds_who_clicks_it_to_the_channel_and_says_so_once_they_are_in(
    alice: Person, threads_desk: IncidentDesk, slack: SlackEmulator
) -> None:
    state = await announced(threads_desk, await declared(alice, threads_desk, "Join", "sev3"))
    assert state.announcement is not None and state.channel is not None
    bob = Person(slack, BOB)
    channel = slack.workspace.channels[state.channel.id]
    assert BOB not in channel.members
    for said in ("Added you to", "You are already in"):
        seen = len(slack.console.replies)
        sent = await bob.clicks("incidents", state.announcement.ts, "incident_join", state.id)
        assert sent.status == 200
        reply = await bob.reply_after(seen)
        assert reply.text == f"{said} <#{state.channel.id}>.", reply.text
        assert BOB in channel.members
    state = await until(threads_desk, state.id, lambda s: BOB in s.responders)
    assert [e.text for e in state.timeline if e.kind == "joined"] == [f"<@{BOB}> joined"]


async def test_a_reply_whose_answer_was_lost_is_in_the_thread_once(
    alice: Person, threads_desk: IncidentDesk, slack: SlackEmulator
) -> None:
    state = await announced(threads_desk, await declared(alice, threads_desk, "Lost", "sev3"))
    assert state.announcement is not None
    # Slack posts the next two replies and the answers are lost; the retries find them.
    slack.inject(Fault(method="chat.postMessage", status=503, commit=True, times=2))
    await threads_desk.command(state.id, cmd.PostUpdate(message="answer lost", by=ALICE))

    def copies() -> list[dict[str, Any]]:
        return [m for m in broadcast(slack, state.id) if key(m).startswith("update-")]

    assert state.channel is not None
    incident_channel = slack.workspace.channels[state.channel.id]

    def in_channel() -> list[dict[str, Any]]:
        return [
            m
            for m in incident_channel.messages
            if (m.get("metadata") or {})
            .get("event_payload", {})
            .get("key", "")
            .startswith("update-")
        ]

    # The retries look before posting again: the broadcast's in the thread.
    await eventually(lambda: bool(slack.calls_to("conversations.replies")), timeout=30)
    await threads_desk.command(state.id, cmd.PostUpdate(message="next", by=ALICE))
    # Each lane keeps its order: the next update is there once the retried one is done.
    await eventually(lambda: len(copies()) >= 2 and len(in_channel()) >= 2, timeout=30)
    first, _ = copies()
    assert first["thread_ts"] == state.announcement.ts
    assert [len(copies()), len(in_channel())] == [2, 2]
    assert len([m for m in broadcast(slack, state.id) if in_history(m)]) == 1


async def test_the_emulator_pages_a_thread_like_slack(slack: SlackEmulator) -> None:
    web = AsyncWebClient(token=BOT_TOKEN, base_url=slack.base_url)
    incidents, general = slack.channel_by_name("incidents"), slack.channel_by_name("general")
    assert incidents is not None and general is not None
    channel = incidents.id
    parent = (await web.chat_postMessage(channel=channel, text="parent"))["ts"]
    replies = [
        (await web.chat_postMessage(channel=channel, text=f"r{n}", thread_ts=parent))["ts"]
        for n in range(3)
    ]
    first = await web.conversations_replies(channel=channel, ts=parent, limit=2)
    assert [m["ts"] for m in first["messages"]] == [parent, *replies[:2]]
    assert first["has_more"] is True
    cursor = first["response_metadata"]["next_cursor"]
    rest = await web.conversations_replies(channel=channel, ts=parent, cursor=cursor)
    assert [m["ts"] for m in rest["messages"]] == replies[2:] and rest["has_more"] is False
    after = await web.conversations_replies(channel=channel, ts=parent, oldest=replies[0])
    assert [m["ts"] for m in after["messages"]] == [parent, *replies[1:]]
    history = await web.conversations_history(channel=channel, oldest=parent, inclusive=True)
    assert [m["ts"] for m in history["messages"]] == [parent]  # replies stay in the thread
    for ts, wanted, where in (
        ("1.000001", "thread_not_found", channel),
        (parent, "not_in_channel", general.id),
    ):
        with pytest.raises(SlackApiError) as refused:
            await web.conversations_replies(channel=where, ts=ts)
        assert refused.value.response["error"] == wanted

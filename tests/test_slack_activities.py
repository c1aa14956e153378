"""Slack side effects that must cope with Slack as it is: limits, rate limits, membership,
people named by handle, people Slack does not know."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from temporalio.testing import ActivityEnvironment

from activities.slack import SlackActivities
from clients import Permanent
from clients.documents import SlackDocuments
from clients.slack import Slack
from clients.slack_client import permanent_errors, slack_client
from localslack import BOT_TOKEN, BOT_USER_ID, Fault, SlackEmulator
from localslack.seed import User
from starter.desk import IncidentDesk
from tests.conftest import TASK_QUEUE
from tests.support import eventually, until
from tests.test_timers import escalating_policy, tier
from workflows.effects import Audience, Notice, Post, PostMessage
from workflows.lifecycle import commands as cmd
from workflows.models import Declaration, Impact, Status
from workflows.policy import Policy, default_policy
from workflows.requests import DocumentFile, IncidentBrief, InviteUsers, OpenChannel, Upload


def kickoff(slack: SlackEmulator, channel_id: str) -> dict[str, Any] | None:
    return next(
        (
            m
            for m in slack.messages(channel_id)
            if m.get("metadata", {}).get("event_payload", {}).get("key") == "kickoff"
        ),
        None,
    )


async def test_a_long_list_of_components_does_not_lose_the_kickoff(
    desk: IncidentDesk, slack: SlackEmulator
) -> None:
    # As many as a declaration takes, each as long as it may be: far over a field's 2,000.
    components = [f"component-{n:03d}-" + "x" * 86 for n in range(50)]
    state, _ = await desk.declare(
        Declaration(title="Everything broke", severity="sev2", components=components)
    )
    assert state.channel is not None
    channel_id = state.channel.id
    message = await eventually(lambda: kickoff(slack, channel_id))
    fields = message["blocks"][1]["fields"]
    assert len(fields) <= 10 and all(len(f["text"]) <= 2000 for f in fields)
    assert any("component-000" in f["text"] for f in fields)


async def test_unknown_responder_is_dropped_after_the_failed_invite(
    desk: IncidentDesk, slack: SlackEmulator
) -> None:
    state, _ = await desk.declare(
        Declaration(
            title="Ghost responder",
            severity="sev2",
            commander="U0ALICE01",
            responders=["U0BOB0002", "U0NOBODY9"],
        )
    )

    assert await until(lambda: desk.get(state.id), lambda s: "U0NOBODY9" not in s.responders)
    final = await desk.get(state.id)
    assert final.responders == ["U0BOB0002"]
    problems = [e.text for e in final.timeline if e.kind == "problem"]
    assert problems == ["could not invite <@U0NOBODY9>: user_not_found"]
    assert final.channel is not None
    assert "U0BOB0002" in slack.channels[final.channel.id].members


async def test_policy_people_by_handle_are_invited_and_mentioned(
    client: Any, worker: None, slack: SlackEmulator
) -> None:
    policy = escalating_policy(tier(3600, "@carol", "erin@example.com"))
    desk = IncidentDesk(client, TASK_QUEUE, policy)
    state, _ = await desk.declare(Declaration(title="Handles", severity="sev2"))
    assert state.channel is not None
    channel_id = state.channel.id
    # The email lookup is rate limited past what the client rides out: retried, not recorded.
    slack.inject(Fault(method="users.lookupByEmail", status=429, retry_after=0, times=6))
    await desk.command(state.id, cmd.Escalate(reason="need hands"))

    def escalation() -> dict[str, Any] | None:
        return next(
            (
                m
                for m in slack.messages(channel_id)
                if m.get("metadata", {}).get("event_payload", {}).get("key", "").startswith("esc")
            ),
            None,
        )

    message = await eventually(escalation, timeout=20)
    assert "<@U0CAROL03>" in message["text"] and "<@U0ERIN005>" in message["text"]
    await eventually(
        lambda: {"U0CAROL03", "U0ERIN005"} <= set(slack.channels[channel_id].members), 20
    )
    final = await desk.get(state.id)
    assert [e.text for e in final.timeline if e.kind == "problem"] == []


async def test_bot_joins_the_broadcast_channel_when_it_is_not_in_it(
    slack: SlackEmulator,
) -> None:
    broadcast = slack.channel_by_name("incidents")
    assert broadcast is not None
    activities = SlackActivities(
        Slack(slack_client(BOT_TOKEN, slack.base_url), broadcast.id, lambda i: f"https://x/{i}")
    )
    broadcast.members.remove(BOT_USER_ID)
    brief = brief_of("incident-99999", datetime.now(UTC))
    post = Post(key="announcement", notice=Notice.ANNOUNCEMENT, audience=[Audience.BROADCAST])
    request = PostMessage(channel_id=None, post=post, brief=brief)
    posted = await ActivityEnvironment().run(activities.post_message, request)
    assert posted.channel_id == broadcast.id
    assert BOT_USER_ID in broadcast.members
    assert [c.ok for c in slack.calls_to("conversations.join")][-1:] == [True]


def brief_of(incident_id: str, declared_at: datetime) -> IncidentBrief:
    return IncidentBrief(
        id=incident_id,
        number=int(incident_id.rsplit("-", 1)[1]),
        title="Join first",
        summary="",
        severity="sev2",
        severity_description="",
        impact=Impact.MAJOR,
        status=Status.INVESTIGATING,
        components=[],
        commander=None,
        tech_lead=None,
        comms_lead=None,
        channel=None,
        escalation_level=0,
        next_update_due=None,
        declared_at=declared_at,
        resolved_at=None,
    )


async def test_a_retried_post_finds_its_copy_behind_hundreds_of_newer_messages(
    slack: SlackEmulator,
) -> None:
    """In a busy #incidents more than a page of messages goes by while a retry waits; the
    copy the first try posted (its answer lost) must still be found, not posted again."""
    web = slack_client(BOT_TOKEN, slack.base_url)
    channel = (await web.conversations_create(name="busy-incidents-1"))["channel"]["id"]
    activities = SlackActivities(Slack(web, channel, lambda i: f"https://x/{i}"))
    first_try = datetime.now(UTC)
    post = Post(key="announcement", notice=Notice.ANNOUNCEMENT, audience=[Audience.BROADCAST])
    request = PostMessage(channel_id=None, post=post, brief=brief_of("incident-99998", first_try))
    posted = await ActivityEnvironment().run(activities.post_message, request)
    for n in range(250):
        await web.chat_postMessage(channel=channel, text=f"another incident's news {n}")
    retry = ActivityEnvironment()
    retry.info = dataclasses.replace(retry.info, attempt=2, scheduled_time=first_try)
    again = await retry.run(activities.post_message, request)
    assert again == posted
    copies = [
        m
        for m in slack.messages(channel)
        if m.get("metadata", {}).get("event_payload", {}).get("key") == "announcement"
    ]
    assert len(copies) == 1


async def test_invitations_go_in_batches_of_a_hundred(slack: SlackEmulator) -> None:
    channel = (await slack_client(BOT_TOKEN, slack.base_url).conversations_create(name="big-1"))[
        "channel"
    ]["id"]
    people = [f"U0MANY{n:04d}" for n in range(150)]
    for user_id in people:
        slack.workspace.users[user_id] = User(
            user_id, user_id.lower(), user_id, "", "UTC", "UTC", 0
        )
    activities = SlackActivities(Slack(slack_client(BOT_TOKEN, slack.base_url), "incidents", str))
    before = len(slack.calls_to("conversations.invite"))
    result = await ActivityEnvironment().run(
        activities.invite, InviteUsers(channel_id=channel, users=people)
    )
    assert sorted(result.invited) == sorted(people) and result.failed == {}
    calls = slack.calls_to("conversations.invite")[before:]
    assert [len(c.args["users"].split(",")) for c in calls] == [100, 50]


def actions(message: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [
        (e["action_id"], e.get("value"))
        for b in message.get("blocks", [])
        if b["type"] == "actions"
        for e in b["elements"]
    ]


async def test_kickoff_has_buttons_and_follows_the_incident_until_resolved(
    desk: IncidentDesk, slack: SlackEmulator
) -> None:
    state, _ = await desk.declare(Declaration(title="Kickoff follows", severity="sev2"))
    assert state.channel is not None
    channel_id = state.channel.id
    first = await eventually(lambda: kickoff(slack, channel_id))
    assert actions(first) == [
        ("incident_acknowledge", state.id),
        ("incident_status_modal", state.id),
        ("incident_resolve_modal", state.id),
        ("open_incident_workflow", None),
    ]
    await desk.command(state.id, cmd.Acknowledge(by="U0BOB0002"))
    await desk.command(state.id, cmd.SetSeverity(severity="sev1"))
    await desk.command(state.id, cmd.SetStatus(status=Status.IDENTIFIED))

    def shows(*parts: str) -> dict[str, Any] | None:
        message = kickoff(slack, channel_id)
        seen = str(message.get("blocks")) if message else ""
        return message if all(p in seen for p in parts) else None

    current = await eventually(lambda: shows("SEV1", "identified", "<@U0BOB0002>"))
    assert next(a for a, _ in actions(current)) == "incident_status_modal"  # acknowledged
    assert slack.pins(channel_id) == [current["ts"]] and current["ts"] == first["ts"]
    await desk.command(state.id, cmd.Resolve(message="fixed"))
    resolved = await eventually(lambda: shows("*Resolved*"))
    assert actions(resolved) == []
    final = await desk.get(state.id)
    assert final.kickoff is not None and final.kickoff.ts == first["ts"]
    assert [e.text for e in final.timeline if e.kind == "problem"] == []


async def test_channel_bookmarks_conference_temporal_runbooks_and_declared_links_once(
    client: Any, worker: None, slack: SlackEmulator
) -> None:
    policy = Policy.model_validate(
        {
            **default_policy().model_dump(),
            "channel": {"conference_url": "https://meet.example.com/{channel}"},
            "components": {"checkout": {"runbook": "https://runbooks.example.com/checkout"}},
        }
    )
    desk = IncidentDesk(client, TASK_QUEUE, policy)
    # The first add is done by Slack but its answer is lost: the retry must not add it again.
    slack.inject(Fault(method="bookmarks.add", status=503, commit=True))
    state, _ = await desk.declare(
        Declaration(
            title="Bookmarked",
            severity="sev2",
            components=["checkout", "search"],
            links=[{"title": "Dashboard <&>", "url": "https://grafana.example.com/d/1"}],
        )
    )
    assert state.channel is not None
    channel = slack.channels[state.channel.id]
    expected = {
        "Conference": f"https://meet.example.com/{state.channel.name}",
        "Incident in Temporal": f"http://127.0.0.1:8233/namespaces/default/workflows/{state.id}",
        "Runbook: checkout": "https://runbooks.example.com/checkout",
        "Dashboard &lt;&amp;&gt;": "https://grafana.example.com/d/1",
    }
    await eventually(lambda: len(channel.bookmarks) >= len(expected), timeout=20)
    assert {b["title"]: b["link"] for b in channel.bookmarks} == expected
    assert len(channel.bookmarks) == len(expected)


async def test_a_retry_finds_the_marked_channel_past_an_orphan_an_earlier_try_left(
    slack: SlackEmulator,
) -> None:
    """A try created the channel and lost the answer, and lost the note of it too; the next
    try went on to ``-2`` and marked it. A later retry that knows of both names must find
    ``-2`` again, not adopt the orphan as a second channel of the incident (seen in chaos)."""
    web = slack_client(BOT_TOKEN, slack.base_url)
    channels = Slack(web, "incidents", lambda i: f"https://x/{i}").channels
    request = OpenChannel(
        incident_id="incident-99997", label="INC-99997", title="Orphan", name="inc-orphan-99997"
    )
    orphan = (await web.conversations_create(name=request.name))["channel"]["id"]
    first = await channels.create(request, [], lambda names: None)
    assert first.name == "inc-orphan-99997-2"
    again = await channels.create(request, [request.name, first.name], lambda names: None)
    assert again == first
    purpose = slack.workspace.channels[orphan].purpose
    assert "incident-99997" not in str(purpose), "the orphan stays unmarked"


# Only what a retry can fix is retried: Slack's own trouble, a 429, a 5xx, a lost connection.
# Any other error, one this code has never heard of included, fails at once as a Permanent
# that names the method and the error.
TRANSIENT = [
    {"error": "internal_error"},
    {"error": "fatal_error"},
    {"error": "service_unavailable"},
    {"error": "request_timeout"},
    {"status": 503},
    {"status": 500},
]
PERMANENT = ["channel_not_found", "unknown_method", "posting_to_channel_not_allowed", "x_new"]


@pytest.mark.parametrize("fault", TRANSIENT)
async def test_a_transient_slack_error_is_left_for_a_retry(
    slack: SlackEmulator, fault: dict[str, Any]
) -> None:
    web = slack_client(BOT_TOKEN, slack.base_url)
    slack.inject(Fault(method="chat.postMessage", **fault))
    with pytest.raises(SlackApiError):
        async with permanent_errors("chat.postMessage"):
            await web.chat_postMessage(channel="general", text="hello")


@pytest.mark.parametrize("error", PERMANENT)
async def test_any_other_slack_error_fails_at_once_naming_method_and_error(
    slack: SlackEmulator, error: str
) -> None:
    web = slack_client(BOT_TOKEN, slack.base_url)
    slack.inject(Fault(method="chat.postMessage", error=error))
    with pytest.raises(Permanent) as refused:
        async with permanent_errors("chat.postMessage"):
            await web.chat_postMessage(channel="general", text="hello")
    assert refused.value.message == f"Slack chat.postMessage: {error}"
    assert refused.value.kind == "SlackError"


async def test_a_retried_share_finds_its_file_not_a_canvas_when_canvases_are_refused(
    slack: SlackEmulator,
) -> None:
    """The draft went as a file (canvases off) and the answer was lost: the retry finds that
    file, although it bears the canvas's title, and makes neither a canvas nor a copy."""
    documents = SlackDocuments(slack_client(BOT_TOKEN, slack.base_url))
    channel = await slack_client(BOT_TOKEN, slack.base_url).conversations_create(name="retro-x")
    draft = DocumentFile(filename="i-retro.md", title="Retrospective: X", content="# X\n")
    upload = Upload(
        channel_id=channel["channel"]["id"], files=[draft.model_copy(update={"canvas": "channel"})]
    )
    slack.workspace.canvas_plan = "off"
    try:
        slack.inject(Fault("files.completeUploadExternal", drop=True, commit=True))
        with pytest.raises(Exception):  # noqa: B017 (the connection dropped: any error)
            await documents.upload(upload, check_first=False)
        again = await documents.upload(upload, check_first=True)
    finally:
        slack.workspace.canvas_plan = "paid"
    assert not again.canvas and again.refused == "canvas_disabled_user_team"
    shared = [m for m in slack.messages(upload.channel_id) if m.get("files")]
    assert len(shared) == 1 and again.permalinks == [shared[0]["files"][0]["permalink"]]

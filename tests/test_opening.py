"""A declaration's Slack work in one activity: what goes in, what comes out, how it retries."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from localslack import Fault, SlackEmulator
from starter.desk import IncidentDesk
from tests.conftest import TASK_QUEUE
from tests.support import eventually, every_run, every_run_history, until
from tests.test_lifecycle import declared
from tests.test_timers import MARGIN, declare, escalating_policy, notices, posted_after, tier
from workflows.effects import (
    Audience,
    Effect,
    Invite,
    Notice,
    Opened,
    Page,
    PageAction,
    Post,
    RefreshTopic,
)
from workflows.lifecycle import commands as cmd
from workflows.lifecycle import opening
from workflows.lifecycle.channel import incident_brief
from workflows.models import Channel, Declaration
from workflows.policy import default_policy
from workflows.requests import InviteResult, OpenChannel, Posted


def test_the_opening_takes_topic_invitations_kickoff_and_announcement_and_leaves_the_rest() -> None:
    state = declared(responders=["U0BOB0002"])
    kickoff = Post(key="kickoff", notice=Notice.KICKOFF, audience=[Audience.CHANNEL], pin=True)
    announcement = Post(
        key="announcement", notice=Notice.ANNOUNCEMENT, audience=[Audience.BROADCAST]
    )
    page = Page(action=PageAction.TRIGGER, targets=["U0CAROL03"])
    outbox: list[Effect] = [
        RefreshTopic(),
        Invite(users=["U0ALICE01", "U0BOB0002"]),
        kickoff,
        announcement,
        page,
    ]
    channel = OpenChannel(incident_id=state.id, label="INC-1", title=state.title, name="inc-x")
    request, rest = opening.request(
        state, default_policy(), channel, incident_brief(state, default_policy()), outbox
    )
    assert (request.topic, request.invite, request.posts) == (
        True,
        ["U0ALICE01", "U0BOB0002"],
        [kickoff, announcement],
    )
    assert rest == [page]
    # Given up for now, the same opening runs again later: its posts look for an earlier copy
    # first, and the archive hears of the incident from its own effect.
    again = opening.again(request)
    assert (again.request.topic, again.request.invite) == (True, ["U0ALICE01", "U0BOB0002"])
    assert [p.key for p in again.request.posts] == ["kickoff", "announcement"]
    assert all(p.check_first for p in again.request.posts) and again.request.record is None


def test_the_opening_outcome_sets_channel_and_kickoff_and_forgets_unknown_people() -> None:
    state = declared(responders=["U0BOB0002", "U0NOBODY9"])
    outcome = Opened(
        channel=Channel(id="C0INC0042", name="inc-x"),
        posted={"kickoff": Posted(channel_id="C0INC0042", ts="1.000100")},
        invited=InviteResult(invited=["U0BOB0002"], failed={"U0NOBODY9": "user_not_found"}),
        problems=["could not set the topic: channel_not_found"],
    )
    problems = opening.apply(state, outcome, state.declared_at)
    assert problems == [
        "could not set the topic: channel_not_found",
        "could not invite <@U0NOBODY9>: user_not_found",
    ]
    assert state.channel == outcome.channel and state.responders == ["U0BOB0002"]
    assert state.kickoff is not None and state.kickoff.ts == "1.000100"
    assert state.timeline[-1].text == "Channel #inc-x"


async def test_a_flaky_slack_step_is_tried_again_inside_the_one_opening_activity(
    desk: IncidentDesk, client: Client, slack: SlackEmulator
) -> None:
    # Two server errors on the topic, and a kickoff or announcement Slack posted but whose
    # answer was lost: tried again within the attempt, each still done exactly once.
    slack.inject(Fault(method="conversations.setTopic", status=503, times=2))
    slack.inject(Fault(method="chat.postMessage", status=503, commit=True))
    state, _ = await desk.declare(
        Declaration(title="Flaky opening", severity="sev2", commander="U0ALICE01")
    )
    assert state.channel is not None and state.kickoff is not None
    events = await every_run_history(client, state.id)
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    attempts = [
        e.activity_task_started_event_attributes.attempt
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    assert scheduled[0] == "slack_open_incident" and "slack_open_channel" not in scheduled
    assert attempts[0] == 1
    broadcast = slack.channel_by_name("incidents")
    assert broadcast is not None

    def mine(channel_id: str) -> list[str]:
        return [
            str(m["metadata"]["event_payload"]["key"])
            for m in slack.messages(channel_id)
            if m.get("metadata", {}).get("event_payload", {}).get("incident_id") == state.id
        ]

    assert mine(state.channel.id) == ["kickoff"] and mine(broadcast.id) == ["announcement"]
    assert slack.pins(state.channel.id)
    channel = state.channel.id
    topic = await eventually(lambda: slack.workspace.channels[channel].topic, timeout=5)
    assert "SEV2" in topic


async def test_an_opened_incident_waits_for_its_deadlines_in_a_short_new_run(
    worker: None, client: Client
) -> None:
    policy = default_policy()
    policy.history.continue_as_new_once_open = True
    desk = IncidentDesk(client, TASK_QUEUE, policy)
    state, _ = await desk.declare(
        Declaration(title="Rests after opening", severity="sev2", commander="U0ALICE01")
    )
    assert await until(lambda: every_run(client, state.id), lambda runs: len(runs) == 2, timeout=10)
    opening_run, resting_run = await every_run(client, state.id)
    assert opening_run.events[-1].event_type == (
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    )
    # The new run starts where the old left off: no second opening, no second archive record.
    activities = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in resting_run.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert activities == [] and len(resting_run.events) < 12
    acknowledged = await desk.command(state.id, cmd.Acknowledge(by="U0ALICE01"))
    assert acknowledged.channel == state.channel and acknowledged.acknowledged_at is not None


async def test_by_default_an_incident_keeps_one_run_after_opening(
    desk: IncidentDesk, client: Client
) -> None:
    state, _ = await desk.declare(
        Declaration(title="One run", severity="sev2", commander="U0ALICE01")
    )
    handle = client.get_workflow_handle(state.id)
    # Opened (the declaration waited for it) and recorded in the archive: nothing more comes.
    assert not await until(lambda: every_run(client, state.id), lambda r: len(r) > 1, 3)
    description = await handle.describe()
    assert description.raw_description.workflow_execution_info.first_run_id == description.run_id


# Each optional step of the opening fails in turn: refused for good, refused with an error this
# code has never heard of, or never answered. The channel still reaches the incident with the
# declaration, and the first escalation of a sev1 fires on time.
OPTIONAL_METHODS = ["conversations.setTopic", "bookmarks.list", "bookmarks.add", "pins.add"]
FAULTS: dict[str, dict[str, Any]] = {
    "refused": {"error": "restricted_action"},
    "unknown": {"error": "some_new_error_not_allowed"},
    "hangs": {"delay": 20.0},
}
ESCALATE_AFTER = 3.0


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("method", OPTIONAL_METHODS)
async def test_an_optional_step_that_fails_holds_back_neither_the_channel_nor_escalation(
    client: Client, worker: None, slack: SlackEmulator, method: str, fault: str
) -> None:
    slack.inject(Fault(method=method, **FAULTS[fault]))
    policy = escalating_policy(tier(ESCALATE_AFTER, "U0BOB0002"))
    _, state = await declare(client, policy, f"Optional {method} {fault}")
    assert state.channel is not None and state.kickoff is not None
    if fault != "hangs":  # failed at once, said on the timeline with the method and the error
        problems = [e.text for e in state.timeline if e.kind == "problem"]
        assert any(f"Slack {method}: {FAULTS[fault]['error']}" in p for p in problems), problems
    escalated = await eventually(lambda: notices(slack, state, "escalated"), timeout=15)
    assert posted_after(slack, state, escalated[0]) < ESCALATE_AFTER + MARGIN
    if fault == "hangs":  # done after all, in the background
        channel = slack.workspace.channels[state.channel.id]
        await eventually(lambda: channel.topic and slack.pins(channel.id), timeout=30)
        await eventually(lambda: len(channel.bookmarks) >= 1, timeout=30)

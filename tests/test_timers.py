"""Durable timers in the one deadline loop: escalation tiers and the update cadence.

Durations come from seconds-scale policies; timing is asserted from what the Slack emulator
received, with margins, never from sleeps alone.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from localslack import SlackEmulator
from starter.desk import IncidentDesk
from tests.conftest import TASK_QUEUE, seconds_policy
from tests.support import eventually
from workflows.lifecycle import commands as cmd
from workflows.models import Declaration, IncidentState
from workflows.policy import EscalationTier, Policy

MARGIN = 1.5  # seconds a timer may take to show up in Slack on a busy 2-core machine


def escalating_policy(*tiers: EscalationTier, update_every: float | None = None) -> Policy:
    return seconds_policy(update_every=update_every, escalation=list(tiers))


def tier(after: float, *notify: str, **options: object) -> EscalationTier:
    return EscalationTier.model_validate({"after": after, "notify": list(notify), **options})


def notices(slack: SlackEmulator, state: IncidentState, key_prefix: str) -> list[dict]:
    assert state.channel is not None
    return [
        m
        for m in slack.messages(state.channel.id)
        if m.get("metadata", {}).get("event_payload", {}).get("key", "").startswith(key_prefix)
    ]


def posted_after(slack: SlackEmulator, state: IncidentState, message: dict) -> float:
    """Seconds from declaration to when Slack received this message."""
    return float(message["ts"]) - state.declared_at.timestamp()


async def declare(
    client, policy: Policy, title: str, **fields: object
) -> tuple[IncidentDesk, IncidentState]:
    desk = IncidentDesk(client, TASK_QUEUE, policy)
    state, _ = await desk.declare(
        Declaration.model_validate(
            {"title": title, "severity": "sev1", "commander": "U0ALICE01", **fields}
        )
    )
    return desk, state


async def test_unacknowledged_incident_escalates_through_every_tier(client, worker, slack):
    policy = escalating_policy(tier(1, "U0BOB0002"), tier(1, "U0CAROL03"))
    desk, state = await declare(client, policy, "Nobody home")
    await eventually(lambda: len(notices(slack, state, "escalated")) >= 2, timeout=10)
    first, second = notices(slack, state, "escalated")
    assert 1.0 <= posted_after(slack, state, first) <= 1.0 + MARGIN
    assert 2.0 <= posted_after(slack, state, second) <= 2.0 + 2 * MARGIN
    assert "<@U0BOB0002>" in first["text"] and "<@U0CAROL03>" in second["text"]
    assert state.channel is not None
    assert {"U0BOB0002", "U0CAROL03"} <= set(slack.channels[state.channel.id].members)
    state = await desk.get(state.id)
    assert state.escalation_level == 2
    assert [e.kind for e in state.timeline].count("escalated") == 2


async def test_acknowledging_stops_escalation(client, worker, slack):
    policy = escalating_policy(tier(1.5, "U0BOB0002"), tier(1, "U0CAROL03"))
    desk, state = await declare(client, policy, "Acked quickly")
    await desk.command(state.id, cmd.Acknowledge(by="U0ALICE01"))
    await asyncio.sleep(3)
    assert notices(slack, state, "escalated") == []
    assert (await desk.get(state.id)).escalation_level == 0


async def test_manual_escalation_jumps_to_the_next_tier_at_once(client, worker, slack):
    policy = escalating_policy(tier(60, "U0BOB0002"), tier(60, "U0CAROL03"))
    desk, state = await declare(client, policy, "Escalate by hand")
    state = await desk.command(state.id, cmd.Escalate(reason="need the DBA", by="U0ALICE01"))
    assert state.escalation_level == 1
    message = (await eventually(lambda: notices(slack, state, "escalated")))[0]
    assert "need the DBA" in message["text"] and "<@U0BOB0002>" in message["text"]
    assert state.next_update_due is None  # this policy has no cadence


async def test_severity_change_replans_the_remaining_tiers(client, worker, slack):
    policy = escalating_policy(tier(30, "U0BOB0002"))
    policy.severities["sev2"] = policy.severities["sev2"].model_copy(
        update={"escalation": [tier(1, "U0DAVE004")]}
    )
    desk, state = await declare(client, policy, "Downgraded then escalated")
    await desk.command(state.id, cmd.SetSeverity(severity="sev2"))
    message = (await eventually(lambda: notices(slack, state, "escalated"), timeout=8))[0]
    assert "<@U0DAVE004>" in message["text"]
    assert posted_after(slack, state, message) <= 1.0 + MARGIN


async def test_last_tier_repeats(client, worker, slack):
    policy = escalating_policy(tier(1, "U0BOB0002", repeat=2))
    desk, state = await declare(client, policy, "Repeat the page")
    await eventually(lambda: len(notices(slack, state, "escalated")) >= 3, timeout=10)
    await asyncio.sleep(1.5)
    assert len(notices(slack, state, "escalated")) == 3  # once, then two repeats, then quiet
    assert (await desk.get(state.id)).escalation_level == 3


async def test_update_reminder_fires_on_time_and_updates_reset_it(client, worker, slack):
    policy = seconds_policy(update_every=2)
    desk, state = await declare(client, policy, "Quiet commander", commander="U0ALICE01")
    reminder = (await eventually(lambda: notices(slack, state, "update_due"), timeout=8))[0]
    assert 2.0 <= posted_after(slack, state, reminder) <= 2.0 + MARGIN
    assert "<@U0ALICE01>" in reminder["text"]
    updated = await desk.command(state.id, cmd.PostUpdate(message="found it"))
    assert updated.updates_missed == 0
    assert updated.next_update_due == updated.last_update_at + timedelta(seconds=2)


async def test_second_missed_update_goes_to_the_broadcast_channel(client, worker, slack):
    policy = seconds_policy(update_every=1, missed_update_notify=["U0ERIN005"])
    desk, state = await declare(client, policy, "Silent twice")
    overdue = (await eventually(lambda: notices(slack, state, "update_overdue"), timeout=8))[0]
    assert "<@U0ERIN005>" in overdue["text"]
    assert 2.0 <= posted_after(slack, state, overdue) <= 2.0 + MARGIN
    broadcast = slack.channel_by_name("incidents")
    assert broadcast is not None
    key = overdue["metadata"]["event_payload"]["key"]
    # Posted side by side with the channel's copy, so it may land a moment later.
    assert await eventually(
        lambda: any(
            m.get("metadata", {}).get("event_payload", {}).get("key") == key
            for m in slack.messages(broadcast.id)
        ),
        timeout=5,
    )
    await desk.command(state.id, cmd.Resolve())  # stop the reminders for the rest of the run


async def test_tiers_notify_user_groups_and_emails(client, worker, slack):
    policy = escalating_policy(tier(0.5, "S0ONCALL1", "erin@example.com"))
    _, state = await declare(client, policy, "Wake the on-call group", commander="U0DAVE004")
    message = (await eventually(lambda: notices(slack, state, "escalated"), timeout=8))[0]
    assert "<!subteam^S0ONCALL1>" in message["text"] and "<@U0ERIN005>" in message["text"]
    assert state.channel is not None
    members = set(slack.channels[state.channel.id].members)
    assert {"U0ALICE01", "U0BOB0002", "U0ERIN005"} <= members

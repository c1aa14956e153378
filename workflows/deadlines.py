"""When the next thing is due for an incident: escalation tier, status update, retrospective,
action item reminders, archive.

Deadlines are derived from the state and the policy, never stored as timers, so a command that
changes the state (acknowledge, a new severity, an update, resolution) simply changes what the
workflow's single durable wait is for.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from workflows.models import ActionItem, IncidentState, Status
from workflows.policy import EscalationTier, Policy, SeverityPolicy


class Deadline(StrEnum):
    ESCALATION = "escalation"
    UPDATE = "update"
    ARCHIVE = "archive"
    RETROSPECTIVE = "retrospective"  # the draft and the invitation go out
    RETROSPECTIVE_REMINDER = "retrospective_reminder"
    ACTION_ITEM = "action_item"  # an open item fell due, or is due a reminder again


def escalation_tier(severity: SeverityPolicy, level: int) -> EscalationTier | None:
    """The tier that escalation level ``level`` (1-based) notifies; repeats count as levels."""
    seen = 0
    for tier in severity.escalation:
        seen += 1 + tier.repeat
        if level <= seen:
            return tier
    return None


def start_level(severity: SeverityPolicy, tiers: int) -> int:
    """The level of an incident declared at tier ``tiers``: that tier's first firing, so the
    repeats of the tiers before it are skipped and its own still follow. Beyond the last tier:
    all of them."""
    reached = severity.escalation[:tiers]
    return sum(1 + tier.repeat for tier in reached[:-1]) + 1 if reached else 0


def escalation_due(state: IncidentState, policy: Policy) -> datetime | None:
    if state.acknowledged_at is not None or state.status is Status.RESOLVED:
        return None
    tier = escalation_tier(policy.severity(state.severity), state.escalation_level + 1)
    if tier is None:
        return None
    return (state.escalated_at or state.declared_at) + tier.after


def update_due(state: IncidentState, policy: Policy) -> datetime | None:
    cadence = policy.severity(state.severity).update_every
    if cadence is None or state.status is Status.RESOLVED:
        return None
    return state.last_update_at + cadence * (state.updates_missed + 1)


def archive_due(state: IncidentState, policy: Policy) -> datetime | None:
    if state.status is not Status.RESOLVED or state.archived_at is not None:
        return None
    retro = state.retrospective
    since = retro.completed_at or (retro.due_at if retro.required else None) or state.resolved_at
    assert since is not None
    return since + policy.severity(state.severity).archive_after


def deadlines(state: IncidentState, policy: Policy) -> dict[Deadline, datetime]:
    due = {
        Deadline.ESCALATION: escalation_due(state, policy),
        Deadline.UPDATE: update_due(state, policy),
        Deadline.ARCHIVE: archive_due(state, policy),
    }
    return {name: at for name, at in due.items() if at is not None}


def retrospective_due(state: IncidentState) -> datetime | None:
    retro = state.retrospective
    if state.status is not Status.RESOLVED or not retro.required or retro.drafted_at:
        return None
    return retro.due_at


def retrospective_reminder_due(state: IncidentState, policy: Policy) -> datetime | None:
    retro = state.retrospective
    if state.status is not Status.RESOLVED or retro.drafted_at is None or retro.completed_at:
        return None
    every = policy.severity(state.severity).retrospective.remind_every
    return retro.drafted_at + every * (retro.reminders_sent + 1)


def action_item_reminder_at(item: ActionItem, policy: Policy, severity: str) -> datetime | None:
    """When an open item's owner hears next: at its due time, then every interval after."""
    if not item.is_open or item.due_at is None:
        return None
    return item.due_at + policy.severity(severity).action_item_remind_every * item.reminders_sent


def followup_archive_due(state: IncidentState, policy: Policy) -> datetime | None:
    """``archive_after`` the retrospective's scheduled meeting, or the resolution without one."""
    if state.status is not Status.RESOLVED or state.archived_at is not None:
        return None
    retro = state.retrospective
    since = (retro.meeting_at if retro.required else None) or state.resolved_at
    assert since is not None
    return since + policy.severity(state.severity).archive_after


def followup_deadlines(state: IncidentState, policy: Policy) -> dict[Deadline, datetime]:
    """Every deadline of a running incident: the lifecycle's and the follow-up's."""
    items = [action_item_reminder_at(i, policy, state.severity) for i in state.action_items]
    due = {
        **deadlines(state, policy),
        Deadline.ARCHIVE: followup_archive_due(state, policy),
        Deadline.RETROSPECTIVE: retrospective_due(state),
        Deadline.RETROSPECTIVE_REMINDER: retrospective_reminder_due(state, policy),
        Deadline.ACTION_ITEM: min((at for at in items if at is not None), default=None),
    }
    return {name: at for name, at in due.items() if at is not None}


def refresh_deadlines(state: IncidentState, policy: Policy, now: datetime) -> None:
    """Keep the derived, user-visible deadline in the state exact after every change."""
    state.next_update_due = update_due(state, policy)

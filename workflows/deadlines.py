"""When the next thing is due for an incident: escalation tier, status update, archive.

Deadlines are derived from the state and the policy, never stored as timers, so a command that
changes the state (acknowledge, a new severity, an update, resolution) simply changes what the
workflow's single durable wait is for.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from workflows.models import IncidentState, Status
from workflows.policy import EscalationTier, Policy, SeverityPolicy


class Deadline(StrEnum):
    ESCALATION = "escalation"
    UPDATE = "update"
    ARCHIVE = "archive"


def escalation_tier(severity: SeverityPolicy, level: int) -> EscalationTier | None:
    """The tier that escalation level ``level`` (1-based) notifies; repeats count as levels."""
    seen = 0
    for tier in severity.escalation:
        seen += 1 + tier.repeat
        if level <= seen:
            return tier
    return None


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


def refresh_deadlines(state: IncidentState, policy: Policy, now: datetime) -> None:
    """Keep the derived, user-visible deadline in the state exact after every change."""
    state.next_update_due = update_due(state, policy)

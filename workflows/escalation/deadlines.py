"""When the next thing is due for an incident: escalation tier, status update, retrospective,
action item reminders, archive.

Deadlines are derived from the state and the policy, never stored as timers, so a command that
changes the state (acknowledge, a new severity, an update, resolution) simply changes what the
workflow's single durable wait is for.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from workflows.models import ActionItem, IncidentState, Status
from workflows.policy import BusinessHours, EscalationTier, Policy

# When a retrospective meeting can be held: the first slot inside business hours.
#
# "Free" means inside the policy's business hours on a working day; nobody's calendar is read
# (a calendar integration is out of scope), so the invitation proposes the slot and people move
# it if they must.
SEARCH_DAYS = 21
ZERO = timedelta(0)  # a policy with one working day a week still finds one


def _at(day: date, clock: str, zone: ZoneInfo) -> datetime:
    hours, minutes = (int(part) for part in clock.split(":"))
    if hours == 24:
        return datetime.combine(day + timedelta(days=1), time(0, minutes), zone)
    return datetime.combine(day, time(hours, minutes), zone)


def _windows(
    local: datetime, hours: BusinessHours, zone: ZoneInfo
) -> list[tuple[datetime, datetime]]:
    """Business hours from the day of ``local`` on; a day ending at 24:00 joins the next."""
    windows: list[tuple[datetime, datetime]] = []
    for offset in range(SEARCH_DAYS):
        day = local.date() + timedelta(days=offset)
        if day.weekday() not in hours.days:
            continue
        opens, closes = _at(day, hours.start, zone), _at(day, hours.end, zone)
        if windows and windows[-1][1] == opens:
            windows[-1] = (windows[-1][0], closes)
        else:
            windows.append((opens, closes))
    return windows


def first_free_slot(after: datetime, hours: BusinessHours, length: timedelta) -> datetime:
    """The earliest start at or after ``after`` where a meeting of ``length`` fits in business
    hours; if the meeting is longer than a business day, the start of the next business day."""
    zone = ZoneInfo(hours.timezone)
    # Whole seconds: calendars (iCalendar) carry no fractions, and the archive counts from here.
    whole = after.replace(microsecond=0) + (timedelta(seconds=1) if after.microsecond else ZERO)
    local = whole.astimezone(zone)
    fallback: datetime | None = None
    for opens, closes in _windows(local, hours, zone):
        start = max(opens, local)
        if start + length <= closes:
            return start.astimezone(UTC)
        if fallback is None and opens >= local:
            fallback = opens
    return (fallback or local).astimezone(UTC)


class Deadline(StrEnum):
    ESCALATION = "escalation"
    UPDATE = "update"
    ARCHIVE = "archive"
    RETROSPECTIVE = "retrospective"  # the draft and the invitation go out
    RETROSPECTIVE_REMINDER = "retrospective_reminder"
    ACTION_ITEM = "action_item"  # an open item fell due, or is due a reminder again
    AUTOMATION = "automation"  # a rule of the policy's [[automations]] ends its wait


def escalation_path(policy: Policy, state: IncidentState) -> list[EscalationTier]:
    """The tiers an incident escalates through. Its severity's own tiers when any of them
    names someone: the severity says otherwise. Else the path of the team owning the first of
    its components that has one, so an incident on ``checkout`` reaches checkout's owners;
    else the severity's tiers as they are (the built-in ones page, naming nobody)."""
    own = policy.severity(state.severity).escalation
    if any(tier.notify for tier in own):
        return own
    for component in state.components:
        owned = policy.components.get(component)
        team = policy.teams.get(owned.team) if owned and owned.team else None
        if team and team.escalation:
            return team.escalation
    return own


def escalation_tier(tiers: list[EscalationTier], level: int) -> EscalationTier | None:
    """The tier that escalation level ``level`` (1-based) notifies; repeats count as levels."""
    seen = 0
    for tier in tiers:
        seen += 1 + tier.repeat
        if level <= seen:
            return tier
    return None


def start_level(path: list[EscalationTier], tiers: int) -> int:
    """The level of an incident declared at tier ``tiers``: that tier's first firing, so the
    repeats of the tiers before it are skipped and its own still follow. Beyond the last tier:
    all of them."""
    reached = path[:tiers]
    return sum(1 + tier.repeat for tier in reached[:-1]) + 1 if reached else 0


def escalation_due(state: IncidentState, policy: Policy) -> datetime | None:
    if state.acknowledged_at is not None or state.status is Status.RESOLVED:
        return None
    tier = escalation_tier(escalation_path(policy, state), state.escalation_level + 1)
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
    """Every deadline of a running incident, in the order they fire when due together: the
    lifecycle's, with the follow-up's archive in place of ``archive_due``, and the follow-up's.
    Each computed once (it runs twice at every turn of the workflow)."""
    items = [action_item_reminder_at(i, policy, state.severity) for i in state.action_items]
    due = {
        Deadline.ESCALATION: escalation_due(state, policy),
        Deadline.UPDATE: update_due(state, policy),
        Deadline.ARCHIVE: followup_archive_due(state, policy),
        Deadline.RETROSPECTIVE: retrospective_due(state),
        Deadline.RETROSPECTIVE_REMINDER: retrospective_reminder_due(state, policy),
        Deadline.ACTION_ITEM: min((at for at in items if at is not None), default=None),
        Deadline.AUTOMATION: min((wait.due_at for wait in state.automations), default=None),
    }
    return {name: at for name, at in due.items() if at is not None}


def refresh_deadlines(state: IncidentState, policy: Policy, now: datetime) -> None:
    """Keep the derived, user-visible deadline in the state exact after every change."""
    state.next_update_due = update_due(state, policy)

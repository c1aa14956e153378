"""Escalation: a tier's people paged and invited, by hand, by the deadline loop when nobody
acknowledged in time, or at once for an incident declared past its first tiers.

Pure functions over ``IncidentState``, like the rest of the lifecycle (``lifecycle/states.py``).
"""

from __future__ import annotations

import re
from datetime import datetime

from workflows.effects import (
    ArchiveChannel,
    Audience,
    Effect,
    Invite,
    Notice,
    Page,
    PageAction,
    Post,
    ReachOnCall,
    RefreshTopic,
)
from workflows.escalation.deadlines import (
    Deadline,
    escalation_path,
    escalation_tier,
    refresh_deadlines,
    start_level,
)
from workflows.lifecycle import commands as cmd
from workflows.lifecycle import notices
from workflows.lifecycle.notices import CHANNEL, post_notice, require_open
from workflows.models import IncidentState
from workflows.policy import ONCALL, EscalationTier, Policy
from workflows.requests import WhoIsOnCall
from workflows.resolution import followup
from workflows.text import SLACK_USER_ID

OWNER = [Audience.OWNER]
USER_GROUP = re.compile(r"^S[A-Z0-9]{2,20}$")  # paged as a group, never messaged


# What happens when an incident's deadline comes due.
#
# One dispatch for the workflow's deadline loop and the policy preview, so the preview can never
# show something the workflow would not do.
def fire(state: IncidentState, policy: Policy, deadline: Deadline, now: datetime) -> list[Effect]:
    if deadline is Deadline.ESCALATION:
        return apply_escalate(state, policy, cmd.Escalate(), now, automatic=True)
    if deadline is Deadline.UPDATE:
        return remind_update(state, policy, now)
    if deadline is Deadline.ARCHIVE:
        return archive(state, now)
    if deadline is Deadline.RETROSPECTIVE:
        return followup.send_retrospective(state, policy, now)
    if deadline is Deadline.RETROSPECTIVE_REMINDER:
        return followup.remind_retrospective(state, policy, now)
    return followup.remind_action_items(state, policy, now)


def remind_update(state: IncidentState, policy: Policy, now: datetime) -> list[Effect]:
    """No update for a whole cadence: nudge the commander; a second miss in a row goes wider.

    Reminders stay off the timeline (a long incident would drown in them); only the first
    time an update is overdue is a fact worth keeping for the retrospective.
    """
    severity = policy.severity(state.severity)
    state.updates_missed += 1
    leads = [p for p in (state.roles.commander, state.roles.comms_lead) if p]
    if state.updates_missed == 1:
        text = "A status update is due: post one with `/incident update <message>`."
        post = notices.post_notice(state, Notice.UPDATE_DUE, notices.CHANNEL, None, text, leads)
    else:
        text = f"No status update for {state.updates_missed} update periods in a row."
        audience = notices.BOTH if severity.missed_update_broadcast else notices.CHANNEL
        mentions = [*leads, *severity.missed_update_notify]
        post = notices.post_notice(state, Notice.UPDATE_OVERDUE, audience, None, text, mentions)
        if state.updates_missed == 2:
            state.note(now, "update_overdue", None, "Status update overdue")
    refresh_deadlines(state, policy, now)
    return [post]


def archive(state: IncidentState, now: datetime) -> list[Effect]:
    state.archived_at = now
    state.note(now, "archived", None, "Channel archived")
    return [ArchiveChannel()]


def check_escalate(state: IncidentState, policy: Policy, c: cmd.Escalate) -> None:
    require_open(state, "escalate it")


def apply_escalate(
    state: IncidentState, policy: Policy, c: cmd.Escalate, now: datetime, automatic: bool = False
) -> list[Effect]:
    check_escalate(state, policy, c)
    state.escalation_level += 1
    state.escalated_at = now
    tier = escalation_tier(escalation_path(policy, state), state.escalation_level)
    targets = tier.notify if tier else []
    why = "not acknowledged in time" if automatic else (c.reason or "escalated by hand")
    text = f"Escalated to level {state.escalation_level}: {why}"
    notice = post_notice(state, Notice.ESCALATED, CHANNEL, c.by, text, targets)
    effects = escalation(state, policy, [tier] if tier else [], notice, now)
    state.note(now, "escalated", c.by, text)
    refresh_deadlines(state, policy, now)
    return [*effects, RefreshTopic()]


def escalation(
    state: IncidentState, policy: Policy, tiers: list[EscalationTier], notice: Post, now: datetime
) -> list[Effect]:
    """The tiers' page, invitations and notice; tiers that name ``oncall:<schedule>`` first
    ask who is on call (``ReachOnCall``), so the answer is the one when they fired."""
    if names := on_call_schedules(tiers):
        asked = WhoIsOnCall(schedules={n: policy.schedules[n] for n in names}, at=now)
        return [ReachOnCall(asked=asked, tiers=tiers, notice=notice)]
    return [*notify_tiers(state, policy, tiers, now), notice]


def on_call_schedules(tiers: list[EscalationTier]) -> list[str]:
    """The schedules the tiers name, in order, once each."""
    named = (t.removeprefix(ONCALL) for tier in tiers for t in tier.notify if t.startswith(ONCALL))
    return list(dict.fromkeys(named))


def reach(
    state: IncidentState,
    policy: Policy,
    asked: ReachOnCall,
    on_call: dict[str, str | None],
    now: datetime,
) -> list[Effect]:
    """The tiers' effects once the schedules answered: each ``oncall:<schedule>`` is whoever
    is on call, said on the timeline and beside their mention; nobody (a gap) is said too,
    and the tier still notifies the rest of its list."""
    why: dict[str, str] = {}
    tiers = []
    for tier in asked.tiers:
        notify = []
        for target in tier.notify:
            if not target.startswith(ONCALL):
                notify.append(target)
                continue
            name = target.removeprefix(ONCALL)
            person = on_call.get(name)
            if person is None:
                state.note(now, "on_call", None, f"Nobody on call for {name}: not notified")
                continue
            notify.append(person)
            if person not in why:  # said once, for the first schedule that named them
                why[person] = f"on call for {name}"
                state.note(now, "on_call", None, f"{shown(person)}, on call for {name}")
        tiers.append(tier.model_copy(update={"notify": notify}))
    if state.acknowledged_at is not None and state.acknowledged_at >= asked.asked.at:
        tiers = [t.model_copy(update={"page": False}) for t in tiers]  # too late to wake anyone
    people = list(dict.fromkeys(user for t in tiers for user in t.notify))
    notice = asked.notice.model_copy(update={"mentions": people, "why": why})
    return [*notify_tiers(state, policy, tiers, now, why), notice]


def shown(person: str) -> str:
    """A person as the timeline shows them: a mention when an id, else as given."""
    return f"<@{person}>" if SLACK_USER_ID.match(person) else person


def notify_tiers(
    state: IncidentState,
    policy: Policy,
    tiers: list[EscalationTier],
    now: datetime,
    why: dict[str, str] | None = None,
) -> list[Effect]:
    """Page first (it wakes people), then invite, so the mention lands on channel members.

    Each person a page reaches also gets a direct message with an Acknowledge button; a user
    group (S...) is paged as a group, not messaged."""
    paging = [t for t in tiers if t.page]
    effects: list[Effect] = []
    if paging and state.drill and not policy.drill.page:
        state.note(now, "page-skipped", None, "Page skipped: this is a drill")
    elif paging:
        targets = list(dict.fromkeys(user for t in paging for user in t.notify))
        effects.append(Page(action=PageAction.TRIGGER, targets=targets))
        state.paged_at = state.paged_at or now
        for person in (t for t in targets if not USER_GROUP.match(t)):
            dm = post_notice(state, Notice.PAGED, OWNER, None, "", [person])
            reason = (why or {}).get(person)
            effects.append(dm.model_copy(update={"why": {person: reason}}) if reason else dm)
    invited = list(dict.fromkeys(user for t in tiers if t.invite for user in t.notify))
    if invited:
        effects.append(Invite(users=invited))
    return effects


def start_escalated(
    state: IncidentState, policy: Policy, tiers: int, now: datetime
) -> list[Effect]:
    """Declared past the first ``tiers`` tiers (an alert rule's ``escalation_level``): they
    hear at once, as if each had fired, and the next tier's timer counts from the declaration."""
    path = escalation_path(policy, state)
    reached = path[:tiers]
    if not reached:
        return []
    state.escalation_level = start_level(path, tiers)
    state.escalated_at = now
    targets = list(dict.fromkeys(user for tier in reached for user in tier.notify))
    which = "tier 1" if len(reached) == 1 else f"tiers 1-{len(reached)}"
    text = f"Declared at escalation level {state.escalation_level}: {which} notified at once"
    notice = post_notice(state, Notice.ESCALATED, CHANNEL, state.declared_by, text, targets)
    effects = escalation(state, policy, reached, notice, now)
    state.note(now, "escalated", state.declared_by, text)
    return effects

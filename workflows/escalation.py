"""Escalation: a tier's people paged and invited, by hand, by the deadline loop when nobody
acknowledged in time, or at once for an incident declared past its first tiers.

Pure functions over ``IncidentState``, like the rest of the lifecycle (``lifecycle.py``).
"""

from __future__ import annotations

from datetime import datetime

from workflows import commands as cmd
from workflows.deadlines import escalation_tier, refresh_deadlines, start_level
from workflows.effects import Effect, Invite, Notice, Page, PageAction, RefreshTopic
from workflows.models import IncidentState
from workflows.notices import CHANNEL, post_notice, require_open
from workflows.policy import EscalationTier, Policy


def check_escalate(state: IncidentState, policy: Policy, c: cmd.Escalate) -> None:
    require_open(state, "escalate it")


def apply_escalate(
    state: IncidentState, policy: Policy, c: cmd.Escalate, now: datetime, automatic: bool = False
) -> list[Effect]:
    check_escalate(state, policy, c)
    state.escalation_level += 1
    state.escalated_at = now
    tier = escalation_tier(policy.severity(state.severity), state.escalation_level)
    targets = tier.notify if tier else []
    why = "not acknowledged in time" if automatic else (c.reason or "escalated by hand")
    text = f"Escalated to level {state.escalation_level}: {why}"
    effects = notify_tiers(state, policy, [tier] if tier else [], now)
    effects.append(post_notice(state, Notice.ESCALATED, CHANNEL, c.by, text, targets))
    state.note(now, "escalated", c.by, text)
    refresh_deadlines(state, policy, now)
    return [*effects, RefreshTopic()]


def notify_tiers(
    state: IncidentState, policy: Policy, tiers: list[EscalationTier], now: datetime
) -> list[Effect]:
    """Page first (it wakes people), then invite, so the mention lands on channel members."""
    paging = [t for t in tiers if t.page]
    effects: list[Effect] = []
    if paging and state.drill and not policy.drill.page:
        state.note(now, "page-skipped", None, "Page skipped: this is a drill")
    elif paging:
        targets = list(dict.fromkeys(user for t in paging for user in t.notify))
        effects.append(Page(action=PageAction.TRIGGER, targets=targets))
        state.paged_at = state.paged_at or now
    invited = list(dict.fromkeys(user for t in tiers if t.invite for user in t.notify))
    if invited:
        effects.append(Invite(users=invited))
    return effects


def start_escalated(
    state: IncidentState, policy: Policy, tiers: int, now: datetime
) -> list[Effect]:
    """Declared past the first ``tiers`` tiers (an alert rule's ``escalation_level``): they
    hear at once, as if each had fired, and the next tier's timer counts from the declaration."""
    severity = policy.severity(state.severity)
    reached = severity.escalation[:tiers]
    if not reached:
        return []
    state.escalation_level = start_level(severity, tiers)
    state.escalated_at = now
    targets = list(dict.fromkeys(user for tier in reached for user in tier.notify))
    which = "tier 1" if len(reached) == 1 else f"tiers 1-{len(reached)}"
    text = f"Declared at escalation level {state.escalation_level}: {which} notified at once"
    effects = notify_tiers(state, policy, reached, now)
    effects.append(post_notice(state, Notice.ESCALATED, CHANNEL, state.declared_by, text, targets))
    state.note(now, "escalated", state.declared_by, text)
    return effects

"""The rules table: for each command, the pure check that may refuse it and the pure apply
that changes the state and returns the effects. The workflow's Updates look their command up
here, so a new command is one model (``commands.py``), one rule and one Update; the policy
preview runs the same functions.

Also pure: what a change brings with it wherever it came from (a command, a timer, an alert),
so the workflow applies every change the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from workflows import (
    alert_folding,
    bookmarks,
    escalation,
    followup,
    kickoff,
    lifecycle,
    public,
    timeline,
)
from workflows import commands as cmd
from workflows.effects import Effect, UpdateKickoff
from workflows.models import IncidentState
from workflows.policy import Policy

C = TypeVar("C", bound=cmd.Command)


@dataclass(frozen=True)
class Rule(Generic[C]):
    check: Callable[[IncidentState, Policy, C], None]  # raises CommandRefused
    apply: Callable[[IncidentState, Policy, C, datetime], list[Effect]]  # checks again first


RULES: dict[type[cmd.Command], Rule[Any]] = {
    cmd.Acknowledge: Rule(lifecycle.check_acknowledge, lifecycle.apply_acknowledge),
    cmd.SetStatus: Rule(lifecycle.check_set_status, lifecycle.apply_set_status),
    cmd.PostUpdate: Rule(lifecycle.check_post_update, lifecycle.apply_post_update),
    cmd.SetSeverity: Rule(lifecycle.check_set_severity, lifecycle.apply_set_severity),
    cmd.AssignRole: Rule(lifecycle.check_assign_role, lifecycle.apply_assign_role),
    cmd.AddResponders: Rule(lifecycle.check_add_responders, lifecycle.apply_add_responders),
    cmd.Escalate: Rule(escalation.check_escalate, escalation.apply_escalate),
    cmd.Resolve: Rule(lifecycle.check_resolve, lifecycle.apply_resolve),
    cmd.Reopen: Rule(lifecycle.check_reopen, lifecycle.apply_reopen),
    cmd.AddActionItem: Rule(timeline.check_add_action_item, timeline.apply_add_action_item),
    cmd.CompleteActionItem: Rule(
        timeline.check_complete_action_item, timeline.apply_complete_action_item
    ),
    cmd.AddTimelineEntry: Rule(
        timeline.check_add_timeline_entry, timeline.apply_add_timeline_entry
    ),
    cmd.PostPublicUpdate: Rule(public.check_post_public_update, public.apply_post_public_update),
    cmd.CompleteRetrospective: Rule(
        followup.check_complete_retrospective, followup.apply_complete_retrospective
    ),
    cmd.AssignActionItem: Rule(
        followup.check_assign_action_item, followup.apply_assign_action_item
    ),
    cmd.SetActionItemDue: Rule(
        followup.check_set_action_item_due, followup.apply_set_action_item_due
    ),
    cmd.DropActionItem: Rule(followup.check_drop_action_item, followup.apply_drop_action_item),
}


def rule(command: cmd.Command) -> Rule[Any]:
    return RULES[type(command)]


def on_alert(
    state: IncidentState, policy: Policy, signal: alert_folding.AlertSignal, now: datetime
) -> list[Effect]:
    """Alerts of the incident's group: folded, and links the channel lacks bookmarked."""
    effects = alert_folding.fold(state, policy, signal, now)
    links = bookmarks.alert_links(state, policy, signal.batch)
    return effects + (bookmarks.bookmark(state, links) if links else [])


def follow_on(
    state: IncidentState, policy: Policy, effects: list[Effect], now: datetime
) -> list[Effect]:
    """What any change brings with it: the kickoff shown as it is now, a public incident's
    resolution on the status page, and at resolution the report and the retrospective's slot."""
    if kickoff.changes_kickoff(effects):
        effects = [*effects, UpdateKickoff()]
    effects = [*effects, *public.follow_resolution(state, now)]
    if followup.newly_resolved(state):
        effects = followup.on_resolved(state, policy, effects)
    return effects

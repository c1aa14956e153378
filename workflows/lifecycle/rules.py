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

from workflows import statuspage
from workflows.alerts import folding
from workflows.effects import Effect, UpdateKickoff
from workflows.escalation import tiers
from workflows.lifecycle import commands as cmd
from workflows.lifecycle import states, timeline
from workflows.lifecycle.channel import alert_links, bookmark, changes_kickoff
from workflows.models import IncidentState
from workflows.policy import Policy
from workflows.resolution import followup

C = TypeVar("C", bound=cmd.Command)


@dataclass(frozen=True)
class Rule(Generic[C]):
    check: Callable[[IncidentState, Policy, C], None]  # raises CommandRefused
    apply: Callable[[IncidentState, Policy, C, datetime], list[Effect]]  # checks again first


RULES: dict[type[cmd.Command], Rule[Any]] = {
    cmd.Acknowledge: Rule(states.check_acknowledge, states.apply_acknowledge),
    cmd.SetStatus: Rule(states.check_set_status, states.apply_set_status),
    cmd.PostUpdate: Rule(states.check_post_update, states.apply_post_update),
    cmd.SetSeverity: Rule(states.check_set_severity, states.apply_set_severity),
    cmd.Rename: Rule(states.check_rename, states.apply_rename),
    cmd.AssignRole: Rule(states.check_assign_role, states.apply_assign_role),
    cmd.AddResponders: Rule(states.check_add_responders, states.apply_add_responders),
    cmd.Escalate: Rule(tiers.check_escalate, tiers.apply_escalate),
    cmd.Resolve: Rule(states.check_resolve, states.apply_resolve),
    cmd.Reopen: Rule(states.check_reopen, states.apply_reopen),
    cmd.AddActionItem: Rule(timeline.check_add_action_item, timeline.apply_add_action_item),
    cmd.CompleteActionItem: Rule(
        timeline.check_complete_action_item, timeline.apply_complete_action_item
    ),
    cmd.AddTimelineEntry: Rule(
        timeline.check_add_timeline_entry, timeline.apply_add_timeline_entry
    ),
    cmd.MarkMessage: Rule(timeline.check_mark_message, timeline.apply_mark_message),
    cmd.JoinChannel: Rule(timeline.check_join_channel, timeline.apply_join_channel),
    cmd.PostPublicUpdate: Rule(
        statuspage.check_post_public_update, statuspage.apply_post_public_update
    ),
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
    state: IncidentState, policy: Policy, signal: folding.AlertSignal, now: datetime
) -> list[Effect]:
    """Alerts of the incident's group: folded, and links the channel lacks bookmarked."""
    effects = folding.fold(state, policy, signal, now)
    links = alert_links(state, policy, signal.batch)
    return effects + (bookmark(state, links) if links else [])


def follow_on(
    state: IncidentState, policy: Policy, effects: list[Effect], now: datetime
) -> list[Effect]:
    """What any change brings with it: the kickoff shown as it is now, a public incident's
    resolution on the status page, and at resolution the report and the retrospective's slot."""
    if changes_kickoff(effects):
        effects = [*effects, UpdateKickoff()]
    effects = [*effects, *statuspage.follow_resolution(state, now)]
    if followup.newly_resolved(state):
        effects = followup.on_resolved(state, policy, effects)
    return effects

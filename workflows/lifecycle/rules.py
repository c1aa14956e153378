"""The rules table: for each command, the permission it needs, the pure check that may refuse
it and the pure apply that changes the state and returns the effects. The workflow's Updates
look their command up here, so a new command is one model (``commands.py``), one rule and one
Update; the policy preview runs the same functions.

Also pure: what a change brings with it wherever it came from (a command, a timer, an alert),
so the workflow applies every change the same way; and what a run starts from, ``IncidentInput``.
It is here, not beside the workflow class: the SDK's default sandbox imports the workflow's
module again for every instance, and a pydantic model defined there had its schema built
again (and a TypeAdapter of its own) for every replay.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ValidationInfo, ValidatorFunctionWrapHandler, WrapValidator
from pydantic_core import to_json

from workflows import statuspage
from workflows.alerts import folding
from workflows.effects import Effect, UpdateKickoff
from workflows.escalation import tiers
from workflows.incident_types import Action, holds
from workflows.lifecycle import commands as cmd
from workflows.lifecycle import states, timeline
from workflows.lifecycle.channel import alert_links, bookmark, changes_kickoff
from workflows.lifecycle.notices import CommandRefused, require_permission
from workflows.models import Declaration, IncidentState, Status
from workflows.policy import Policy
from workflows.resolution import followup

C = TypeVar("C", bound=cmd.Command)


def needs(action: Action) -> Callable[[cmd.Command], Action | None]:
    return lambda c: action


def open_to_all(c: cmd.Command) -> Action | None:
    return None


def resolving(c: cmd.SetStatus) -> Action | None:
    """`status resolved` resolves: it needs what resolving needs, or it would go round it."""
    return "resolve" if c.status is Status.RESOLVED else None


# A rule's wait skipped: here, not in ``automating``, which carries its steps through this table.
def check_skip_automation(state: IncidentState, policy: Policy, c: cmd.SkipAutomation) -> None:
    if not any(wait.id == str(c.wait) for wait in state.automations):
        waiting = ", ".join(f"#{w.id} ({w.rule})" for w in state.automations) or "none"
        raise CommandRefused(f"no automation #{c.wait} waits on {state.label}; waiting: {waiting}")


def apply_skip_automation(
    state: IncidentState, policy: Policy, c: cmd.SkipAutomation, now: datetime
) -> list[Effect]:
    check_skip_automation(state, policy, c)
    wait = next(wait for wait in state.automations if wait.id == str(c.wait))
    state.automations.remove(wait)
    who = f" by <@{c.by}>" if c.by else ""
    state.note(now, "automation", c.by, f"Automation '{wait.rule}' skipped{who}")
    return []


@dataclass(frozen=True)
class Rule(Generic[C]):
    check: Callable[[IncidentState, Policy, C], None]  # raises CommandRefused
    apply: Callable[[IncidentState, Policy, C, datetime], list[Effect]]  # checks again first
    # The policy's [permissions] entry the command needs, if any (see ``check``).
    permission: Callable[[C], Action | None] = open_to_all


RULES: dict[type[cmd.Command], Rule[Any]] = {
    cmd.Acknowledge: Rule(states.check_acknowledge, states.apply_acknowledge, needs("acknowledge")),
    cmd.SetStatus: Rule(states.check_set_status, states.apply_set_status, resolving),
    cmd.PostUpdate: Rule(states.check_post_update, states.apply_post_update),
    cmd.SetSeverity: Rule(states.check_set_severity, states.apply_set_severity, needs("severity")),
    cmd.Rename: Rule(states.check_rename, states.apply_rename),
    cmd.AssignRole: Rule(states.check_assign_role, states.apply_assign_role, needs("roles")),
    cmd.AddResponders: Rule(states.check_add_responders, states.apply_add_responders),
    cmd.Escalate: Rule(tiers.check_escalate, tiers.apply_escalate),
    cmd.Resolve: Rule(states.check_resolve, states.apply_resolve, needs("resolve")),
    cmd.Reopen: Rule(states.check_reopen, states.apply_reopen, needs("reopen")),
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
        statuspage.check_post_public_update,
        statuspage.apply_post_public_update,
        needs("public_update"),
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
    cmd.SkipAutomation: Rule(check_skip_automation, apply_skip_automation, needs("automations")),
}


def rule(command: cmd.Command) -> Rule[Any]:
    return RULES[type(command)]


def permission(command: cmd.Command) -> Action | None:
    return rule(command).permission(command)


def check(state: IncidentState, policy: Policy, c: cmd.Command) -> None:
    """The Update's validator: may who acts do this (``[permissions]``), then may the incident
    take it. ``c.by`` is the verified person (the API's token, Slack's signature) and
    ``c.answers_to`` what the desk found of them in Slack, so every entry point is checked
    here alike and no I/O is needed."""
    action = permission(c)
    if action is not None:
        found = holds(state, c.by)
        require_permission(policy.permissions, action, c.by, c.answers_to, found)
    rule(c).check(state, policy, c)


# Policies decoded from JSON in this process, by their JSON: every replay of an incident decodes
# its input again, and validating the policy (durations, templates, rules) was most of that. A
# policy is never changed in place (a drill's is a copy), so the same text may share one object.
# The key is the parsed value written back (a third of its repr's cost): JSON's values only, so
# as exact as the text (``1``, ``1.0`` and ``true`` stay apart).
DECODED: dict[bytes, Policy] = {}
KEPT_POLICIES = 16  # a worker meets few policies; past that, the cache starts over


def decoded(value: Any, validate: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Policy:
    if info.mode != "json" or not isinstance(value, dict):  # a Policy (the desk), or refused
        return validate(value)  # type: ignore[no-any-return]
    text = to_json(value)
    policy = DECODED.get(text)
    if policy is None:
        policy = validate(value)
        if len(DECODED) >= KEPT_POLICIES:
            DECODED.clear()  # one call: other workflow threads may read meanwhile
        DECODED[text] = policy
    return policy


class IncidentInput(BaseModel):
    """The declaration on first start; the whole state and outbox on continue-as-new."""

    number: int
    policy: Annotated[Policy, WrapValidator(decoded)]
    declaration: Declaration | None = None
    state: IncidentState | None = None
    outbox: list[Effect] = []
    opened: bool = False
    recorded: bool = False  # the archive database has the state as carried

    def first_state(self, incident_id: str, now: datetime) -> tuple[IncidentState, list[Effect]]:
        """The state and outbox this run starts with: as declared (``states.start``), or as
        carried over. Pure, so the desk answers it before any worker has run the workflow."""
        if self.state is not None:
            return self.state, list(self.outbox)
        assert self.declaration is not None, "a new incident needs its declaration"
        return states.start(self.number, incident_id, self.declaration, self.policy, now)


def carry_out(state: IncidentState, policy: Policy, c: cmd.Command, now: datetime) -> list[Effect]:
    """The command applied; the timeline entries it wrote name the API token it came through
    and where it came in."""
    before = {id(entry) for entry in state.timeline}
    effects = rule(c).apply(state, policy, c, now)
    if c.via or c.source:
        for entry in state.timeline:
            if id(entry) not in before:
                entry.via, entry.source = c.via, c.source
    return effects


def on_alert(
    state: IncidentState, policy: Policy, signal: folding.AlertSignal, now: datetime
) -> list[Effect]:
    """Alerts of the incident's group: folded, and links the channel lacks bookmarked; what
    they wrote on the timeline came in from their source."""
    before = {id(entry) for entry in state.timeline}
    effects = folding.fold(state, policy, signal, now)
    for entry in state.timeline:
        if id(entry) not in before:
            entry.source = f"alert:{signal.batch.source}"
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

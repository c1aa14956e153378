"""What people (and alerts) ask of an incident: one Update per command, each with a
validator, and the ``alert`` signal. A base class of IncidentWorkflow, so incident.py stays
the loop and its side effects.

A validator refuses a command before anything reaches history (the caller gets the reason);
the handler applies it through ``_apply``, which queues the effects and returns the snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows import alert_folding, bookmarks, lifecycle, public, timeline, update_ids
    from workflows import commands as cmd
    from workflows.effects import Effect
    from workflows.models import IncidentState
    from workflows.patching import Patches
    from workflows.policy import Policy

C = TypeVar("C", bound=cmd.Command)
# patch: links that later notifications of the group bring are bookmarked in the channel
ALERT_LINKS_BOOKMARKED = "alert-links-bookmarked"


class IncidentCommands:
    state: IncidentState
    policy: Policy
    patched: Patches  # workflow.patched, or yes for every patch in a lean run

    if TYPE_CHECKING:

        def _apply(
            self, apply: Callable[[IncidentState, Policy, C, datetime], list[Effect]], command: C
        ) -> IncidentState: ...

        def _changed(self, effects: list[Effect]) -> None: ...

    @workflow.signal
    def alert(self, signal: alert_folding.AlertSignal) -> None:
        """Alerts of the incident's group: a signal, since monitoring waits for nobody."""
        effects = alert_folding.fold(self.state, self.policy, signal, workflow.now())
        links = bookmarks.alert_links(self.state, self.policy, signal.batch)
        if links and self.patched(ALERT_LINKS_BOOKMARKED):
            effects += bookmarks.bookmark(self.state, links)
        self._changed(effects)

    @workflow.update
    def acknowledge(self, c: cmd.Acknowledge) -> IncidentState:
        return self._apply(lifecycle.apply_acknowledge, c)

    @acknowledge.validator
    def _acknowledge_allowed(self, c: cmd.Acknowledge) -> None:
        if not update_ids.repeated(self.state):
            lifecycle.check_acknowledge(self.state, self.policy, c)

    @workflow.update
    def set_status(self, c: cmd.SetStatus) -> IncidentState:
        return self._apply(lifecycle.apply_set_status, c)

    @set_status.validator
    def _set_status_allowed(self, c: cmd.SetStatus) -> None:
        if not update_ids.repeated(self.state):
            lifecycle.check_set_status(self.state, self.policy, c)

    @workflow.update
    def post_update(self, c: cmd.PostUpdate) -> IncidentState:
        return self._apply(lifecycle.apply_post_update, c)

    @post_update.validator
    def _post_update_allowed(self, c: cmd.PostUpdate) -> None:
        if not update_ids.repeated(self.state):
            lifecycle.check_post_update(self.state, self.policy, c)

    @workflow.update
    def set_severity(self, c: cmd.SetSeverity) -> IncidentState:
        return self._apply(lifecycle.apply_set_severity, c)

    @set_severity.validator
    def _set_severity_allowed(self, c: cmd.SetSeverity) -> None:
        if not update_ids.repeated(self.state):
            lifecycle.check_set_severity(self.state, self.policy, c)

    @workflow.update
    def assign_role(self, c: cmd.AssignRole) -> IncidentState:
        return self._apply(lifecycle.apply_assign_role, c)

    @assign_role.validator
    def _assign_role_allowed(self, c: cmd.AssignRole) -> None:
        if not update_ids.repeated(self.state):
            lifecycle.check_assign_role(self.state, self.policy, c)

    @workflow.update
    def add_responders(self, c: cmd.AddResponders) -> IncidentState:
        return self._apply(lifecycle.apply_add_responders, c)

    @add_responders.validator
    def _add_responders_allowed(self, c: cmd.AddResponders) -> None:
        if not update_ids.repeated(self.state):
            lifecycle.check_add_responders(self.state, self.policy, c)

    @workflow.update
    def escalate(self, c: cmd.Escalate) -> IncidentState:
        return self._apply(lifecycle.apply_escalate, c)

    @escalate.validator
    def _escalate_allowed(self, c: cmd.Escalate) -> None:
        if not update_ids.repeated(self.state):
            lifecycle.check_escalate(self.state, self.policy, c)

    @workflow.update
    def resolve(self, c: cmd.Resolve) -> IncidentState:
        return self._apply(lifecycle.apply_resolve, c)

    @resolve.validator
    def _resolve_allowed(self, c: cmd.Resolve) -> None:
        if not update_ids.repeated(self.state):
            lifecycle.check_resolve(self.state, self.policy, c)

    @workflow.update
    def reopen(self, c: cmd.Reopen) -> IncidentState:
        return self._apply(lifecycle.apply_reopen, c)

    @reopen.validator
    def _reopen_allowed(self, c: cmd.Reopen) -> None:
        if not update_ids.repeated(self.state):
            lifecycle.check_reopen(self.state, self.policy, c)

    @workflow.update
    def add_action_item(self, c: cmd.AddActionItem) -> IncidentState:
        return self._apply(lifecycle.apply_add_action_item, c)

    @add_action_item.validator
    def _add_action_item_allowed(self, c: cmd.AddActionItem) -> None:
        if not update_ids.repeated(self.state):
            lifecycle.check_add_action_item(self.state, self.policy, c)

    @workflow.update
    def complete_action_item(self, c: cmd.CompleteActionItem) -> IncidentState:
        return self._apply(lifecycle.apply_complete_action_item, c)

    @complete_action_item.validator
    def _complete_action_item_allowed(self, c: cmd.CompleteActionItem) -> None:
        if not update_ids.repeated(self.state):
            lifecycle.check_complete_action_item(self.state, self.policy, c)

    @workflow.update
    def add_timeline_entry(self, c: cmd.AddTimelineEntry) -> IncidentState:
        return self._apply(timeline.apply_add_timeline_entry, c)

    @add_timeline_entry.validator
    def _add_timeline_entry_allowed(self, c: cmd.AddTimelineEntry) -> None:
        if not update_ids.repeated(self.state):
            timeline.check_add_timeline_entry(self.state, self.policy, c)

    @workflow.update
    def post_public_update(self, c: cmd.PostPublicUpdate) -> IncidentState:
        return self._apply(public.apply_post_public_update, c)

    @post_public_update.validator
    def _post_public_update_allowed(self, c: cmd.PostPublicUpdate) -> None:
        if not update_ids.repeated(self.state):
            public.check_post_public_update(self.state, self.policy, c)

"""IncidentWorkflow: one durable workflow per incident, from declaration to archived channel.

Each command is an Update whose validator and handler hand it to the rules table
(``workflows/lifecycle/rules.py``); the effects go to the ``EffectRunner`` this workflow holds.
The run method is one loop: drain the outbox, continue as new when Temporal suggests it,
sleep until the earliest deadline or the next change. A run finishes on the build it started
on; a new run starts on the current build (Worker Versioning), so ``IncidentInput`` is the
contract between builds.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import NoReturn

from pydantic import BaseModel
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.alerts.folding import AlertSignal
    from workflows.effects import Effect
    from workflows.escalation.deadlines import followup_deadlines
    from workflows.escalation.tiers import fire
    from workflows.lifecycle import commands as cmd
    from workflows.lifecycle import idempotency, rules, states
    from workflows.lifecycle.effect_runner import EffectRunner
    from workflows.lifecycle.visibility import MEMO_KEY, memo_of, publish
    from workflows.models import Declaration, IncidentState
    from workflows.policy import Policy
    from workflows.resolution import followup


class IncidentInput(BaseModel):
    """The declaration on first start; the whole state and outbox on continue-as-new."""

    number: int
    policy: Policy
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


@workflow.defn
class IncidentWorkflow:
    @workflow.init
    def __init__(self, input: IncidentInput) -> None:
        self.policy = input.policy
        # Only a run that opened the incident may start afresh once it is settled.
        self.fresh_start = input.state is None
        self.state, outbox = input.first_state(workflow.info().workflow_id, workflow.now())
        self.changes = 0
        self.effects = EffectRunner(
            self.state, self.policy, outbox, input.opened, input.recorded, self._wake
        )

    @workflow.run
    async def run(self, input: IncidentInput) -> IncidentState:
        publish(self.state, self.policy)
        if not self.effects.opened:
            await self.effects.open()
        if self.effects.recorded is None:
            self._changed([])  # the archive hears of a new (or continued) incident
        while True:
            await self.effects.drain()
            if followup.is_finished(self.state) and not self.effects.archiving:
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not self.effects.outbox:
                    return self.state
                continue
            if self.fresh_start and self.policy.history.continue_as_new_once_open:
                # Open, announced, recorded: it waits now, often for hours, and a worker without
                # it in cache replays a few events instead of the opening's dozens.
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not self.effects.outbox and not self.effects.archiving:
                    self._continue_as_new(recorded=True)
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not self.effects.outbox:
                    self._continue_as_new()
            await self._sleep_until_due()

    async def _sleep_until_due(self) -> None:
        seen = self.changes
        due = [*followup_deadlines(self.state, self.policy).values(), *self.effects.retry_at()]
        timeout = max(min(due) - workflow.now(), timedelta(0)) if due else None
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: bool(self.effects.outbox) or self.changes != seen,
                timeout=timeout,
                timeout_summary="next incident deadline",
            )
        self.effects.again()
        self._fire_due()

    def _fire_due(self) -> None:
        now = workflow.now()
        for name, at in followup_deadlines(self.state, self.policy).items():
            if at <= now:
                self._changed(fire(self.state, self.policy, name, now))

    def _continue_as_new(self, recorded: bool = False) -> NoReturn:
        carried = IncidentInput(
            number=self.state.number,
            policy=self.policy,
            state=self.state,
            outbox=[*self.effects.later, *self.effects.outbox],
            opened=self.effects.opened,
            recorded=recorded,
        )
        # The list view rides along, so the new run has no memo to write again; the new run
        # starts on the deployment's current build, which may be newer than this one.
        workflow.continue_as_new(
            carried,
            memo={MEMO_KEY: memo_of(self.state)},
            initial_versioning_behavior=workflow.ContinueAsNewVersioningBehavior.AUTO_UPGRADE,
        )

    def _check(self, command: cmd.Command) -> None:
        if not idempotency.repeated(self.state):  # a repeat is answered, not checked again
            rules.rule(command).check(self.state, self.policy, command)

    def _apply(self, command: cmd.Command) -> IncidentState:
        if idempotency.repeated(self.state):
            return self.state  # applied in an earlier run: answered, not applied twice
        # A worker that was down may get a fired timer and a later command in one activation,
        # handler first: a tier due before an acknowledgement must still notify.
        self._fire_due()
        self._changed(rules.rule(command).apply(self.state, self.policy, command, workflow.now()))
        idempotency.remember(self.state)
        return self.state

    def _changed(self, effects: list[Effect]) -> None:
        self.effects.queue(rules.follow_on(self.state, self.policy, effects, workflow.now()))
        self.changes += 1
        publish(self.state, self.policy)

    def _wake(self) -> None:
        self.changes += 1

    @workflow.query
    def snapshot(self) -> IncidentState:
        return self.state

    @workflow.update
    async def opening(self) -> IncidentState:
        """Until the incident is announced; the caller bounds its wait (no timer spent here)."""
        await workflow.wait_condition(lambda: self.effects.opened)
        return self.state

    @workflow.signal
    def alert(self, signal: AlertSignal) -> None:
        """Alerts of the incident's group: a signal, since monitoring waits for nobody."""
        self._changed(rules.on_alert(self.state, self.policy, signal, workflow.now()))

    @workflow.update
    def acknowledge(self, c: cmd.Acknowledge) -> IncidentState:
        return self._apply(c)

    @acknowledge.validator
    def _acknowledge_allowed(self, c: cmd.Acknowledge) -> None:
        self._check(c)

    @workflow.update
    def set_status(self, c: cmd.SetStatus) -> IncidentState:
        return self._apply(c)

    @set_status.validator
    def _set_status_allowed(self, c: cmd.SetStatus) -> None:
        self._check(c)

    @workflow.update
    def post_update(self, c: cmd.PostUpdate) -> IncidentState:
        return self._apply(c)

    @post_update.validator
    def _post_update_allowed(self, c: cmd.PostUpdate) -> None:
        self._check(c)

    @workflow.update
    def set_severity(self, c: cmd.SetSeverity) -> IncidentState:
        return self._apply(c)

    @set_severity.validator
    def _set_severity_allowed(self, c: cmd.SetSeverity) -> None:
        self._check(c)

    @workflow.update
    def rename(self, c: cmd.Rename) -> IncidentState:
        return self._apply(c)

    @rename.validator
    def _rename_allowed(self, c: cmd.Rename) -> None:
        self._check(c)

    @workflow.update
    def assign_role(self, c: cmd.AssignRole) -> IncidentState:
        return self._apply(c)

    @assign_role.validator
    def _assign_role_allowed(self, c: cmd.AssignRole) -> None:
        self._check(c)

    @workflow.update
    def add_responders(self, c: cmd.AddResponders) -> IncidentState:
        return self._apply(c)

    @add_responders.validator
    def _add_responders_allowed(self, c: cmd.AddResponders) -> None:
        self._check(c)

    @workflow.update
    def escalate(self, c: cmd.Escalate) -> IncidentState:
        return self._apply(c)

    @escalate.validator
    def _escalate_allowed(self, c: cmd.Escalate) -> None:
        self._check(c)

    @workflow.update
    def resolve(self, c: cmd.Resolve) -> IncidentState:
        return self._apply(c)

    @resolve.validator
    def _resolve_allowed(self, c: cmd.Resolve) -> None:
        self._check(c)

    @workflow.update
    def reopen(self, c: cmd.Reopen) -> IncidentState:
        return self._apply(c)

    @reopen.validator
    def _reopen_allowed(self, c: cmd.Reopen) -> None:
        self._check(c)

    @workflow.update
    def add_action_item(self, c: cmd.AddActionItem) -> IncidentState:
        return self._apply(c)

    @add_action_item.validator
    def _add_action_item_allowed(self, c: cmd.AddActionItem) -> None:
        self._check(c)

    @workflow.update
    def complete_action_item(self, c: cmd.CompleteActionItem) -> IncidentState:
        return self._apply(c)

    @complete_action_item.validator
    def _complete_action_item_allowed(self, c: cmd.CompleteActionItem) -> None:
        self._check(c)

    @workflow.update
    def add_timeline_entry(self, c: cmd.AddTimelineEntry) -> IncidentState:
        return self._apply(c)

    @add_timeline_entry.validator
    def _add_timeline_entry_allowed(self, c: cmd.AddTimelineEntry) -> None:
        self._check(c)

    @workflow.update
    def post_public_update(self, c: cmd.PostPublicUpdate) -> IncidentState:
        return self._apply(c)

    @post_public_update.validator
    def _post_public_update_allowed(self, c: cmd.PostPublicUpdate) -> None:
        self._check(c)

    @workflow.update
    def complete_retrospective(self, c: cmd.CompleteRetrospective) -> IncidentState:
        return self._apply(c)

    @complete_retrospective.validator
    def _complete_retrospective_allowed(self, c: cmd.CompleteRetrospective) -> None:
        self._check(c)

    @workflow.update
    def assign_action_item(self, c: cmd.AssignActionItem) -> IncidentState:
        return self._apply(c)

    @assign_action_item.validator
    def _assign_action_item_allowed(self, c: cmd.AssignActionItem) -> None:
        self._check(c)

    @workflow.update
    def set_action_item_due(self, c: cmd.SetActionItemDue) -> IncidentState:
        return self._apply(c)

    @set_action_item_due.validator
    def _set_action_item_due_allowed(self, c: cmd.SetActionItemDue) -> None:
        self._check(c)

    @workflow.update
    def drop_action_item(self, c: cmd.DropActionItem) -> IncidentState:
        return self._apply(c)

    @drop_action_item.validator
    def _drop_action_item_allowed(self, c: cmd.DropActionItem) -> None:
        self._check(c)

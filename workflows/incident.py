"""IncidentWorkflow: one durable workflow per incident, from declaration to archived channel.

Each command is an Update whose validator and handler hand it to the rules table
(``workflows/lifecycle/rules.py``); the effects go to the ``EffectRunner`` this workflow holds.
The run method is one loop: drain the outbox, continue as new when Temporal suggests it,
sleep until the earliest deadline or the next change. A run finishes on the build it started
on; a new run starts on the current build (Worker Versioning), so ``IncidentInput`` is the
contract between builds. IncidentDigest, the small workflow the digest schedule starts,
ends the module.
"""

from __future__ import annotations

import contextlib
import re
from datetime import datetime, timedelta
from typing import NoReturn, TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.services import ArchiveActivities, MetricsQuery
    from workflows.alerts.folding import AlertSignal
    from workflows.effects import Effect
    from workflows.escalation.deadlines import Deadline, followup_deadlines
    from workflows.lifecycle import automating, rules
    from workflows.lifecycle import commands as cmd
    from workflows.lifecycle.effect_runner import EffectRunner
    from workflows.lifecycle.rules import IncidentInput as IncidentInput
    from workflows.lifecycle.visibility import (
        MEMO_KEY,
        Shown,
        memo_of,
        remember,
        repeated,
        sent_once,
    )
    from workflows.models import IncidentState
    from workflows.resolution import followup
    from workflows.resolution.metrics import IncidentMetrics


C = TypeVar("C", bound=cmd.Command)


def command(kind: type[C]) -> workflow.UpdateMethodMultiParam[[IncidentWorkflow, C], IncidentState]:
    """The Update for one command model, named after it (``SetStatus``: ``set_status``)."""

    def apply(self: IncidentWorkflow, c: C) -> IncidentState:
        return self._apply(c)

    def check(self: IncidentWorkflow, c: C) -> None:
        self._check(c)

    # Real types, not the TypeVar: the SDK decodes the argument by them and requires the
    # validator's parameters to be the handler's.
    apply.__annotations__ = {"c": kind, "return": IncidentState}
    check.__annotations__ = {"c": kind, "return": None}
    name = re.sub(r"(?<!^)(?=[A-Z])", "_", kind.__name__).lower()
    apply.__name__, check.__name__ = name, f"_{name}_allowed"
    update = workflow.update(name=name)(apply)
    update.validator(check)
    return update


@workflow.defn
class IncidentWorkflow:
    @workflow.init
    def __init__(self, input: IncidentInput) -> None:
        self.policy = input.policy
        # Only a run that opened the incident may start afresh once it is settled.
        self.fresh_start = input.state is None
        self.state, outbox = input.first_state(workflow.info().workflow_id, workflow.now())
        shown = Shown(self.state if self.fresh_start else None)  # before any rule changes it
        self.changes = 0
        # The state the policy's automations tell the next change's events from; none before
        # a new incident's first, so its rules hear ``declared``.
        self.moment = None if self.fresh_start else automating.moment(self.state)
        outbox += self._automate() if self.fresh_start else []
        self.effects = EffectRunner(
            self.state, self.policy, outbox, input.opened, input.recorded, self._wake, shown
        )

    @workflow.run
    async def run(self, input: IncidentInput) -> IncidentState:
        self.effects.shown.publish(self.state)
        if not self.effects.opened:
            await self.effects.open()
            if self.policy.automations:  # the roles its type filled as it opened
                self.effects.queue(self._automate())
        if self.effects.recorded is None:
            self._changed([])  # the archive hears of a new (or continued) incident
        while True:
            await self.effects.drain()
            if followup.is_finished(self.state) and not any(self.effects.aside.values()):
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not self.effects.outbox:
                    return sent_once(lambda: self.state)
                continue
            if self.fresh_start and self.policy.history.continue_as_new_once_open:
                # Open, announced, recorded: it waits now, often for hours, and a worker without
                # it in cache replays a few events instead of the opening's dozens.
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not self.effects.outbox and not any(self.effects.aside.values()):
                    self._continue_as_new(recorded=True)
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not self.effects.outbox:
                    self._continue_as_new()
            await self._sleep_until_due()

    async def _sleep_until_due(self) -> None:
        seen = self.changes
        deadlines = followup_deadlines(self.state, self.policy)
        due = [*deadlines.values(), *self.effects.retry_at()]
        timeout = max(min(due) - workflow.now(), timedelta(0)) if due else None
        # A summary only for a rule's wait (the Web UI names the rule): the current details say
        # when the next update is due, and each summary costs every replay one more payload.
        waiting = due and min(due) == deadlines.get(Deadline.AUTOMATION)
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: bool(self.effects.outbox) or self.changes != seen,
                timeout=timeout,
                timeout_summary=_waiting(self.state) if waiting else None,
            )
        self.effects.again()
        # Only a change (a command, an alert, a woken loop) moves a deadline: the background
        # lanes that may still run meanwhile (archive, topic) write none of what they count from.
        self._fire_due(deadlines if self.changes == seen else None)

    def _fire_due(self, deadlines: dict[Deadline, datetime] | None = None) -> None:
        now = workflow.now()
        for name, at in (deadlines or followup_deadlines(self.state, self.policy)).items():
            if at <= now:
                effects = automating.fire(self.state, self.policy, name, now)
                if name is Deadline.AUTOMATION:  # a rule's steps trigger no rule, as at once
                    self.moment = automating.moment(self.state)
                self._changed(effects)

    def _continue_as_new(self, recorded: bool = False) -> NoReturn:
        # What was still running in the background runs again (each is idempotent).
        background = [effect for steps in self.effects.aside.values() for effect, _ in steps]
        carried = IncidentInput(
            number=self.state.number,
            policy=self.policy,
            state=self.state,
            outbox=[*self.effects.later, *self.effects.outbox, *background],
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
        if not repeated(self.state):  # a repeat is answered, not checked again
            rules.check(self.state, self.policy, command)

    def _apply(self, command: cmd.Command) -> IncidentState:
        if repeated(self.state):
            return sent_once(lambda: self.state)  # applied in an earlier run: not twice
        # A worker that was down may get a fired timer and a later command in one activation,
        # handler first: a tier due before an acknowledgement must still notify.
        self._fire_due()
        self._changed(rules.carry_out(self.state, self.policy, command, workflow.now()))
        remember(self.state)
        return sent_once(lambda: self.state)

    def _changed(self, effects: list[Effect]) -> None:
        effects = [*effects, *self._automate()]
        self.effects.queue(rules.follow_on(self.state, self.policy, effects, workflow.now()))
        self.changes += 1
        self.effects.shown.publish(self.state)

    def _automate(self) -> list[Effect]:
        """The policy's rules this change triggers (none without rules: nothing is read)."""
        if not self.policy.automations:
            return []
        now = workflow.now()
        effects, self.moment = automating.automate(self.state, self.policy, self.moment, now)
        return effects

    def _wake(self) -> None:
        self.changes += 1

    @workflow.query
    def snapshot(self) -> IncidentState:
        return self.state

    @workflow.update
    async def opening(self) -> IncidentState:
        """Until the incident is announced; the caller bounds its wait (no timer spent here)."""
        await workflow.wait_condition(lambda: self.effects.opened)
        return sent_once(lambda: self.state)

    @workflow.signal
    def alert(self, signal: AlertSignal) -> None:
        """Alerts of the incident's group: a signal, since monitoring waits for nobody."""
        self._changed(rules.on_alert(self.state, self.policy, signal, workflow.now()))

    # The commands: each an Update named after its model, checked in the validator by its
    # rule's permission and check (a refusal writes nothing), applied by its apply
    # (``rules.RULES``).
    acknowledge = command(cmd.Acknowledge)
    set_status = command(cmd.SetStatus)
    post_update = command(cmd.PostUpdate)
    set_severity = command(cmd.SetSeverity)
    rename = command(cmd.Rename)
    assign_role = command(cmd.AssignRole)
    add_responders = command(cmd.AddResponders)
    escalate = command(cmd.Escalate)
    resolve = command(cmd.Resolve)
    reopen = command(cmd.Reopen)
    add_action_item = command(cmd.AddActionItem)
    complete_action_item = command(cmd.CompleteActionItem)
    add_timeline_entry = command(cmd.AddTimelineEntry)
    post_public_update = command(cmd.PostPublicUpdate)
    complete_retrospective = command(cmd.CompleteRetrospective)
    assign_action_item = command(cmd.AssignActionItem)
    set_action_item_due = command(cmd.SetActionItemDue)
    drop_action_item = command(cmd.DropActionItem)
    skip_automation = command(cmd.SkipAutomation)
    mark_message = command(cmd.MarkMessage)
    join_channel = command(cmd.JoinChannel)


def _waiting(state: IncidentState) -> str:
    """The Web UI's summary of the loop's timer while a rule's wait is the next deadline."""
    first = min(state.automations, key=lambda wait: wait.due_at)
    return f"automation '{first.rule}' (#{first.id})"


# -- the digest: a small workflow a Temporal Schedule starts (weekly by default) -------------
#
# It reads the archive's figures for the period since the previous digest and posts them in
# the broadcast channel. The schedule, not cron, keeps the cadence (see config/deployment.py).

DIGEST_SCHEDULE_ID = "incident-digest"
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))


class DigestInput(BaseModel):
    period_seconds: float


@workflow.defn
class IncidentDigest:
    @workflow.run
    async def run(self, input: DigestInput) -> IncidentMetrics:
        since = workflow.now() - timedelta(seconds=input.period_seconds)
        metrics = await workflow.execute_activity_method(
            ArchiveActivities.incident_metrics,
            MetricsQuery(since=since),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RETRY,
        )
        await workflow.execute_activity_method(
            ArchiveActivities.post_digest,
            metrics,
            start_to_close_timeout=timedelta(seconds=30),
            schedule_to_close_timeout=timedelta(minutes=10),
            retry_policy=RETRY,
        )
        return metrics

"""How an incident takes its number and its key without a singleton, and the practice run an
automation schedules, which takes its number the same way when it is due.

The workflow id ``incident-N`` is the reservation of N: Temporal refuses a second execution
with that id, so a start either takes N or fails and the next number is tried.

IncidentKeyClaim: one tiny workflow per idempotency key, holding the key for one incident.
Starting ``incident-key-<hash>`` is an atomic "this key is mine": declarations with different
keys never meet, and the claim's memo says which incident holds the key. The claim ends when
its incident resolves (a ``release`` signal); the desk also ends a claim whose incident is
resolved or gone, so releasing a key never needs a worker.

DrillTimer: an automation's ``drill`` step. A child of the incident that abandons it, so the
incident may close (and archive) long before; it sleeps until the drill is due, then declares
it as the intake would. Cancelling it in the Web UI cancels the drill.
"""

from __future__ import annotations

import contextlib
import hashlib
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import ValidationError
from temporalio import workflow
from temporalio.common import RetryPolicy, VersioningBehavior, WorkflowIDReusePolicy
from temporalio.exceptions import FailureError, WorkflowAlreadyStartedError

from workflows.automations import DrillStep
from workflows.effects import ScheduleDrill
from workflows.lifecycle.notices import CommandRefused
from workflows.lifecycle.rules import IncidentInput
from workflows.lifecycle.visibility import INCIDENT_NUMBER, incidents_where, shown_at_start, where
from workflows.models import Declaration, IncidentState
from workflows.policy import Policy, compress
from workflows.requests import DrillPlan
from workflows.text import incident_id

if TYPE_CHECKING:
    from temporalio.client import Client

GUESS_PAGE = 20


async def highest_number(client: Client) -> int:
    """The highest incident number Temporal knows (the intake's, and a drill's when due): never
    called from a workflow, which asks an activity for it."""
    floor = await _latest_started(client)
    if not await _any_above(client, floor):
        return floor
    low, high = floor, max(floor * 2, 16)
    while await _any_above(client, high):
        low, high = high, high * 2
    while high - low > 1:  # invariant: some number above low, none above high
        middle = (low + high) // 2
        if await _any_above(client, middle):
            low = middle
        else:
            high = middle
    return high


async def _latest_started(client: Client) -> int:
    """A first guess: visibility lists the latest started first, usually the highest."""
    executions = client.list_workflows(incidents_where(), page_size=GUESS_PAGE)
    await executions.fetch_next_page()
    page = executions.current_page or []
    return max((e.typed_search_attributes.get(INCIDENT_NUMBER) or 0 for e in page), default=0)


async def _any_above(client: Client, number: int) -> bool:
    count = await client.count_workflows(incidents_where(where(INCIDENT_NUMBER, ">", number)))
    return count.count > 0


# -- the practice run an automation schedules --------------------------------------------------


def schedule(
    state: IncidentState, policy: Policy, rule: str, step: DrillStep, fields: dict[str, str],
    now: datetime,
) -> ScheduleDrill:  # fmt: skip
    """The drill as it will be declared: the incident's kind of trouble, on the policy's
    compressed clock; a private incident's practice run is private too."""
    try:
        declaration = Declaration(
            title=step.title.format_map(fields)[:200], severity=step.severity or state.severity,
            summary=f"A practice run of {state.label}, scheduled by automation '{rule}'.",
            impact=state.impact, components=state.components, type=state.type,
            commander=step.commander or state.roles.commander, private=state.private,
            drill=True, source="automation",
        )  # fmt: skip
    except ValidationError as error:  # a title the incident's fields made empty, say
        raise CommandRefused(f"the drill cannot be declared: {error.errors()[0]['msg']}") from None
    state.notices_posted += 1  # numbers the timer, so a second run of the rule has its own
    plan = DrillPlan(
        id=f"{state.id}-drill-{state.notices_posted}", rule=rule, origin=state.label,
        due_at=now + step.after, declaration=declaration,
        policy=compress(policy, policy.drill.time_factor),
    )  # fmt: skip
    return ScheduleDrill(plan=plan)


async def schedule_drill(plan: DrillPlan) -> None:
    """From the incident's workflow: the timer starts once (a continue-as-new may ask again);
    a private incident's names nothing in the Web UI, as the incident's own summary."""
    shown = f"Drill of {plan.origin}: {plan.declaration.title}"
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await workflow.start_child_workflow(
            DrillTimer.run,
            plan,
            id=plan.id,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            static_summary=None if plan.declaration.private else shown,
        )


@workflow.defn(versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class DrillTimer:
    @workflow.run
    async def run(self, plan: DrillPlan) -> str:
        """Sleeps until due, then takes the next number as the intake does: the drill's id."""
        what = f"the drill automation '{plan.rule}' scheduled in {plan.origin}"
        await workflow.sleep(max(plan.due_at - workflow.now(), timedelta(0)), summary=what)
        number = await workflow.execute_activity(
            "incident_highest_number",  # by name: its class imports this module
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)),
            result_type=int,
        )
        declaration = plan.declaration.model_copy(update={"accepted_at": workflow.now()})
        while True:
            number += 1
            started = IncidentInput(number=number, policy=plan.policy, declaration=declaration)
            state, _ = started.first_state(incident_id(number), workflow.now())
            try:
                await workflow.start_child_workflow(
                    "IncidentWorkflow",
                    started,
                    id=state.id,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                    **shown_at_start(state),
                )
            except WorkflowAlreadyStartedError:
                continue  # declared meanwhile by someone else: the next number
            return state.id


# -- the claim on an idempotency key --------------------------------------------------------

CLAIM_PREFIX = "incident-key-"
MEMO_NUMBER = "number"


def claim_id(idempotency_key: str) -> str:
    """Keys are free text up to 200 characters; the id is a fixed-length digest of the key."""
    return CLAIM_PREFIX + hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]


# A claim's code is the same in every build, so it moves to the current build at its next task
# instead of holding an old build up (an incident, pinned, finishes where it started).
@workflow.defn(versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class IncidentKeyClaim:
    """Waits, costing nothing but a row, until the incident holding the key releases it."""

    @workflow.init
    def __init__(self, number: int) -> None:
        self.number = number
        self.released = False

    @workflow.run
    async def run(self, number: int) -> None:
        await workflow.wait_condition(lambda: self.released)

    @workflow.signal
    def release(self, number: int) -> None:
        # A late release from an older incident must not free a newer incident's claim.
        if number == self.number:
            self.released = True


async def release_key(idempotency_key: str | None, number: int) -> None:
    """From the incident workflow, once resolved: the key may declare a new incident."""
    if idempotency_key is None:  # (a ``ReleaseKey`` is queued only for an incident with one)
        return
    claim = workflow.get_external_workflow_handle(claim_id(idempotency_key))
    # The desk may have ended a stale claim already: nothing is left to release then.
    with contextlib.suppress(FailureError):
        await claim.signal(IncidentKeyClaim.release, number)

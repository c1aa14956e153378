"""Taking a declaration: an incident number and, with a key, the key, without a singleton.

The workflow id ``incident-N`` is the reservation (``workflows.lifecycle.numbering``): Temporal
lets one execution have that id (a conflict policy of FAIL and a reuse policy of
REJECT_DUPLICATE), so a start either takes N or raises ``WorkflowAlreadyStartedError`` and the
next number is tried. Each API process keeps a hint of the next free number, read from
visibility once, so several processes step past each other instead of queueing behind one
workflow's Update limit. A key is claimed the same way, by starting ``incident-key-<hash>``
(``IncidentKeyClaim``). The start is durable the moment Temporal answers, worker or not; a
caller that waits for the channel starts and opens in one call (``Intake._start_opening``).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowHandle,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from starter.reading import started_with
from workflows.incident import IncidentInput, IncidentWorkflow
from workflows.lifecycle.numbering import MEMO_NUMBER, IncidentKeyClaim, claim_id, highest_number
from workflows.lifecycle.visibility import INCIDENT_STATUS, MEMO_KEY, shown_at_start
from workflows.models import Declaration, IncidentState, Status
from workflows.policy import Policy, compress
from workflows.text import incident_id, incident_label

# Temporal refuses payloads over 2 MB (the start input is the declaration and the policy); a
# declaration far below that is already absurd, and its state must fit in a continue-as-new.
MAX_DECLARATION_BYTES = 256 * 1024
# A claim whose incident never appeared (its declarer died in between) is stale after this.
CLAIM_GRACE = 10.0
# How long one declaration may spend stepping past others before it gives up (503).
GIVE_UP_AFTER = 15.0
RESYNC_AFTER_COLLISIONS = 8


class DeclarationTooLarge(ValueError):
    pass


class Contended(Exception):
    """Transient: others kept taking the numbers or the key; retrying soon will succeed."""


@dataclass
class Taken:
    number: int
    created: bool
    state: IncidentState | None  # as declared, when created now (the workflow may not have run)
    opened: bool = False  # created, and its ``opening`` answered: ``state`` has the channel


class Intake:
    def __init__(self, client: Client, task_queue: str) -> None:
        self.client = client
        self.task_queue = task_queue
        self._next: int | None = None
        self._returned: list[int] = []  # candidates a keyed declaration did not need (a heap)
        self._collisions = 0
        self.claim_grace = CLAIM_GRACE
        self._sync = asyncio.Lock()
        self._key_locks: dict[str, asyncio.Lock] = {}

    async def take(
        self, declaration: Declaration, policy: Policy, opening: timedelta | None = None
    ) -> Taken:
        """Start the incident (or find the open one holding the key); durable on return.

        ``policy`` is this declaration's (one intake, and so one run of numbers, may serve
        several policies). With ``opening``, an incident created now is opened as well, if a
        worker answers within that long (``_start_opening``)."""
        # The start input also carries the policy (not counted here: the operator wrote it).
        input_size = len(declaration.model_dump_json())
        if input_size > MAX_DECLARATION_BYTES:
            raise DeclarationTooLarge(
                f"the declaration is {input_size} bytes; at most {MAX_DECLARATION_BYTES} fit"
            )
        deadline = time.monotonic() + GIVE_UP_AFTER
        key = declaration.idempotency_key
        while time.monotonic() < deadline:
            if key is None:
                taken = await self._start(await self._candidate(), declaration, policy, opening)
            else:
                taken = await self._take_with_key(key, declaration, policy, opening)
            if taken is not None:
                return taken
        raise Contended("other declarations kept taking the incident numbers or this key")

    # -- numbers ---------------------------------------------------------------------------

    async def _candidate(self) -> int:
        async with self._sync:
            if self._next is None:
                self._next = await highest_number(self.client) + 1
                self._returned.clear()
            if self._returned:
                return heapq.heappop(self._returned)
            number = self._next
            self._next += 1  # concurrent declarations in this process try different numbers
            return number

    def _collided(self, number: int) -> None:
        """Another process holds ``number``: step past it; re-read visibility if that repeats."""
        self._collisions += 1
        if self._collisions >= RESYNC_AFTER_COLLISIONS:
            self._collisions, self._next = 0, None
        elif self._next is not None and self._next <= number:
            self._next = number + 1

    async def _start(
        self, number: int, declaration: Declaration, policy: Policy, opening: timedelta | None
    ) -> Taken | None:
        """Take ``number``; None if someone else holds it."""
        policy = policy_for(policy, declaration)
        # The declared time travels with it, so the workflow's first state (and so its list
        # view in the memo) is the one the answer and the start's memo already show.
        accepted_at = datetime.now(UTC)
        declaration = declaration.model_copy(update={"accepted_at": accepted_at})
        started = IncidentInput(number=number, policy=policy, declaration=declaration)
        now_state, _ = started.first_state(incident_id(number), accepted_at)
        options: dict[str, Any] = {
            "id": incident_id(number),
            "task_queue": self.task_queue,
            "id_conflict_policy": WorkflowIDConflictPolicy.FAIL,
            "id_reuse_policy": WorkflowIDReusePolicy.REJECT_DUPLICATE,
            **shown_at_start(now_state),
        }
        opened = None
        try:
            if opening is None:
                await self.client.start_workflow(IncidentWorkflow.run, started, **options)
            else:
                opened = await self._start_opening(started, options, opening)
        except WorkflowAlreadyStartedError:
            self._collided(number)
            return None
        self._collisions = 0
        return Taken(number, created=True, state=opened or now_state, opened=opened is not None)

    async def _start_opening(
        self, started: IncidentInput, options: dict[str, Any], opening: timedelta
    ) -> IncidentState | None:
        """Start and open in one call (update-with-start): the incident as opened, or None if no
        worker answered within ``opening``. Its Update is then in the first workflow task: one
        shape of history, a task shorter than a start and then an Update the worker may only
        see after it took that task. Given up on, the call may or may not have started the
        incident, so a plain start makes sure; the start input (this declaration's, to the
        microsecond) tells a start the call made from another declarer's."""
        with_start = WithStartWorkflowOperation(IncidentWorkflow.run, started, **options)
        # Its handle also gets the call's error: awaited, so asyncio reports none unread.
        settled = asyncio.ensure_future(_quietly(with_start.workflow_handle()))
        call = self.client.execute_update_with_start_workflow(
            IncidentWorkflow.opening, start_workflow_operation=with_start
        )
        try:
            state: IncidentState = await asyncio.wait_for(call, opening.total_seconds())
            return state
        except (TimeoutError, RPCTimeoutOrCancelledError, RPCError):
            await asyncio.wait([settled], timeout=1.0)
        try:
            await self.client.start_workflow(IncidentWorkflow.run, started, **options)
        except WorkflowAlreadyStartedError:
            if not await started_with(self.client, options["id"], started):
                raise  # another declarer's incident has the number
        return None

    # -- keys ------------------------------------------------------------------------------

    async def _take_with_key(
        self, key: str, declaration: Declaration, policy: Policy, opening: timedelta | None
    ) -> Taken | None:
        # One attempt per key at a time in this process: the others then find the claim
        # instead of each spending a candidate number on a claim that fails.
        lock = self._key_locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                return await self._claim(key, declaration, policy, opening)
        finally:
            if not lock.locked():
                self._key_locks.pop(key, None)

    async def _claim(
        self, key: str, declaration: Declaration, policy: Policy, opening: timedelta | None
    ) -> Taken | None:
        found = await self.holder(key)
        if found is not None:
            return found
        number = await self._candidate()
        claim_handle: WorkflowHandle[Any, Any]
        try:
            claim_handle = await self.client.start_workflow(
                IncidentKeyClaim.run,
                number,
                id=claim_id(key),
                task_queue=self.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                memo={MEMO_NUMBER: number},
                static_summary=f"Idempotency key of {incident_label(number)}",
            )
        except WorkflowAlreadyStartedError:  # another process claimed it just now
            await self._give_back(number)
            return None
        taken = await self._start(number, declaration, policy, opening)
        if taken is None:  # the number went to someone else: let go of the key and retry
            await _end(claim_handle, "its number was taken by another declaration")
        return taken

    async def _give_back(self, number: int) -> None:
        """An unused candidate goes back to be handed out first, so no number is skipped."""
        async with self._sync:
            heapq.heappush(self._returned, number)

    async def holder(self, key: str) -> Taken | None:
        """The open incident holding ``key``; None (retry) while the claim is in flux."""
        claim = self.client.get_workflow_handle(claim_id(key))
        try:
            described = await claim.describe()
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return None
            raise
        if described.status != WorkflowExecutionStatus.RUNNING:
            return None  # ended between our start and now: claim again
        memo = await described.memo()
        number = int(memo[MEMO_NUMBER])
        holder = self.client.get_workflow_handle(incident_id(number))
        age = time.time() - described.start_time.timestamp()
        try:
            incident = await holder.describe()
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
            if age > self.claim_grace:
                await _end(
                    self.client.get_workflow_handle(described.id, run_id=described.run_id),
                    "its incident never started",
                )
            else:
                await asyncio.sleep(0.05)  # its declarer is starting the incident now
            return None
        view = (await incident.memo()).get(MEMO_KEY) or {}
        if view.get("idempotency_key") != key:
            if age > self.claim_grace:
                await _end(
                    self.client.get_workflow_handle(described.id, run_id=described.run_id),
                    "its incident has another key",
                )
            else:
                await asyncio.sleep(0.05)  # its declarer lost that number and is retrying
            return None
        resolved = incident.typed_search_attributes.get(INCIDENT_STATUS) == Status.RESOLVED
        if incident.status != WorkflowExecutionStatus.RUNNING or resolved:
            await _end(
                self.client.get_workflow_handle(described.id, run_id=described.run_id),
                f"{incident_label(number)} is resolved",
            )
            return None
        return Taken(number=number, created=False, state=None)


async def _quietly(outcome: Awaitable[object]) -> None:
    with contextlib.suppress(Exception):
        await outcome


def policy_for(policy: Policy, declaration: Declaration) -> Policy:
    """A drill travels with the policy on its compressed clock, so every deadline the
    workflow computes comes sooner with no special case in the deadline code."""
    if not declaration.drill:
        return policy
    return compress(policy, policy.drill.time_factor)


async def _end(claim: WorkflowHandle[Any, Any], reason: str) -> None:
    """Terminate one claim run (by run id, so a newer claim of the same key is untouched)."""
    try:
        await claim.terminate(reason=reason)
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise

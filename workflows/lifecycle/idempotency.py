"""IncidentKeyClaim: one tiny workflow per idempotency key, holding the key for one incident.

Temporal refuses a second running workflow with the same id, so starting
``incident-key-<hash>`` is an atomic "this key is mine" without a singleton: declarations with
different keys never meet, and the claim's memo says which incident holds the key. The claim
ends when its incident resolves (a ``release`` signal); the desk also ends a claim whose
incident is resolved or gone, so releasing a key never needs a worker.
"""

from __future__ import annotations

import contextlib
import hashlib

from temporalio import workflow
from temporalio.common import VersioningBehavior
from temporalio.exceptions import FailureError

from workflows.models import IncidentState

# Update ids an incident has applied, carried across continue-as-new.
#
# Temporal answers a repeated Update id with the first outcome, but only within one run. A
# client that retries a command (same id) after the incident continued as new would have it
# applied twice, so the ids travel in the state and a repeat is answered, not applied.
KEPT = 200  # the newest ids; a retry comes within seconds, not hundreds of commands later


def repeated(state: IncidentState) -> bool:
    """Whether the Update being handled was applied already (in this or an earlier run)."""
    info = workflow.current_update_info()
    return info is not None and info.id in state.applied_updates


def remember(state: IncidentState) -> None:
    info = workflow.current_update_info()
    if info is not None:
        state.applied_updates = [*state.applied_updates[-(KEPT - 1) :], info.id]


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


async def release_key(idempotency_key: str, number: int) -> None:
    """From the incident workflow, once resolved: the key may declare a new incident."""
    claim = workflow.get_external_workflow_handle(claim_id(idempotency_key))
    # The desk may have ended a stale claim already: nothing is left to release then.
    with contextlib.suppress(FailureError):
        await claim.signal(IncidentKeyClaim.release, number)

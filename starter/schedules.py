"""Temporal Schedules the product keeps: the incident digest. Idempotent, run at worker start."""

from __future__ import annotations

import structlog
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from workflows.digest import DIGEST_SCHEDULE_ID, DigestInput, IncidentDigest
from workflows.policy import Policy

log = structlog.get_logger()


def digest_schedule(task_queue: str, policy: Policy) -> Schedule:
    every = policy.digest.every
    return Schedule(
        action=ScheduleActionStartWorkflow(
            IncidentDigest.run,
            DigestInput(period_seconds=every.total_seconds()),
            id=DIGEST_SCHEDULE_ID,
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_digest_schedule(
    client: Client, task_queue: str, policy: Policy, schedule_id: str = DIGEST_SCHEDULE_ID
) -> None:
    """Create the digest schedule, or bring an existing one to the policy's cadence."""
    handle = client.get_schedule_handle(schedule_id)
    if not policy.digest.enabled:
        try:
            await handle.delete()
            log.info("digest_schedule_removed", schedule_id=schedule_id)
        except RPCError as error:
            if error.status is not RPCStatusCode.NOT_FOUND:
                raise
        return
    schedule = digest_schedule(task_queue, policy)
    try:
        await client.create_schedule(schedule_id, schedule)
        log.info("digest_schedule_created", schedule_id=schedule_id, every=str(policy.digest.every))
    except ScheduleAlreadyRunningError:

        def update(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await handle.update(update)
        log.info("digest_schedule_updated", schedule_id=schedule_id, every=str(policy.digest.every))

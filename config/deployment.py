"""What the worker keeps in place in Temporal: the incident search attributes, the digest
schedule at the policy's cadence, its build as the Worker Deployment's current version when
there is none yet (docs/operations.md says when the operator decides instead), and one
on-call schedule workflow per schedule of the policy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager

import structlog
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.api.workflowservice.v1 import (
    DescribeWorkerDeploymentRequest,
    SetWorkerDeploymentCurrentVersionRequest,
)
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
    WorkflowHistory,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkerDeploymentVersion, WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import (
    Plugin,
    Replayer,
    ReplayerConfig,
    Worker,
    WorkerConfig,
    WorkflowReplayResult,
)

from config.settings import Settings
from workflows.incident import DIGEST_SCHEDULE_ID, DigestInput, IncidentDigest
from workflows.lifecycle.visibility import SEARCH_ATTRIBUTES
from workflows.oncall.rotation import (
    WORKFLOW_PREFIX,
    ScheduleInput,
    ScheduleWorkflow,
    schedule_workflow_id,
)
from workflows.oncall.schedules import Schedule as OncallSchedule
from workflows.policy import Policy

log = structlog.get_logger()

VERSION_TRIES = 300  # a minute of asking whether this version may become current


VERSION_RETRY_SECONDS = 0.2
SCHEDULES_AT_ONCE = 50  # schedule workflows started and read side by side at worker start


async def ensure_search_attributes(client: Client, namespace: str) -> None:
    """Register the incident search attributes a bare server does not know yet."""
    known = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    missing = {
        key.name: key.indexed_value_type
        for key in SEARCH_ATTRIBUTES
        if key.name not in known.custom_attributes
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=namespace,
                search_attributes=missing,  # type: ignore[arg-type]  # same enum values
            )
        )
        log.info("search_attributes_registered", names=sorted(missing))


def deployment_version(settings: Settings) -> WorkerDeploymentVersion:
    return WorkerDeploymentVersion(
        deployment_name=settings.deployment_name, build_id=settings.build_id
    )


class CurrentVersion(Plugin):
    """Once the worker polls, make its version the deployment's current one if there is none
    (a first install, ``make run``, the tests) or INCIDENT_SET_CURRENT_VERSION says so.
    Otherwise the operator decides (``temporal worker deployment set-current-version``)."""

    def __init__(self, client: Client, settings: Settings) -> None:
        self.client, self.settings = client, settings

    def configure_worker(self, config: WorkerConfig) -> WorkerConfig:
        return config

    async def run_worker(self, worker: Worker, next: Callable[[Worker], Awaitable[None]]) -> None:
        routing = asyncio.create_task(self.become_current())
        try:
            await next(worker)
        finally:
            routing.cancel()

    async def become_current(self) -> None:
        """The version exists once the server has seen it poll: until then, ask again."""
        service, name = self.client.workflow_service, self.settings.deployment_name
        namespace, build_id = self.client.namespace, self.settings.build_id
        for _ in range(VERSION_TRIES):
            try:
                described = await service.describe_worker_deployment(
                    DescribeWorkerDeploymentRequest(namespace=namespace, deployment_name=name)
                )
                routing = described.worker_deployment_info.routing_config
                current = routing.current_deployment_version.build_id
                if current == build_id or (current and not self.settings.set_current_version):
                    return
                if not self.settings.set_current_version and await self.patched_incidents_run():
                    log.error("deployment_version_left_to_operator", see="docs/operations.md")
                    return
                await service.set_worker_deployment_current_version(
                    SetWorkerDeploymentCurrentVersionRequest(
                        namespace=namespace,
                        deployment_name=name,
                        build_id=build_id,
                        conflict_token=described.conflict_token,
                    )
                )
                log.info("deployment_version_current", deployment=name, build_id=build_id)
                return
            except RPCError as error:  # not seen polling yet, or another worker was quicker
                log.debug("deployment_version_not_current_yet", error=error.message)
            await asyncio.sleep(VERSION_RETRY_SECONDS)
        log.warning("deployment_version_not_made_current", deployment=name, build_id=build_id)

    async def patched_incidents_run(self) -> bool:
        """Incidents of 0.1 (unversioned; their patches left TemporalChangeVersion) would move
        to the first current version, whose code cannot replay them: while any runs on this
        task queue, only the operator makes a version current."""
        query = (
            f"TaskQueue = '{self.settings.task_queue}' AND ExecutionStatus = 'Running' "
            "AND TemporalChangeVersion IS NOT NULL"
        )
        return (await self.client.count_workflows(query)).count > 0

    def configure_replayer(self, config: ReplayerConfig) -> ReplayerConfig:
        return config

    def run_replayer(
        self,
        replayer: Replayer,
        histories: AsyncIterator[WorkflowHistory],
        next: Callable[
            [Replayer, AsyncIterator[WorkflowHistory]],
            AbstractAsyncContextManager[AsyncIterator[WorkflowReplayResult]],
        ],
    ) -> AbstractAsyncContextManager[AsyncIterator[WorkflowReplayResult]]:
        return next(replayer, histories)


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


async def ensure_oncall_schedules(client: Client, task_queue: str, policy: Policy) -> None:
    """A schedule workflow for each schedule of the policy: started if missing, told of an
    edit (which applies from now), and stopped when the policy no longer has the schedule.
    Runs once the worker polls: reading a schedule's definition is a query."""
    names = list(policy.schedules)
    for batch in range(0, len(names), SCHEDULES_AT_ONCE):
        await asyncio.gather(
            *(
                _keep_schedule(client, task_queue, name, policy.schedules[name])
                for name in names[batch : batch + SCHEDULES_AT_ONCE]
            )
        )
    running = (
        f"WorkflowType = 'ScheduleWorkflow' AND ExecutionStatus = 'Running' "
        f"AND TaskQueue = '{task_queue}'"
    )
    async for found in client.list_workflows(running):
        name = found.id.removeprefix(WORKFLOW_PREFIX)
        if name not in policy.schedules:
            await client.get_workflow_handle(found.id).terminate("not in the policy any more")
            log.info("oncall_schedule_removed", schedule=name)


async def _keep_schedule(
    client: Client, task_queue: str, name: str, schedule: OncallSchedule
) -> None:
    try:
        await _keep(client, task_queue, name, schedule)
    except (RPCError, WorkflowQueryFailedError, WorkflowUpdateFailedError) as error:
        # One schedule Temporal cannot answer for now does not hold the others back.
        log.error("oncall_schedule_not_kept", schedule=name, error=str(error))


async def _keep(client: Client, task_queue: str, name: str, schedule: OncallSchedule) -> None:
    handle = await client.start_workflow(
        ScheduleWorkflow.run,
        ScheduleInput(name=name, written=schedule),
        id=schedule_workflow_id(name),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    roster = await handle.query(ScheduleWorkflow.roster)
    if roster.written != schedule:
        await handle.execute_update(ScheduleWorkflow.set_schedule, schedule)
        log.info("oncall_schedule_updated", schedule=name)

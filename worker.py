"""The worker: builds the clients, registers workflows and activities, runs until stopped.

python worker.py          (configured from the environment, see docs/contract.md)

It keeps the search attributes and the digest schedule in place; the archive's schema it only
checks: `incident db upgrade` applies it (exit code 2 with that hint when it is behind).

It polls as one version of a Worker Deployment (INCIDENT_DEPLOYMENT_NAME, INCIDENT_BUILD_ID):
an incident runs on the build it started on until it continues as new, and new incidents go to
the deployment's current version (docs/operations.md). On SIGTERM or SIGINT it stops polling
and gives running activities WORKER_SHUTDOWN_GRACE seconds to finish. With WORKER_METRICS_PORT
set, the Temporal SDK's metrics are served for Prometheus on http://127.0.0.1:<port>/metrics.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import Any

import httpx
import structlog
from pydantic import ValidationError
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
)
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import (
    Plugin,
    Replayer,
    ReplayerConfig,
    Worker,
    WorkerConfig,
    WorkerDeploymentConfig,
    WorkflowReplayResult,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.services import (
    ArchiveActivities,
    DocumentActivities,
    MailActivities,
    PagingActivities,
    status_page_activities,
)
from activities.slack import IncidentOpening, SlackActivities
from clients.archive import IncidentArchive, SchemaBehind
from clients.documents import SlackDocuments
from clients.mail import Mailer, smtp_server
from clients.paging import Pager
from clients.slack import Slack
from clients.slack_client import slack_client
from config import ConfigError, Settings, connect, reveal
from logs import configure_logging
from workflows.incident import IncidentWorkflow
from workflows.lifecycle.idempotency import IncidentKeyClaim
from workflows.lifecycle.visibility import SEARCH_ATTRIBUTES
from workflows.policy import Policy
from workflows.resolution.digest import DIGEST_SCHEDULE_ID, DigestInput, IncidentDigest

log = structlog.get_logger()
VERSION_TRIES = 300  # a minute of asking whether this version may become current
VERSION_RETRY_SECONDS = 0.2

# The sandbox still refuses non-deterministic calls (clock, random, I/O) in workflow code, but
# shares already-imported modules instead of re-importing them for every workflow run: a new
# incident's first workflow task drops from ~190 ms to a few ms, and memory per open incident
# stays small. Our workflow modules keep no mutable module state, which is what makes it safe.
WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_all_modules()
)


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


def build_worker(
    client: Client, settings: Settings, http: httpx.AsyncClient, **worker_options: object
) -> Worker:
    web = slack_client(settings.slack_token(), settings.slack_api_url)
    incident_slack = Slack(web, settings.broadcast_channel, settings.incident_url)
    slack = SlackActivities(incident_slack)
    pager = Pager(
        http,
        pagerduty_url=settings.paging_url,
        routing_key=settings.paging_routing_key.get_secret_value(),
        webhook_url=reveal(settings.webhook_url),
        incident_url=settings.incident_url,
    )
    paging = PagingActivities(pager)
    archive = IncidentArchive(settings.database_url.get_secret_value())
    follow_up = follow_up_activities(settings, incident_slack, archive)
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[IncidentWorkflow, IncidentKeyClaim, IncidentDigest],
        activities=[
            slack.open_channel,
            slack.set_topic,
            slack.invite,
            slack.post_message,
            slack.archive_channel,
            slack.update_kickoff,
            slack.add_bookmarks,
            IncidentOpening(incident_slack, archive).open_incident,
            paging.send_pagerduty,
            paging.send_webhook,
            *follow_up,
            *status_page_activities(settings, archive),
        ],
        # Pinned: a workflow runs on this build until it ends (an incident: until it continues
        # as new), so the workflow code carries one path and no patches.
        deployment_config=WorkerDeploymentConfig(
            version=deployment_version(settings),
            use_worker_versioning=True,
            default_versioning_behavior=VersioningBehavior.PINNED,
        ),
        plugins=[CurrentVersion(client, settings)],
        # A caller (a benchmark) may bring its own runner.
        **{"workflow_runner": WORKFLOW_RUNNER, **worker_options},  # type: ignore[arg-type]
    )


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


def follow_up_activities(
    settings: Settings, slack: Slack, archive: IncidentArchive
) -> list[Callable[..., Any]]:
    """Documents, email and the incident archive."""
    documents = DocumentActivities(SlackDocuments(slack.client), organizer=settings.smtp_from)
    mail = MailActivities(Mailer(smtp_server(settings)))
    records = ArchiveActivities(archive, slack)
    return [
        documents.upload,
        documents.emails,
        documents.invitation,
        mail.send,
        records.record_incident,
        records.incident_metrics,
        records.post_digest,
    ]


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


def metrics_runtime(port: int | None) -> Runtime | None:
    """A runtime whose metrics Prometheus scrapes on 127.0.0.1:<port>, or None for none."""
    if port is None:
        return None
    prometheus = PrometheusConfig(bind_address=f"127.0.0.1:{port}")
    return Runtime(telemetry=TelemetryConfig(metrics=prometheus))


async def main(settings: Settings) -> None:
    configure_logging(settings)
    runtime = metrics_runtime(settings.worker_metrics_port)
    client = await connect(settings, runtime=runtime)
    await ensure_search_attributes(client, client.namespace)
    await ensure_digest_schedule(client, settings.task_queue, settings.policy)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with httpx.AsyncClient() as http:
        worker = build_worker(
            client,
            settings,
            http,
            graceful_shutdown_timeout=timedelta(seconds=settings.worker_shutdown_grace),
        )
        log.info(
            "worker_started",
            task_queue=settings.task_queue,
            deployment=settings.deployment_name,
            build_id=settings.build_id,
            temporal=settings.temporal.address,
            slack=settings.slack_api_url,
            metrics_port=settings.worker_metrics_port,
        )
        async with worker:
            await stop.wait()
            log.info("worker_stopping", grace_seconds=settings.worker_shutdown_grace)
    log.info("worker_stopped")


def run() -> None:
    """Settings and the archive's schema first, so either error is one clear line and exit
    code 2."""
    try:
        settings = Settings()
        settings.slack_token()
        # Before Temporal: a database behind the code is an operator's mistake to name at once.
        IncidentArchive(settings.database_url.get_secret_value()).check_current()
        asyncio.run(main(settings))
    except (ConfigError, ValidationError, SchemaBehind) as error:
        print(f"worker: error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    run()

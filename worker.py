"""The worker: builds the clients, registers workflows and activities, runs until stopped.

python worker.py          (configured from the environment, see docs/contract.md)

It keeps the search attributes, the digest schedule and a workflow per on-call schedule in
place; the archive's schema it only checks: `incident db upgrade` applies it (exit code 2 with
that hint when it is behind).

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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import structlog
from pydantic import ValidationError
from temporalio.bridge.proto.workflow_activation import WorkflowActivation
from temporalio.bridge.proto.workflow_completion import WorkflowActivationCompletion
from temporalio.client import Client
from temporalio.common import VersioningBehavior
from temporalio.converter import (
    DataConverter,
    SerializationContext,
    StorageDriverStoreContext,
)
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import (
    Worker,
    WorkerDeploymentConfig,
    WorkflowInstance,
    WorkflowInstanceDetails,
    WorkflowRunner,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions
from temporalio.workflow import Info as WorkflowInfo

from activities.services import (
    ArchiveActivities,
    DocumentActivities,
    MailActivities,
    PagingActivities,
    RosterActivities,
    status_page_activities,
)
from activities.slack import IncidentOpening, OncallActivities, SlackActivities
from clients.archive import IncidentArchive, SchemaBehind
from clients.documents import SlackDocuments
from clients.outbound import Mailer, Pager, smtp_server
from clients.slack import Slack
from clients.slack_client import slack_client
from config import ConfigError, Settings, connect, reveal
from config.deployment import (
    CurrentVersion,
    deployment_version,
    ensure_digest_schedule,
    ensure_oncall_schedules,
    ensure_search_attributes,
)
from logs import configure_logging
from workflows.incident import IncidentDigest, IncidentWorkflow
from workflows.lifecycle.numbering import DrillTimer, IncidentKeyClaim
from workflows.oncall.rotation import ScheduleWorkflow

log = structlog.get_logger()

# The sandbox still refuses the non-deterministic calls it sees (builtins such as ``open``, the
# clock or random of a module imported while the workflow runs; not a name a module imported
# before, which the replay tests catch), but shares already-imported modules instead of
# re-importing them for every workflow run: a new incident's first workflow task drops from
# ~190 ms to a few ms, and memory per open incident stays small. Our workflow modules keep no
# mutable module state, which is what makes it safe.
RESTRICTIONS = SandboxRestrictions.default.with_passthrough_all_modules()


class ContextFree(WorkflowInstance):
    """A sandboxed workflow instance that answers the payload codec's questions without entering
    the sandbox. Around every activation the SDK walks the payloads three times each way for a
    codec and external storage, and asks the instance, per payload, which command it belongs to:
    in the sandbox, each answer compiles and runs a snippet (about 0.25 M instructions). With
    neither a codec nor external storage the answer is never used, and a cache-miss replay of a
    standard incident costs 38% less without them (``bench.replay``)."""

    def __init__(self, sandboxed: WorkflowInstance) -> None:
        self.sandboxed = sandboxed

    def activate(self, act: WorkflowActivation) -> WorkflowActivationCompletion:
        return self.sandboxed.activate(act)

    def get_serialization_context(self, command_info: Any) -> SerializationContext | None:
        return None  # the context-free converter: the worker's, as it has no codec

    def get_external_store_context(self, command_info: Any) -> StorageDriverStoreContext:
        return StorageDriverStoreContext(target=None)

    def get_info(self) -> WorkflowInfo:
        return self.sandboxed.get_info()

    def get_thread_id(self) -> int | None:
        return self.sandboxed.get_thread_id()  # what a deadlock report reads the stack of


@dataclass(frozen=True)
class CodecFreeRunner(SandboxedWorkflowRunner):
    """The sandbox for a worker whose data converter has no payload codec or external storage."""

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return ContextFree(super().create_instance(det))


WORKFLOW_RUNNER = CodecFreeRunner(restrictions=RESTRICTIONS)


def workflow_runner(converter: DataConverter) -> WorkflowRunner:
    """``WORKFLOW_RUNNER``, unless a codec or external storage needs each payload's context."""
    if converter.payload_codec is None and converter.external_storage is None:
        return WORKFLOW_RUNNER
    return SandboxedWorkflowRunner(restrictions=RESTRICTIONS)


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
    oncall = OncallActivities(incident_slack)
    roster = RosterActivities(client, incident_slack.people)
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[
            IncidentWorkflow,
            IncidentKeyClaim,
            IncidentDigest,
            ScheduleWorkflow,
            DrillTimer,
        ],
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
            paging.call_webhook,
            roster.who_is_on_call,
            roster.role_holders,
            roster.highest_number,
            *follow_up,
            *status_page_activities(settings, archive),
            oncall.resolve_people,
            oncall.direct_message,
            oncall.set_user_group,
        ],
        # Pinned: a workflow runs on this build until it ends (an incident: until it continues
        # as new), so the workflow code carries one path and no patch.
        deployment_config=WorkerDeploymentConfig(
            version=deployment_version(settings),
            use_worker_versioning=True,
            default_versioning_behavior=VersioningBehavior.PINNED,
        ),
        plugins=[CurrentVersion(client, settings)],
        # A caller (a benchmark) may bring its own runner.
        **{"workflow_runner": workflow_runner(client.data_converter), **worker_options},  # type: ignore[arg-type]
    )


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


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("oncall_schedules_not_kept", error=repr(task.exception()))


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
            # Once it polls: keeping a schedule's workflow in place reads its definition.
            schedules = asyncio.create_task(
                ensure_oncall_schedules(client, settings.task_queue, settings.policy)
            )
            schedules.add_done_callback(_log_failure)
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

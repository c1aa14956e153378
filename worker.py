"""The worker: builds the clients, registers workflows and activities, runs until stopped.

python worker.py          (configured from the environment, see CONTRACT.md)
"""

from __future__ import annotations

import asyncio
import signal

import httpx
import structlog
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.paging import PagingActivities
from activities.slack import SlackActivities, slack_client
from config import Settings, connect
from logs import configure_logging
from workflows.claims import IncidentKeyClaim
from workflows.incident import IncidentWorkflow
from workflows.registry import IncidentRegistry
from workflows.visibility import SEARCH_ATTRIBUTES

log = structlog.get_logger()

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
    token = settings.slack_bot_token
    if not token:
        from localslack import BOT_TOKEN

        token = BOT_TOKEN
    slack = SlackActivities(
        slack_client(token, settings.slack_api_url),
        settings.broadcast_channel,
        settings.incident_url,
    )
    paging = PagingActivities(
        http,
        pagerduty_url=settings.paging_url,
        routing_key=settings.paging_routing_key,
        webhook_url=settings.webhook_url,
        incident_url=settings.incident_url,
    )
    return Worker(
        client,
        task_queue=settings.task_queue,
        # IncidentRegistry no longer numbers incidents; it stays so its histories still run.
        workflows=[IncidentWorkflow, IncidentRegistry, IncidentKeyClaim],
        activities=[
            slack.open_channel,
            slack.set_topic,
            slack.invite,
            slack.post_message,
            slack.archive_channel,
            paging.send_pagerduty,
            paging.send_webhook,
        ],
        # A caller (a benchmark) may bring its own runner.
        **{"workflow_runner": WORKFLOW_RUNNER, **worker_options},  # type: ignore[arg-type]
    )


async def main() -> None:
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    client = await connect(settings)
    await ensure_search_attributes(client, settings.temporal_namespace)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with httpx.AsyncClient() as http:
        worker = build_worker(client, settings, http)
        log.info(
            "worker_started",
            task_queue=settings.task_queue,
            temporal=settings.temporal_address,
            slack=settings.slack_api_url,
        )
        async with worker:
            await stop.wait()
    log.info("worker_stopped")


if __name__ == "__main__":
    asyncio.run(main())

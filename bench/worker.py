"""A worker process for benchmarks: the product's (``worker.build_worker``) or the baseline's.

    python -m bench.worker product [--max-cached-workflows N] [--metrics-port P]
    python -m bench.worker product --passthrough workflows
    python -m bench.worker bare ...

Configured from the environment like ``python worker.py`` (TEMPORAL_ADDRESS,
INCIDENT_TASK_QUEUE, SLACK_API_URL, ...). Unlike it, it can pass worker options through to
``build_worker`` (only what is given on the command line; otherwise build_worker's own
defaults hold) and exposes the SDK's Prometheus metrics (sticky cache hits and misses,
workflow task latencies) on --metrics-port. The baseline worker gets the same options.
Prints "ready" once it polls.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import httpx
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from bench.bare import (
    BareActivities,
    BareDeclare,
    BareIncident,
    BareIncidentActivities,
    BareTimer,
    noop,
)
from clients.slack_client import slack_client
from config import Settings, connect
from config.deployment import ensure_search_attributes
from logs import configure_logging
from worker import WORKFLOW_RUNNER, build_worker

OPTIONS = ("max_cached_workflows", "max_concurrent_workflow_tasks", "max_concurrent_activities")


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.worker", description=__doc__)
    parser.add_argument("kind", choices=["product", "bare"])
    for option in OPTIONS:
        parser.add_argument("--" + option.replace("_", "-"), type=int, default=None)
    parser.add_argument("--metrics-port", type=int, default=None)
    parser.add_argument(
        "--unsandboxed",
        action="store_true",
        help="run workflows without the sandbox (determinism is then up to the code and the "
        "replay tests); a cache miss replays faster and a cached workflow takes less memory",
    )
    parser.add_argument(
        "--passthrough",
        default=None,
        help="modules the sandbox takes as they are instead of importing them again for "
        "every workflow instance (comma-separated, e.g. workflows; all: as the product's worker)",
    )
    return parser.parse_args()


def bare_worker(client: Client, settings: Settings, **options: object) -> Worker:
    web = slack_client(settings.slack_token(), settings.slack_api_url)
    slack, incident = BareActivities(web), BareIncidentActivities(web)
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[BareDeclare, BareTimer, BareIncident],
        activities=[noop, slack.post, incident.open_incident],
        **options,  # type: ignore[arg-type]
    )


async def main(args: argparse.Namespace) -> None:
    settings = Settings()
    configure_logging(settings)
    runtime = None
    if args.metrics_port:
        bind = f"127.0.0.1:{args.metrics_port}"
        metrics = PrometheusConfig(bind_address=bind, durations_as_seconds=True)
        runtime = Runtime(telemetry=TelemetryConfig(metrics=metrics))
    client = await connect(settings, runtime=runtime)
    options: dict[str, object] = {
        o: getattr(args, o) for o in OPTIONS if getattr(args, o) is not None
    }
    if args.unsandboxed:
        options["workflow_runner"] = UnsandboxedWorkflowRunner()
    elif args.passthrough == "all":  # the product's worker's own runner
        options["workflow_runner"] = WORKFLOW_RUNNER
    elif args.passthrough:
        modules = args.passthrough.split(",")
        restrictions = SandboxRestrictions.default.with_passthrough_modules(*modules)
        options["workflow_runner"] = SandboxedWorkflowRunner(restrictions=restrictions)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with httpx.AsyncClient() as http:
        if args.kind == "product":
            await ensure_search_attributes(client, client.namespace)
            worker = build_worker(client, settings, http, **options)
        else:
            worker = bare_worker(client, settings, **options)
        async with worker:
            print("ready", sorted(options), flush=True)
            await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(arguments()))

"""``GET /incidents`` with many incidents, open and resolved, against bare visibility.

    python -m bench.listing [--incidents 1000] [--resolved 300] [--repeat 50]

Starts the dev server, the Slack emulator, the worker and the API (``python -m starter.api``)
on free 127.0.0.1 ports, declares ``--incidents`` incidents through ``IncidentDesk`` and
resolves ``--resolved`` of them, then times each listing ``--repeat`` times one after another:
the API's answer against a bare ``ListWorkflowExecutions`` with the same visibility query and
page size from this process (what Temporal itself costs). Every process is stopped by its PID.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import time
from pathlib import Path

import httpx
import psutil
from temporalio.client import Client

from bench.stack import (
    PYTHON,
    Stack,
    connect,
    percentile,
    run,
    wait_for_line,
)
from starter.desk import IncidentDesk
from starter.reading import ListFilter
from workflows.lifecycle import commands as cmd
from workflows.models import Declaration, Status
from workflows.policy import default_policy

QUEUE = "incidents"
# (label, API query parameters, the visibility filter the API turns them into)
LISTINGS: list[tuple[str, dict[str, str], ListFilter]] = [
    ("first 100", {"page_size": "100"}, ListFilter()),
    ("all 1000 in one page", {"page_size": "1000"}, ListFilter()),
    ("open, 100", {"open": "true"}, ListFilter(open=True)),
    ("resolved, 100", {"status": "resolved"}, ListFilter(status=Status.RESOLVED)),
    ("sev1, 100", {"severity": "sev1"}, ListFilter(severity="sev1")),
    ("text 'disk', 100", {"text": "disk"}, ListFilter(text="disk")),
]


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.listing",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--incidents", type=int, default=1000)
    parser.add_argument("--resolved", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--logs", type=Path, default=Path(".data/bench/listing"))
    return parser.parse_args()


async def listing_bench(args: argparse.Namespace) -> None:
    stack = Stack(args.logs)
    try:
        _, address = await stack.temporal()
        _, slack_url = await stack.slack()
        env = {"TEMPORAL_ADDRESS": address, "SLACK_API_URL": slack_url, "LOG_FORMAT": "json"}
        env["INCIDENT_TASK_QUEUE"] = QUEUE
        worker = stack.start("worker", [PYTHON, "worker.py"], env)
        await wait_for_line(worker, "worker_started")
        client = await connect(address)
        await populate(client, args)
        await settle(worker.pid)
        async with stack.api(env) as http:
            await measure(http, client, args)
    finally:
        stack.close()


async def populate(client: Client, args: argparse.Namespace) -> None:
    desk = IncidentDesk(client, QUEUE, default_policy())
    gate = asyncio.Semaphore(20)
    words = ["disk full", "checkout failing", "latency up", "queue backlog"]

    async def declare(i: int) -> str:
        declaration = Declaration(
            title=f"{words[i % len(words)]} {i}",
            severity=f"sev{1 + i % 3}",
            commander="U0ALICE01",
        )
        async with gate:
            return (await desk.accept(declaration)).state.id

    began = time.perf_counter()
    ids = await asyncio.gather(*(declare(i) for i in range(args.incidents)))
    print(f"declared {len(ids)} in {time.perf_counter() - began:.1f}s", flush=True)

    async def resolve(incident: str) -> None:
        async with gate:
            await desk.command(incident, cmd.Resolve(message="bench"))

    began = time.perf_counter()
    await asyncio.gather(*(resolve(i) for i in ids[: args.resolved]))
    print(f"resolved {args.resolved} in {time.perf_counter() - began:.1f}s", flush=True)
    query = ListFilter().query()
    for _ in range(120):  # visibility trails the starts a little
        if (await client.count_workflows(query)).count >= args.incidents:
            break
        await asyncio.sleep(0.5)


async def settle(pid: int, below: float = 10.0, quiet: float = 3.0) -> None:
    """Wait until the worker has caught up (its CPU under ``below``% for ``quiet`` seconds),
    so the listing is timed against Temporal at rest, not against the opening backlog."""
    process = psutil.Process(pid)
    began, calm_since = time.perf_counter(), None
    while time.perf_counter() - began < 600:
        busy = await asyncio.to_thread(process.cpu_percent, 0.5)
        calm_since = (calm_since or time.perf_counter()) if busy < below else None
        if calm_since is not None and time.perf_counter() - calm_since >= quiet:
            break
    print(f"worker settled after {time.perf_counter() - began:.0f}s", flush=True)


async def measure(http: httpx.AsyncClient, client: Client, args: argparse.Namespace) -> None:
    print(f"\nmachine: {platform.node()}, {os.cpu_count()} cores, {platform.platform()}")
    print(f"{args.incidents} incidents, {args.resolved} resolved; ms over {args.repeat} calls")
    print(f"{'':<24}{'n':>6}{'API p50':>9}{'API p99':>9}{'bare p50':>9}{'bare p99':>9}{'x p99':>7}")
    for label, params, filters in LISTINGS:
        api_ms, bare_ms, listed = [], [], 0
        size = int(params.get("page_size", "100"))
        for _ in range(args.repeat):
            began = time.perf_counter()
            response = await http.get("/incidents", params=params)
            api_ms.append((time.perf_counter() - began) * 1000)
            response.raise_for_status()
            listed = len(response.json()["incidents"])
            began = time.perf_counter()
            executions = client.list_workflows(filters.query(), page_size=size)
            await executions.fetch_next_page()
            bare_ms.append((time.perf_counter() - began) * 1000)
        p99, b99 = percentile(api_ms, 99), percentile(bare_ms, 99)
        print(
            f"{label:<24}{listed:>6}{percentile(api_ms, 50):9.0f}{p99:9.0f}"
            f"{percentile(bare_ms, 50):9.0f}{b99:9.0f}{p99 / b99:7.1f}"
        )


if __name__ == "__main__":
    run(listing_bench(arguments()))

"""Declare latency through the HTTP API, against a bare Temporal workflow in the same run.

    python -m bench.declare [--count 100] [--concurrency 10] [--burst 20] [--warmup 5]

Starts on free 127.0.0.1 ports: the Temporal dev server, the Slack emulator
(``python -m localslack``), the product worker (``python worker.py``), the API
(``python -m starter.api``) and a baseline worker (``python -m bench.worker bare``), then:

- ``POST /incidents`` ``--count`` times one after another (after ``--warmup`` untimed ones),
  then ``--count`` more with ``--concurrency`` in flight and ``--count`` more with ``--burst``
  in flight, with ``?wait=true``: each answers 201 once the incident's channel exists and it
  is announced (a durable start, then the ``opening`` Update); other answers are counted
  (``python -m bench.intake`` measures the answer without waiting, open loop);
- ``IncidentDesk.declare`` called in this process, the same way (the API minus HTTP);
- the baseline: ``execute_update_with_start_workflow`` on ``BareDeclare`` (bench/bare.py), the
  same client call the desk makes, whose update returns after one no-op activity.

Latency is client-side wall time per call. Every process is stopped by its PID at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy

from bench.bare import BareDeclare
from bench.stack import (
    PYTHON,
    Stack,
    connect,
    percentile,
    run,
    wait_for_line,
)
from starter.desk import IncidentDesk
from workflows.models import Declaration
from workflows.policy import default_policy

QUEUE, BARE_QUEUE = "incidents", "bench-bare"


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.declare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--count", type=int, default=100, help="timed declarations per series")
    parser.add_argument("--concurrency", type=int, default=10, help="in flight, concurrent series")
    parser.add_argument(
        "--burst", type=int, default=20, help="in flight, a series past the server's limit"
    )
    parser.add_argument("--warmup", type=int, default=5, help="untimed declarations first")
    parser.add_argument("--logs", type=Path, default=Path(".data/bench/declare"))
    return parser.parse_args()


@dataclass
class Series:
    latencies: list[float] = field(default_factory=list)  # seconds, successful calls
    failures: Counter[str] = field(default_factory=Counter)
    wall: float = 0.0

    def row(self, label: str) -> str:
        ms = [x * 1000 for x in self.latencies]
        figures = [percentile(ms, p) for p in (50, 90, 99)] + [max(ms, default=math.nan)]
        cells = "".join(f"{f:8.0f}" for f in figures)
        failed = sum(self.failures.values())
        return f"{label:<44}{len(ms):>5}{failed:>7}{cells}{len(ms) / self.wall:9.1f}"


async def timed(
    call: Callable[[int], Awaitable[str | None]], count: int, concurrency: int, start: int = 0
) -> Series:
    """``count`` calls, ``concurrency`` in flight; a call returns None or why it failed."""
    series = Series()
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            began = time.perf_counter()
            failure = await call(i)
            if failure is None:
                series.latencies.append(time.perf_counter() - began)
            else:
                series.failures[failure] += 1

    began = time.perf_counter()
    await asyncio.gather(*(one(start + i) for i in range(count)))
    series.wall = time.perf_counter() - began
    return series


async def declare_bench(args: argparse.Namespace) -> None:
    stack = Stack(args.logs)
    try:
        await run_stack(args, stack)
    finally:
        stack.close()


async def run_stack(args: argparse.Namespace, stack: Stack) -> None:
    _, address = await stack.temporal()
    _, slack_url = await stack.slack()
    env = {
        "TEMPORAL_ADDRESS": address,
        "SLACK_API_URL": slack_url,
        "LOG_FORMAT": "json",
    }
    worker = stack.start("worker", [PYTHON, "worker.py"], {**env, "INCIDENT_TASK_QUEUE": QUEUE})
    bare = stack.start(
        "bare-worker",
        [PYTHON, "-m", "bench.worker", "bare"],
        {**env, "INCIDENT_TASK_QUEUE": BARE_QUEUE},
    )
    await wait_for_line(worker, "worker_started")
    await wait_for_line(bare, "ready")
    async with stack.api({**env, "INCIDENT_TASK_QUEUE": QUEUE}) as http:
        client = await connect(address)
        results = await measure(args, http, client)
    print(f"\ndeclare latency, ms ({args.count} per series; logs in {args.logs})")
    print(f"{'':<44}{'ok':>5}{'failed':>7}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}{'per s':>9}")
    for label, series in results.items():
        print(series.row(label))
    for label, series in results.items():
        for failure, times in series.failures.items():
            print(f"{label}: {times} failed: {failure}")
    product = results["API POST /incidents, sequential"].latencies
    baseline = results["baseline update-with-start, sequential"].latencies
    print(
        "\nratio API/baseline, sequential: "
        f"p50 {percentile(product, 50) / percentile(baseline, 50):.1f}x, "
        f"p99 {percentile(product, 99) / percentile(baseline, 99):.1f}x"
    )


async def measure(
    args: argparse.Namespace, http: httpx.AsyncClient, client: Client
) -> dict[str, Series]:
    run_id = uuid.uuid4().hex[:6]

    async def post(i: int) -> str | None:
        body = {
            "title": f"Declare bench {run_id} {i}",
            "severity": "sev2",
            "summary": "Declared by bench.declare",
            "commander": "U0ALICE01",
        }
        response = await http.post("/incidents", json=body, params={"wait": "true"})
        if response.status_code != 201:
            return f"{response.status_code} {response.json().get('detail')}"
        return None

    desk = IncidentDesk(client, QUEUE, default_policy())

    async def declare(i: int) -> str | None:
        declaration = Declaration(
            title=f"Desk bench {run_id} {i}",
            severity="sev2",
            summary="Declared by bench.declare",
            commander="U0ALICE01",
        )
        await desk.declare(declaration)
        return None

    async def bare(i: int) -> str | None:
        await client.execute_update_with_start_workflow(
            BareDeclare.opened,
            start_workflow_operation=WithStartWorkflowOperation(
                BareDeclare.run,
                id=f"bare-{run_id}-{i}",
                task_queue=BARE_QUEUE,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            ),
        )
        return None

    n, c, b = args.count, args.concurrency, args.burst
    await timed(post, args.warmup, 1, start=-args.warmup)
    await timed(bare, args.warmup, 1, start=-args.warmup)
    return {
        "API POST /incidents, sequential": await timed(post, n, 1),
        f"API POST /incidents, {c} in flight": await timed(post, n, c, start=n),
        f"API POST /incidents, {b} in flight": await timed(post, n, b, start=2 * n),
        "IncidentDesk.declare in-process, sequential": await timed(declare, n, 1),
        "baseline update-with-start, sequential": await timed(bare, n, 1),
        f"baseline update-with-start, {c} in flight": await timed(bare, n, c, start=n),
        f"baseline update-with-start, {b} in flight": await timed(bare, n, b, start=2 * n),
    }


if __name__ == "__main__":
    run(declare_bench(arguments()))

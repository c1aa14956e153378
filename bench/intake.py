"""Open-loop declarations through the API against a bare workflow, in the same run.

    python -m bench.intake [--rates 10,20,40] [--count 100] [--workers 1,2] [--wait]

For each count in ``--workers``, in turn, starts on free 127.0.0.1 ports a fresh Temporal dev
server, the Slack emulator, that many product workers (``python worker.py``) and as many
baseline workers
(``python -m bench.worker bare``) on their own queues, and the API (``python -m starter.api``).
Then, for each rate, it offers ``--count`` declarations at that rate whatever the answers
(open loop, so a slow answer cannot hide a backlog):

- product: ``POST /incidents`` (``?wait=true`` with ``--wait``): answer = the HTTP answer;
  announcement = when Slack received the incident's announcement, from the emulator's
  record of calls, minus the time the declaration was offered;
- baseline: ``BareIncident`` (bench/bare.py) started by a plain durable ``start_workflow``
  from this process, whose one activity makes the same Slack calls in the same order
  (create, purpose, topic, invite, kickoff, pin, announcement).

"sustained" is declarations announced per second over the span from the first offer to the
last announcement. Every process is stopped by its PID at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
from temporalio.client import Client

from bench.bare import BareIncident, BareIncidentInput
from bench.stack import (
    PYTHON,
    Stack,
    connect,
    percentile,
    run,
    slack_calls,
    wait_for_line,
    write_policy,
)
from workflows.policy import default_policy
from workflows.text import channel_name

QUEUE, BARE_QUEUE = "incidents", "bench-bare"
COMMANDER = "U0ALICE01"
SETTLE = 60.0  # seconds to wait for the last announcements after the last offer


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.intake",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rates", default="10,20", help="declarations offered per second")
    parser.add_argument("--count", type=int, default=100, help="declarations offered per rate")
    parser.add_argument("--workers", default="1", help="workers per task queue, e.g. 1,2")
    parser.add_argument("--wait", action="store_true", help="POST with ?wait=true")
    parser.add_argument(
        "--continue-as-new-once-open",
        action="store_true",
        help="the API's policy sets [history] continue_as_new_once_open",
    )
    parser.add_argument("--logs", type=Path, default=Path(".data/bench/intake"))
    return parser.parse_args()


@dataclass
class Series:
    offered: dict[str, float] = field(default_factory=dict)  # workflow id -> when offered
    answers: list[float] = field(default_factory=list)  # seconds
    refused: Counter[str] = field(default_factory=Counter)
    announced: dict[str, float] = field(default_factory=dict)  # workflow id -> latency
    channels: dict[str, str] = field(default_factory=dict)  # workflow id -> its channel's name
    created: dict[str, float] = field(default_factory=dict)  # workflow id -> to the channel
    worker_cpu: float = 0.0  # seconds, all workers of the series' queue, while it ran
    server_cpu: float = 0.0  # seconds, the dev server, while it ran

    def row(self, label: str) -> str:
        answer = [x * 1000 for x in self.answers]
        announce = [x * 1000 for x in self.announced.values()]
        first = min(self.offered.values(), default=0.0)
        last = max((self.offered[i] + x for i, x in self.announced.items()), default=first)
        sustained = len(announce) / (last - first) if last > first else 0.0
        cells = [percentile(answer, 50), percentile(answer, 99)]
        cells += [percentile(announce, 50), percentile(announce, 99)]
        return (
            f"{label:<26}{len(self.offered):>6}{sum(self.refused.values()):>8}"
            + "".join(f"{c:9.0f}" for c in cells)
            + f"{sustained:10.1f}"
        )


async def offer(rate: float, count: int, call: Callable[[int], Coroutine[Any, Any, None]]) -> None:
    """Start call i at start + i / rate, not waiting for the earlier ones (open loop)."""
    began = time.perf_counter()
    tasks = []
    for i in range(count):
        await asyncio.sleep(max(0.0, began + i / rate - time.perf_counter()))
        tasks.append(asyncio.create_task(call(i)))
    await asyncio.gather(*tasks)


async def announcements(slack_url: str, series: Series) -> None:
    """Fill ``series.announced`` from the emulator, waiting up to SETTLE for stragglers."""
    deadline = time.time() + SETTLE
    while True:
        for call in await slack_calls(slack_url, "chat.postMessage"):
            payload = (call["args"].get("metadata") or {}).get("event_payload") or {}
            workflow_id = payload.get("incident_id")
            if payload.get("key") == "announcement" and workflow_id in series.offered:
                series.announced.setdefault(workflow_id, call["at"] - series.offered[workflow_id])
        by_name = {name: ref for ref, name in series.channels.items()}
        for call in await slack_calls(slack_url, "conversations.create"):
            ref = by_name.get(str(call["args"].get("name", "")))
            if ref is not None and ref in series.offered:
                series.created.setdefault(ref, call["at"] - series.offered[ref])
        pending = len(series.offered) - len(series.announced) - sum(series.refused.values())
        if pending <= 0 or time.time() > deadline:
            return
        await asyncio.sleep(0.5)


async def intake_bench(args: argparse.Namespace) -> None:
    print(f"machine: {platform.node()}, {os.cpu_count()} cores, {platform.platform()}")
    for workers in [int(n) for n in args.workers.split(",")]:
        stack = Stack(args.logs / f"workers-{workers}")
        try:
            await run_stack(args, stack, workers)
        finally:
            stack.close()


async def run_stack(args: argparse.Namespace, stack: Stack, workers: int) -> None:
    server, address = await stack.temporal()
    temporal = [psutil.Process(server.pid)]
    _, slack_url = await stack.slack()
    env = {"TEMPORAL_ADDRESS": address, "SLACK_API_URL": slack_url, "LOG_FORMAT": "json"}
    if args.continue_as_new_once_open:
        policy = default_policy()
        policy.history.continue_as_new_once_open = True
        path = write_policy(policy, stack.log_dir / "policy.toml")
        env["INCIDENT_POLICY_FILE"] = str(path.resolve())
    cpu: dict[str, list[psutil.Process]] = {"product": [], "bare": []}
    for n in range(workers):
        worker = stack.start(
            f"worker-{n}", [PYTHON, "worker.py"], {**env, "INCIDENT_TASK_QUEUE": QUEUE}
        )
        await wait_for_line(worker, "worker_started")
        cpu["product"].append(psutil.Process(worker.pid))
        baseline = stack.start(
            f"bare-worker-{n}",
            [PYTHON, "-m", "bench.worker", "bare"],
            {**env, "INCIDENT_TASK_QUEUE": BARE_QUEUE},
        )
        await wait_for_line(baseline, "ready")
        cpu["bare"].append(psutil.Process(baseline.pid))
    async with stack.api({**env, "INCIDENT_TASK_QUEUE": QUEUE}) as http:
        client = await connect(address)
        broadcast = await broadcast_id(slack_url)
        print(
            f"\n== {workers} worker(s) per queue; wait: {args.wait}; continue as new once open: "
            f"{args.continue_as_new_once_open}; logs in {stack.log_dir}"
        )
        header = f"{'':<26}{'offered':>6}{'refused':>8}"
        header += f"{'ans p50':>9}{'ans p99':>9}{'ann p50':>9}{'ann p99':>9}{'sust/s':>10}"
        for rate in [float(r) for r in args.rates.split(",")]:
            spent, served = cpu_seconds(cpu["product"]), cpu_seconds(temporal)
            product = await product_series(http, args, rate, slack_url)
            product.worker_cpu = cpu_seconds(cpu["product"]) - spent
            product.server_cpu = cpu_seconds(temporal) - served
            spent, served = cpu_seconds(cpu["bare"]), cpu_seconds(temporal)
            bare = await bare_series(client, args, rate, slack_url, broadcast)
            bare.worker_cpu = cpu_seconds(cpu["bare"]) - spent
            bare.server_cpu = cpu_seconds(temporal) - served
            print(f"\n{rate:g}/s offered, {args.count} declarations (ms)\n{header}")
            print(product.row("product POST /incidents"))
            print(bare.row("bare start_workflow"))
            for reason, times in product.refused.items():
                print(f"  product refused {times}x: {reason}")
            ratio(product, bare)


def cpu_seconds(workers: list[psutil.Process]) -> float:
    return sum(sum(p.cpu_times()[:2]) for p in workers)


def ratio(product: Series, bare: Series) -> None:
    per = [1000 * s.worker_cpu / max(len(s.announced), 1) for s in (product, bare)]
    print(f"  worker CPU per declaration: product {per[0]:.0f} ms, bare {per[1]:.0f} ms")
    per = [1000 * s.server_cpu / max(len(s.announced), 1) for s in (product, bare)]
    print(f"  dev server CPU per declaration: product {per[0]:.0f} ms, bare {per[1]:.0f} ms")
    created = [percentile([x * 1000 for x in s.created.values()], 50) for s in (product, bare)]
    print(
        f"  offer -> conversations.create p50: product {created[0]:.0f} ms, bare "
        f"{created[1]:.0f} ms (API, start and first workflow task; the rest is the activity)"
    )
    p, b = list(product.announced.values()), list(bare.announced.values())
    if p and b:
        print(
            f"  announcement product/bare: p50 {percentile(p, 50) / percentile(b, 50):.2f}x, "
            f"p99 {percentile(p, 99) / percentile(b, 99):.2f}x"
        )


async def product_series(
    http: httpx.AsyncClient, args: argparse.Namespace, rate: float, slack_url: str
) -> Series:
    series, tag = Series(), uuid.uuid4().hex[:6]
    params = {"wait": "true"} if args.wait else {}

    async def declare(i: int) -> None:
        body = {"title": f"Intake {tag} {i}", "severity": "sev2", "commander": COMMANDER}
        began, offered = time.perf_counter(), time.time()
        response = await http.post("/incidents", json=body, params=params)
        if response.status_code not in (201, 202):
            series.refused[f"{response.status_code} {response.text[:200]}"] += 1
            return
        series.answers.append(time.perf_counter() - began)
        incident = response.json()
        series.offered[incident["id"]] = offered
        series.channels[incident["id"]] = channel_name(
            "inc-{yymmdd}-{slug}",
            title=body["title"],
            number=incident["number"],
            severity="sev2",
            at=datetime.fromisoformat(incident["declared_at"]),
        )

    await offer(rate, args.count, declare)
    await announcements(slack_url, series)
    return series


async def bare_series(
    client: Client, args: argparse.Namespace, rate: float, slack_url: str, broadcast: str
) -> Series:
    series, tag = Series(), uuid.uuid4().hex[:6]

    async def start(i: int) -> None:
        workflow_id = f"bare-incident-{tag}-{i}"
        request = BareIncidentInput(f"bare-{tag}-{i}", COMMANDER, broadcast)
        began, offered = time.perf_counter(), time.time()
        await client.start_workflow(
            BareIncident.run, request, id=workflow_id, task_queue=BARE_QUEUE
        )
        series.answers.append(time.perf_counter() - began)
        series.offered[workflow_id] = offered
        series.channels[workflow_id] = request.name

    await offer(rate, args.count, start)
    await announcements(slack_url, series)
    return series


async def broadcast_id(slack_url: str) -> str:
    from clients.slack_client import slack_client
    from localslack import BOT_TOKEN

    web = slack_client(BOT_TOKEN, slack_url)
    listed = await web.conversations_list(limit=1000)
    return next(str(c["id"]) for c in listed["channels"] if c["name"] == "incidents")


if __name__ == "__main__":
    run(intake_bench(arguments()))

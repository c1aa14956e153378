"""The cost of on call: "who is on call" for many schedules, and many schedule workflows idling.

    python -m bench.oncall                                  (1,000 schedules, 60 s idle)
    python -m bench.oncall --schedules 50 --idle 10         (a quick check that it works)

Pure: ``on_call``, ``next_handoff`` and four weeks of ``shifts`` over every roster (weekly and
daily rotations in several zones, half with a weekend layer, two overrides each). Then a dev
server, the emulator and two worker processes (``python -m bench.worker product`` and
``bare``): the product's ``ensure_oncall_schedules`` starts one ``ScheduleWorkflow`` per
schedule (each announces its first handoff by DM) and the same number of ``BareTimer``
workflows wait a week on the bare worker (its module passed through the sandbox, as the
product's are). Both workers are sampled once settled and while idle (RSS, CPU),
then "who is on call" is answered for every schedule through ``roster()`` queries.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
from temporalio.client import Client

from bench.bare import BareTimer, TimerInput
from bench.stack import (
    PYTHON,
    Sampler,
    Stack,
    connect,
    mib,
    percentile,
    psutil_rss,
    run,
    slack_calls,
    wait_for_line,
)
from config.deployment import ensure_oncall_schedules
from workflows.oncall.rotation import Roster, ScheduleWorkflow, schedule_workflow_id
from workflows.oncall.schedules import Override, Schedule, next_handoff, on_call, shifts
from workflows.policy import Policy

QUEUE, BARE_QUEUE = "oncall-bench", "oncall-bare"
ZONES = ("Europe/Paris", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "UTC")
QUIET = 2.0  # percent of a core: a worker this busy is idle
PEOPLE = ("U0ALICE01", "U0BOB0002", "U0CAROL03", "U0DAVE004", "U0ERIN005")


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.oncall", description=__doc__)
    parser.add_argument("--schedules", type=int, default=1000)
    parser.add_argument("--idle", type=float, default=60.0, help="seconds sampled while idle")
    parser.add_argument("--concurrency", type=int, default=50, help="queries in flight")
    parser.add_argument("--logs", type=Path, default=None)
    return parser.parse_args()


def schedule(n: int) -> Schedule:
    """Weekly or daily, in one of five zones; every other one with a weekend layer."""
    people = [PEOPLE[(n + k) % len(PEOPLE)] for k in range(3 + n % 3)]
    layers: list[dict[str, object]] = [
        {"people": people, "shift": "1w" if n % 2 else "1d", "start": "2026-01-05T09:00:00"}
    ]
    if n % 2 == 0:
        weekend = {"people": people[::-1], "shift": "1w", "start": "2026-01-03T00:00:00"}
        layers.append({**weekend, "restrictions": ["weekends"]})
    return Schedule.model_validate({"timezone": ZONES[n % len(ZONES)], "layers": layers})


def overrides(n: int, now: datetime) -> list[Override]:
    return [
        Override(
            id=str(k),
            user=PEOPLE[k],
            start=now + k * timedelta(days=3),
            end=now + timedelta(days=3 * k + 1),
        )
        for k in (1, 2)
    ]


def pure_phase(count: int) -> None:
    now = datetime.now(UTC)
    rosters = [(schedule(n), overrides(n, now)) for n in range(count)]
    for label, answer in (
        ("on_call", lambda s, o: on_call(s, o, now)),
        ("next_handoff", lambda s, o: next_handoff(s, o, now)),
        ("shifts, 4 weeks", lambda s, o: shifts(s, o, now, now + timedelta(weeks=4))),
    ):
        began = time.perf_counter()
        for s, o in rosters:
            answer(s, o)
        took = time.perf_counter() - began
        print(
            f"  pure {label:<16} {count} schedules in {took * 1000:7.1f} ms "
            f"({took / count * 1e6:6.0f} µs each)"
        )


async def wait_count(
    probe: Callable[[], Awaitable[int]], wanted: int, what: str, timeout: float = 600.0
) -> float:
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if await probe() >= wanted:
            return time.monotonic() - began
        await asyncio.sleep(0.5)
    raise TimeoutError(f"{what}: fewer than {wanted} within {timeout:.0f}s")


async def settle(process: psutil.Process, timeout: float = 600.0) -> float:
    """Seconds until the process uses under QUIET% of a core for three seconds running."""
    began, calm = time.monotonic(), 0
    while calm < 3 and time.monotonic() - began < timeout:
        busy = await asyncio.to_thread(process.cpu_percent, 1.0)
        calm = calm + 1 if busy < QUIET else 0
    return time.monotonic() - began


async def stack_phase(args: argparse.Namespace, logs: Path) -> None:
    count = args.schedules
    stack = Stack(logs)
    try:
        _, address = await stack.temporal()
        _, slack_url = await stack.slack()
        env = {"TEMPORAL_ADDRESS": address, "SLACK_API_URL": slack_url, "LOG_FORMAT": "json"}
        product = stack.start(
            "worker",
            [PYTHON, "-m", "bench.worker", "product"],
            {**env, "INCIDENT_TASK_QUEUE": QUEUE},
        )
        bare = stack.start(
            "bare",
            [PYTHON, "-m", "bench.worker", "bare", "--passthrough", "bench"],
            {**env, "INCIDENT_TASK_QUEUE": BARE_QUEUE},
        )
        await wait_for_line(product, "ready")
        await wait_for_line(bare, "ready")
        client = await connect(address)
        workers = {"product": product.pid, "bare": bare.pid}
        before = {name: psutil_rss(psutil.Process(pid)) for name, pid in workers.items()}
        policy = Policy.model_validate(
            {"severities": {"sev1": {}}, "schedules": {f"s{n}": schedule(n) for n in range(count)}}
        )
        began = time.monotonic()
        await ensure_oncall_schedules(client, QUEUE, policy)
        kept = time.monotonic() - began

        async def dms() -> int:
            return len(await slack_calls(slack_url, "chat.postMessage"))

        announced = await wait_count(dms, count, "first handoff DMs")
        print(
            f"  {count} schedule workflows started by ensure_oncall_schedules in {kept:.1f} s; "
            f"first handoffs announced {announced:.1f} s later"
        )
        began = time.monotonic()
        week = TimerInput(every=7 * 86400, channel_id="C0INCIDENTS")
        for n in range(0, count, args.concurrency):
            await asyncio.gather(
                *(
                    client.start_workflow(
                        BareTimer.run, week, id=f"bare-{k}", task_queue=BARE_QUEUE
                    )
                    for k in range(n, min(n + args.concurrency, count))
                )
            )
        print(f"  {count} bare timer workflows started in {time.monotonic() - began:.1f} s")
        for name, pid in workers.items():  # until their first workflow tasks are done
            settled = await settle(psutil.Process(pid))
            print(f"  {name} worker settled (under {QUIET}% of a core) after {settled:.0f} s")
        async with Sampler(workers) as sampler:
            start = time.time()
            await asyncio.sleep(args.idle)
            cpu = sampler.window(start, time.time())
        for name, pid in workers.items():
            rss = psutil_rss(psutil.Process(pid))
            per = (rss - before[name]) / count / 1024
            print(
                f"  idle {name:<8} worker: RSS {mib(rss)} ({mib(before[name])} before; "
                f"{per:.0f} KiB per workflow), CPU {cpu[name]:.1f}% of a core "
                f"over {args.idle:.0f} s"
            )
        await query_phase(client, count, args.concurrency)
    finally:
        stack.close()


async def query_phase(client: Client, count: int, concurrency: int) -> None:
    latencies: list[float] = []
    answered: list[str | None] = []

    async def ask(n: int) -> None:
        began = time.perf_counter()
        handle = client.get_workflow_handle(schedule_workflow_id(f"s{n}"))
        roster: Roster = await handle.query(ScheduleWorkflow.roster)
        shift = on_call(roster.schedule, roster.overrides, datetime.now(UTC))
        latencies.append(time.perf_counter() - began)
        answered.append(shift.user if shift else None)

    began = time.monotonic()
    for n in range(0, count, concurrency):
        await asyncio.gather(*(ask(k) for k in range(n, min(n + concurrency, count))))
    took = time.monotonic() - began
    print(
        f"  roster() + on_call for {count} schedules: {took:.1f} s ({count / took:.0f}/s, "
        f"{concurrency} in flight); one answer p50 {percentile(latencies, 50) * 1000:.0f} ms, "
        f"p99 {percentile(latencies, 99) * 1000:.0f} ms; {answered.count(None)} with nobody"
    )


async def main(args: argparse.Namespace) -> None:
    logs = args.logs or Path(tempfile.mkdtemp(prefix="bench-oncall-"))
    print(f"bench.oncall: {args.schedules} schedules, {os.cpu_count()} cores; logs in {logs}")
    pure_phase(args.schedules)
    await stack_phase(args, logs)


if __name__ == "__main__":
    run(main(arguments()))

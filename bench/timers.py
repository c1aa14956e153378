"""Cadence timers on one worker: lateness, fire-rate ceiling, memory; product against baseline.

    python -m bench.timers                 # the full run (about 40 minutes)
    python -m bench.timers --quick         # a smoke check (about 2 minutes)
    python -m bench.timers --phases steady --incidents 5000 --rate 20

Each phase, for the product and then for the baseline, starts a fresh stack on free 127.0.0.1
ports: the Temporal dev server, the Slack emulator (``python -m localslack``) and one worker
process (``python -m bench.worker product|bare``: ``worker.build_worker`` or the bare one).

- product: incidents declared through ``IncidentDesk.declare`` (a durable start and the
  ``opening`` Update waiting for the channel, in one update-with-start), ``--concurrency`` in
  flight; each carries a policy whose ``update_every`` (whole seconds, so incidents opened close
  together share a policy, as a worker's incidents do) puts its first reminder at a planned
  time. A reminder is the ``chat.postMessage`` whose metadata key starts with
  ``update_due-``/``update_overdue-``; its due time is ``declared_at + n * update_every``
  (declared_at from the returned state).
- baseline: ``BareTimer`` (bench/bare.py), started by update-with-start like an incident (its
  update answers from the first workflow task), ``--concurrency`` in flight: the same
  ``wait_condition(lambda: False, timeout=due - now)`` timer, due at start + n * cadence,
  then one activity posting a text message to the emulator with the product's slack_sdk
  client (``clients.slack_client.slack_client``); the due time rides in the message metadata.

Lateness = the time the emulator received the reminder minus its due time. Due times are
spread evenly (incident j fires at start + j / rate); no incident fires twice in a phase.
A timer is set when the workflow task that starts it completes, so a task slowed by a busy
worker while opening sets its timer that much late ("set" in the report): --fire-concurrency
opens the incidents that fire with fewer declarations in flight, which keeps the opening's load
out of the fire rate measured. --bare-opening gives the baseline an opening activity before its
timer, as an incident opens its channel (bench.replay's baseline).
The worker runs with build_worker's options unless --max-cached-workflows or
--max-concurrent-workflow-tasks say otherwise (the baseline's worker gets the same). The
product's worker passes every module through the sandbox (worker.WORKFLOW_RUNNER); the
baseline's runs in the SDK's default sandbox unless --passthrough names its modules (bench), or
is all: the product worker's own runner.

Phases:
  steady    --incidents incidents, firing at --rate per second (issue 3, benchmark 1):
            lateness p50/p99, worker RSS, worker CPU while nothing is due.
  steps     fire rates --steps (per second) for --window seconds each, --gap apart, with
            --capacity open incidents in all (the rest idle; benchmark 2 and 3): lateness
            per rate, CPU of worker and dev server, SDK counters (workflow tasks, sticky
            cache hits and misses), worker RSS with that many incidents open.
            With --restart-after S, every worker process is stopped S seconds into the
            first rate (SIGTERM, a deploy; --restart-signal kill for a crash) and started
            again --down seconds later (a cold start: empty caches, every firing incident
            replayed); the report says how long after the workers were back every due timer
            fired on time again (lateness under 1 s).

    python -m bench.timers --phases steps --capacity 10000 --steps 20 --window 60 --restart-after 20
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from temporalio.client import Client

from bench.stack import (
    PYTHON,
    Proc,
    Sampler,
    Stack,
    connect,
    free_port,
    mib,
    psutil_rss,
    run,
    slack_calls,
    wait_for_line,
)
from bench.timer_plan import (
    MARGIN,
    POST_ACTIVITY,
    PY_SPY,
    QUEUE,
    SAMPLE,
    Opener,
    PhaseResult,
    Plan,
    Step,
    StepResult,
    bare_opener,
    open_all,
    product_opener,
)
from bench.timer_readings import Profiler, Reminder, breakdown, diff, metrics, reminders
from bench.timer_report import report


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.timers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--phases", default="steady,steps", help="steady,steps (default: both)")
    add("--kinds", default="product,bare", help="product,bare (default: both)")
    add("--incidents", type=int, default=5000, help="steady: open incidents, each firing once")
    add("--rate", type=float, default=20, help="steady: fires per second")
    add("--steps", default="20,40,60,80", help="steps: fire rates per second")
    add("--window", type=float, default=30, help="steps: seconds at each rate")
    add("--gap", type=float, default=15, help="steps: seconds with nothing due between rates")
    add("--capacity", type=int, default=10000, help="steps: open incidents in all")
    add(
        "--concurrency",
        type=int,
        default=10,
        help="declarations in flight",
    )
    add(
        "--fire-concurrency",
        type=int,
        default=None,
        help="declarations in flight for the incidents that fire (default: --concurrency); "
        "fewer keeps the opening's load out of the timers they set",
    )
    add("--warmup", type=int, default=200, help="idle incidents at least, opened first")
    add("--quiet", type=float, default=20, help="seconds with nothing due before the first fire")
    add("--drain", type=float, default=180, help="max seconds to wait for late reminders")
    add("--profile", type=float, default=None, help="py-spy the worker at this step rate")
    add("--profile-rate", type=int, default=50, help="py-spy samples per second")
    add("--max-cached-workflows", type=int, default=None, help="worker option (else default)")
    add("--max-concurrent-workflow-tasks", type=int, default=None, help="worker option")
    add(
        "--passthrough",
        default=None,
        help="the baseline's sandbox takes these modules as they are, e.g. bench (as the "
        "product's worker does with every module); else the SDK's default sandbox",
    )
    add(
        "--bare-opening",
        action="store_true",
        help="the baseline runs one activity before its timer, as an incident opens its channel "
        "(bench.replay's baseline)",
    )
    add("--unsandboxed", action="store_true", help="both workers run workflows unsandboxed")
    add("--workers", default="1", help="worker processes on the queue, each side; 1,2: both")
    add(
        "--continue-as-new-once-open",
        action="store_true",
        help="product: the policy's [history] option (a short history once opened)",
    )
    add(
        "--restart-after",
        type=float,
        default=None,
        help="steps: SIGKILL every worker this many seconds into the first rate, then restart",
    )
    add("--down", type=float, default=0.0, help="with --restart-after: seconds without workers")
    add("--restart-signal", choices=("term", "kill"), default="term", help="how workers stop")
    add("--quick", action="store_true", help="a small run for smoke checks")
    add("--logs", type=Path, default=Path(".data/bench/timers"))
    args = parser.parse_args()
    if args.profile is not None and not PY_SPY:
        parser.error("--profile needs py-spy on PATH or in this Python's bin (pip install py-spy)")
    if args.quick:
        args.incidents, args.rate, args.steps, args.window = 100, 20, "20,40", 5
        args.gap, args.capacity, args.quiet, args.drain, args.warmup = 3, 0, 5, 30, 20
    return args


# -- one phase -----------------------------------------------------------------------------


@dataclass
class Rig:
    """One phase's running parts, as the measurement sees them."""

    kind: str
    client: Client
    opener: Opener
    sampler: Sampler
    worker: psutil.Process
    metrics_port: int
    slack_url: str
    workers: list[Proc] = field(default_factory=list)
    # The SDK counters of worker processes killed by a cold start, so the sums run on.
    offset: dict[str, float] = field(default_factory=dict)

    async def metrics(self) -> dict[str, float]:
        now = await metrics(self.metrics_port)
        return {k: now.get(k, 0) + self.offset.get(k, 0) for k in {*now, *self.offset}}

    async def restart(self, down: float, crash: bool) -> tuple[float, float]:
        """Stop every worker (SIGTERM, or SIGKILL for a crash), wait ``down`` seconds, start
        them again: (when stopping began, when all were ready)."""
        self.offset = await self.metrics()
        killed = time.time()
        for proc in self.workers:
            await asyncio.to_thread(proc.kill if crash else proc.stop)
        await asyncio.sleep(down)
        for proc in self.workers:
            proc.start()
        for proc in self.workers:
            await proc.wait_for_output("ready", timeout=120)
        self.worker = psutil.Process(self.workers[0].pid)
        self.sampler.procs["worker"] = self.worker
        return killed, time.time()


async def run_phase(
    args: argparse.Namespace, kind: str, plan: Plan, workers: int = 1
) -> PhaseResult:
    plan = copy.deepcopy(plan)  # its steps get this phase's start times
    result = PhaseResult(kind, plan, workers)
    stack = Stack(args.logs / f"{plan.name}-{kind}-{workers}")
    try:
        temporal, address = await stack.temporal()
        slack, slack_url = await stack.slack()
        metrics_port = free_port()
        argv = [PYTHON, "-m", "bench.worker", kind]
        for option in ("max_cached_workflows", "max_concurrent_workflow_tasks"):
            if getattr(args, option) is not None:
                argv += ["--" + option.replace("_", "-"), str(getattr(args, option))]
        if args.passthrough and kind == "bare":  # the product passes every module through
            argv += ["--passthrough", args.passthrough]
        if args.unsandboxed:
            argv.append("--unsandboxed")
        env = {
            "TEMPORAL_ADDRESS": address,
            "SLACK_API_URL": slack_url,
            "INCIDENT_TASK_QUEUE": QUEUE,
            "LOG_FORMAT": "json",
        }
        worker = stack.start("worker", [*argv, "--metrics-port", str(metrics_port)], env)
        await wait_for_line(worker, "ready")
        # More workers on the same queue (--workers): CPU and RSS columns are the first one's.
        procs_on_queue = [worker]
        for n in range(2, workers + 1):
            other = stack.start(f"worker-{n}", argv, env)
            await wait_for_line(other, "ready")
            procs_on_queue.append(other)
        client = await connect(address)
        if kind == "product":
            opener = product_opener(client, result, args.continue_as_new_once_open)
        else:
            opener = await bare_opener(client, slack_url, args.bare_opening)
        procs = {"worker": worker.pid, "temporal": temporal.pid, "slack": slack.pid}
        async with Sampler({**procs, "bench": os.getpid()}) as sampler:
            process = psutil.Process(worker.pid)
            rig = Rig(
                kind, client, opener, sampler, process, metrics_port, slack_url, procs_on_queue
            )
            opened = await open_phase(args, plan, result, rig)
            snapshots = await fire_phase(args, plan, result, rig)
            await read_phase(args, plan, result, rig, opened, snapshots)
    finally:
        stack.close()
    return result


async def open_phase(
    args: argparse.Namespace, plan: Plan, result: PhaseResult, rig: Rig
) -> dict[str, tuple[float, float, float]]:
    """Open every incident, idle ones first, then the firing ones with their planned due times;
    wait until the first is due.

    The idle ones tell how fast incidents open, so the first due time leaves room to open
    the rest (with a margin), plus --quiet seconds with nothing due.
    """
    say = _say(result.label, plan.name)
    idle = plan.population - plan.fires
    gentle = args.fire_concurrency or args.concurrency
    probe = min(idle // 2, 200) if gentle < args.concurrency else 0
    began = time.time()
    await open_all(rig.opener, [None] * (idle - probe), args.concurrency, result)
    rate = (idle - probe) / (time.time() - began)
    if probe:  # the last idle ones at the firing ones' pace tell how long those will take
        probed = time.time()
        await open_all(rig.opener, [None] * probe, gentle, result, first=idle - probe)
        rate = probe / (time.time() - probed)
    # No earlier than the schedule's length: no incident can fire twice within it.
    start = time.time() + max(MARGIN * plan.fires / rate, plan.length) + args.quiet
    say(
        f"{idle} idle opened ({rate:.0f}/s at the firing ones' pace); {plan.fires} to fire, "
        f"the first in {start - time.time():.0f}s"
    )
    dues = plan.schedule(start)
    opened = await open_all(rig.opener, list(dues), gentle, result, first=idle)
    declared = time.time()
    result.open = idle + len(dues)
    result.declare_seconds = declared - began
    result.rss_declared = psutil_rss(rig.worker)
    result.open_cpu = rig.sampler.window(began, declared)
    say(f"{result.open} open in {result.declare_seconds:.0f}s, RSS {mib(result.rss_declared)}")
    if declared > start - 5:
        say(f"WARNING: opening overran the plan by {declared - start + 5:.0f}s")
    quiet_from = declared + 3
    await asyncio.sleep(max(start - 1 - time.time(), 0))
    result.quiet_seconds = max(start - 1 - quiet_from, 0)
    result.quiet_cpu = rig.sampler.window(quiet_from, start - 1)
    return opened


async def fire_phase(
    args: argparse.Namespace, plan: Plan, result: PhaseResult, rig: Rig
) -> list[dict[str, float]]:
    """Sit through the steps; the SDK counters of each, py-spy on one if asked."""
    before = await rig.metrics()
    snapshots = []
    for index, step in enumerate(plan.steps):
        await asyncio.sleep(max(step.start - time.time(), 0))
        if index == 0 and args.restart_after is not None:
            await asyncio.sleep(args.restart_after)
            result.cold_start = await rig.restart(args.down, args.restart_signal == "kill")
            _say(result.label, plan.name)(
                f"workers stopped, back after {result.cold_start[1] - result.cold_start[0]:.1f}s"
            )
        profiler = None
        if args.profile == step.rate:  # (arguments() refuses --profile without py-spy)
            phase = f"{plan.name}-{rig.kind}-{result.workers}"
            out = args.logs / phase / f"py-spy-{step.rate:g}.txt"
            profiler = Profiler(rig.worker.pid, step.window, out, args.profile_rate)
        await asyncio.sleep(max(step.end - time.time(), 0))
        after = await rig.metrics()
        snapshots.append(diff(after, before))
        before = after
        if profiler:
            profiler.stop()
            result.profile = profiler.top()
        _say(result.label, plan.name)(f"{step.rate:g}/s for {step.window:g}s done")
    return snapshots


async def read_phase(
    args: argparse.Namespace,
    plan: Plan,
    result: PhaseResult,
    rig: Rig,
    opened: dict[str, tuple[float, float, float]],
    snapshots: list[dict[str, float]],
) -> None:
    """Wait for late reminders (until each firing incident posted once, nothing was posted for
    10 s, or --drain ran out), then read lateness off the emulator's record and its breakdown
    off a sample of histories."""
    key = f"temporal_activity_execution_latency_count[{POST_ACTIVITY[rig.kind]}]"
    posted = sum(s.get(key, 0) for s in snapshots)
    before = (await rig.metrics()).get(key, 0) - posted
    deadline, last, changed = time.time() + args.drain, posted, time.time()
    while time.time() < deadline and last < len(opened) and time.time() - changed < 10:
        await asyncio.sleep(2)
        now = (await rig.metrics()).get(key, 0) - before
        if now != last:
            last, changed = now, time.time()
    result.rss_end = psutil_rss(rig.worker)
    result.rss_peak = max(s.rss.get("worker", 0) for s in rig.sampler.samples)
    received = reminders(await slack_calls(rig.slack_url, "chat.postMessage"), opened)
    result.extra = sum(1 for r in received if r.n > 1)
    if result.cold_start is not None:
        result.recovery = recovery(received, *result.cold_start)
    for step, counters in zip(plan.steps, snapshots, strict=True):
        firsts = sorted(
            (r for r in received if r.n == 1 and step.start <= r.planned < step.end),
            key=lambda r: r.planned,
        )
        expected = sum(1 for *_, planned in opened.values() if step.start <= planned < step.end)
        stages = await breakdown(rig.client, firsts[:: max(len(firsts) // SAMPLE, 1)])
        result.steps.append(
            StepResult(
                step,
                [r.at - r.due for r in firsts],
                expected - len(firsts),
                rig.sampler.window(step.start, step.end),
                counters,
                stages,
            )
        )


def recovery(received: list[Reminder], killed: float, ready: float) -> tuple[float, int]:
    """After a cold start: seconds from the workers being back until the last reminder that
    came a second or more late (0 if none did), and how many first reminders were that late."""
    late = [r for r in received if r.n == 1 and r.due >= killed - 1 and r.at - r.due >= 1]
    if not late:
        return 0.0, 0
    return max(0.0, max(r.at for r in late) - ready), len(late)


def _say(kind: str, phase: str) -> Callable[[str], None]:
    def say(text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')} {phase} {kind}] {text}", flush=True)

    return say


async def main(args: argparse.Namespace) -> None:
    plans = []
    phases = args.phases.split(",")
    if "steady" in phases:  # all but the first --warmup incidents fire
        steady = Step(args.rate, (args.incidents - args.warmup) / args.rate)
        plans.append(Plan("steady", [steady], args.incidents))
    if "steps" in phases:
        steps = [Step(float(r), args.window) for r in args.steps.split(",")]
        fires = sum(s.count for s in steps)
        plans.append(Plan("steps", steps, max(args.capacity, fires + args.warmup), args.gap))
    results = []
    for plan in plans:
        for workers in [int(n) for n in args.workers.split(",")]:
            for kind in args.kinds.split(","):
                results.append(await run_phase(args, kind, plan, workers))
    report(results)


if __name__ == "__main__":
    run(main(arguments()))

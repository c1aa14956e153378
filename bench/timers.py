"""Cadence timers on one worker: lateness, fire-rate ceiling, memory; product against baseline.

    python -m bench.timers                 # the full run (about 40 minutes)
    python -m bench.timers --quick         # a smoke check (about 2 minutes)
    python -m bench.timers --phases steady --incidents 5000 --rate 20

Each phase, for the product and then for the baseline, starts a fresh stack on free 127.0.0.1
ports: the Temporal dev server, the Slack emulator (``python -m localslack``) and one worker
process (``python -m bench.worker product|bare``: ``worker.build_worker`` or the bare one).

- product: incidents declared through ``IncidentDesk.declare`` (a durable start, then the
  ``opening`` Update waiting for the channel), ``--concurrency`` in flight; each carries a
  policy whose ``update_every`` puts its first reminder at a planned time. A reminder is the
  ``chat.postMessage`` whose metadata key starts with ``update_due-``/``update_overdue-``; its
  due time is ``declared_at + n * update_every`` (declared_at from the returned state).
- baseline: ``BareTimer`` (bench/bare.py), started by update-with-start like an incident (its
  update answers from the first workflow task), ``--concurrency`` in flight: the same
  ``wait_condition(lambda: False, timeout=due - now)`` timer, due at start + n * cadence,
  then one activity posting a text message to the emulator with the product's slack_sdk
  client (``activities.slack.slack_client``); the due time rides in the message metadata.

Lateness = the time the emulator received the reminder minus its due time. Due times are
spread evenly (incident j fires at start + j / rate); no incident fires twice in a phase.
The worker runs with build_worker's options unless --max-cached-workflows,
--max-concurrent-workflow-tasks or --passthrough say otherwise (the baseline's worker gets
the same).

Phases:
  steady    --incidents incidents, firing at --rate per second (issue 3, benchmark 1):
            lateness p50/p99, worker RSS, worker CPU while nothing is due.
  steps     fire rates --steps (per second) for --window seconds each, --gap apart, with
            --capacity open incidents in all (the rest idle; benchmark 2 and 3): lateness
            per rate, CPU of worker and dev server, SDK counters (workflow tasks, sticky
            cache hits and misses), worker RSS with that many incidents open.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import math
import os
import random
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from bench.bare import BareTimer, TimerInput
from bench.stack import (
    PYTHON,
    Sampler,
    Stack,
    connect,
    free_port,
    mib,
    percentile,
    psutil_rss,
    run,
    slack_calls,
    wait_for_line,
)
from localslack import BOT_TOKEN
from starter.desk import IncidentDesk
from workflows.models import Declaration
from workflows.policy import Policy, default_policy

QUEUE = "bench-timers"
REMINDER = ("update_due-", "update_overdue-")
IDLE_EVERY = 86400.0  # idle incidents: a cadence far beyond the run
PY_SPY = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.prefix, "bin")))
MARGIN = 1.3  # planned time to open the firing incidents, over what the idle ones took
SAMPLE = 100  # reminders per step whose history says where their lateness went
RETRIED = ("in-flight updates", "update was aborted")
POST_ACTIVITY = {"product": "slack_post_message", "bare": "bare_post"}


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
    add("--warmup", type=int, default=200, help="idle incidents at least, opened first")
    add("--quiet", type=float, default=20, help="seconds with nothing due before the first fire")
    add("--drain", type=float, default=180, help="max seconds to wait for late reminders")
    add("--profile", type=float, default=None, help="py-spy the worker at this step rate")
    add("--max-cached-workflows", type=int, default=None, help="worker option (else default)")
    add("--max-concurrent-workflow-tasks", type=int, default=None, help="worker option")
    add("--passthrough", default=None, help="sandbox passthrough modules, e.g. workflows")
    add("--unsandboxed", action="store_true", help="both workers run workflows unsandboxed")
    add("--workers", type=int, default=1, help="worker processes on the queue, each side")
    add("--quick", action="store_true", help="a small run for smoke checks")
    add("--logs", type=Path, default=Path(".data/bench/timers"))
    args = parser.parse_args()
    if args.quick:
        args.incidents, args.rate, args.steps, args.window = 100, 20, "20,40", 5
        args.gap, args.capacity, args.quiet, args.drain, args.warmup = 3, 0, 5, 30, 20
    return args


# -- the plan ------------------------------------------------------------------------------


@dataclass
class Step:
    rate: float
    window: float
    start: float = 0.0  # epoch seconds, fixed once the phase knows when firing begins

    @property
    def end(self) -> float:
        return self.start + self.window

    @property
    def count(self) -> int:
        return round(self.rate * self.window)


@dataclass
class Plan:
    name: str
    steps: list[Step]
    population: int  # open incidents in all: firing ones and idle ones
    gap: float = 0.0

    @property
    def fires(self) -> int:
        return sum(s.count for s in self.steps)

    @property
    def length(self) -> float:
        return sum(s.window for s in self.steps) + self.gap * (len(self.steps) - 1)

    def schedule(self, start: float) -> list[float]:
        """Each firing incident's due time, in order."""
        due: list[float] = []
        for step in self.steps:
            step.start = start
            due += [start + i / step.rate for i in range(step.count)]
            start = step.end + self.gap
        return due


@dataclass
class StepResult:
    step: Step
    lateness: list[float]  # seconds, received reminders due in the step
    missing: int  # due in the step, never received
    cpu: dict[str, float]
    counters: dict[str, float]
    stages: dict[str, list[float]] = field(default_factory=dict)

    def p(self, q: float) -> float:
        values = self.lateness + [math.inf] * self.missing
        return percentile(values, q)


@dataclass
class PhaseResult:
    kind: str
    plan: Plan
    open: int = 0
    declare_seconds: float = 0.0
    declare_latency: list[float] = field(default_factory=list)
    slipped: int = 0  # declared too late to be due on plan
    extra: int = 0  # second reminders of an incident (none if the plan holds)
    refused: Counter[str] = field(default_factory=Counter)  # registry Update errors, retried
    rss_declared: int = 0
    rss_end: int = 0
    rss_peak: int = 0
    quiet_seconds: float = 0.0
    open_cpu: dict[str, float] = field(default_factory=dict)
    quiet_cpu: dict[str, float] = field(default_factory=dict)
    steps: list[StepResult] = field(default_factory=list)
    profile: list[tuple[str, float]] = field(default_factory=list)


# -- opening incidents ---------------------------------------------------------------------


def cadence_policy(every: float) -> Policy:
    """The default policy, but with this update cadence, no escalation and no broadcast."""
    data = default_policy().model_dump()
    for severity in data["severities"].values():
        severity.update(update_every=every, escalation=[], missed_update_broadcast=False)
    return Policy.model_validate(data)


Opener = Callable[[int, float], Awaitable[tuple[str, float]]]


def product_opener(client: Client, result: PhaseResult) -> Opener:
    async def declare(i: int, every: float) -> tuple[str, float]:
        desk = IncidentDesk(client, QUEUE, cadence_policy(every))
        declaration = Declaration(
            title=f"Timer bench {i}",
            severity="sev2",
            summary="Declared by bench.timers",
            commander="U0ALICE01",
        )
        while True:
            try:
                state, _ = await desk.declare(declaration)
                return state.id, state.declared_at.timestamp()
            except RPCError as error:
                # Every declaration is an Update on the one registry workflow. The server
                # allows 10 Updates in flight per workflow, and aborts those in flight when
                # the registry starts or continues as new: the desk passes both errors up.
                reason = next((r for r in RETRIED if r in error.message), None)
                if reason is None:
                    raise
                result.refused[reason] += 1
                await asyncio.sleep(random.uniform(0.05, 0.25))

    return declare


async def bare_opener(client: Client, slack_url: str) -> Opener:
    slack = AsyncWebClient(token=BOT_TOKEN, base_url=slack_url)
    channels = (await slack.conversations_list(limit=1000))["channels"]
    channel_id = next(c["id"] for c in channels if c["name"] == "incidents")

    async def start(i: int, every: float) -> tuple[str, float]:
        workflow_id = f"bare-timer-{i}"
        started = await client.execute_update_with_start_workflow(
            BareTimer.started,
            start_workflow_operation=WithStartWorkflowOperation(
                BareTimer.run,
                TimerInput(every, channel_id),
                id=workflow_id,
                task_queue=QUEUE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            ),
        )
        return workflow_id, started

    return start


async def open_all(
    opener: Opener,
    plans: list[float | None],
    concurrency: int,
    result: PhaseResult,
    first: int = 0,
) -> dict[str, tuple[float, float, float]]:
    """Open one incident per entry, in order: a due time (epoch) or None for an idle one.

    Returns workflow id -> (declared_at, cadence, planned due) for the firing ones.
    """
    opened: dict[str, tuple[float, float, float]] = {}
    queue = iter(enumerate(plans, start=first))

    async def pool() -> None:
        for i, due in queue:
            began = time.time()
            every = IDLE_EVERY if due is None else due - began
            if due is not None and every < 2:
                # Opened too late for its planned time: it stays idle, it does not fire late.
                result.slipped += 1
                every, due = IDLE_EVERY, None
            workflow_id, declared_at = await opener(i, every)
            result.declare_latency.append(time.time() - began)
            if len(result.declare_latency) % 1000 == 0:
                print(f"  {len(result.declare_latency)} opened", flush=True)
            if due is not None:
                opened[workflow_id] = (declared_at, every, due)

    await asyncio.gather(*(pool() for _ in range(concurrency)))
    return opened


# -- reading what happened -----------------------------------------------------------------


async def metrics(port: int) -> dict[str, float]:
    """The worker's SDK counters and histogram sums and counts, summed over labels."""
    totals: dict[str, float] = defaultdict(float)
    async with httpx.AsyncClient(timeout=10) as http:
        text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    for line in text.splitlines():
        if line.startswith("#") or "_bucket" in line or not line.startswith("temporal_"):
            continue
        name_labels, _, value = line.rpartition(" ")
        name = name_labels.split("{")[0]
        if "activity_type=" in name_labels:
            activity = name_labels.split('activity_type="')[1].split('"')[0]
            totals[f"{name}[{activity}]"] += float(value)
        totals[name] += float(value)
    return dict(totals)


def diff(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items()}


@dataclass
class Reminder:
    planned: float  # when the plan wanted the incident's first reminder (assigns the step)
    due: float  # when it was due: declared_at + n * update_every (or the baseline's own)
    at: float  # when the emulator received it
    n: int  # 1 for the incident's first reminder
    incident: str = ""


def reminders(calls: list[dict], opened: dict[str, tuple[float, float, float]]) -> list[Reminder]:
    """Every reminder the emulator received from a firing incident."""
    seen: Counter[str] = Counter()
    found = []
    for call in sorted(calls, key=lambda c: c["at"]):
        payload = (call["args"].get("metadata") or {}).get("event_payload") or {}
        incident = payload.get("incident_id")
        if not str(payload.get("key", "")).startswith(REMINDER) or incident not in opened:
            continue
        seen[incident] += 1
        declared_at, every, planned = opened[incident]
        due = float(payload.get("due", declared_at + seen[incident] * every))
        found.append(Reminder(planned, due, call["at"], seen[incident], incident))
    return found


STAGES = {
    "set": "when the timer was set to fire (timer started + its timeout) - due",
    "timer": "timer fired - when it was set to fire",
    "task": "activity scheduled - timer fired (workflow task)",
    "queue": "activity started - scheduled",
    "slack": "Slack received - activity started",
}


async def breakdown(client: Client, sample: list[Reminder]) -> dict[str, list[float]]:
    """Where the lateness of these first reminders went, read off their workflow histories."""
    stages: dict[str, list[float]] = {stage: [] for stage in STAGES}
    gate = asyncio.Semaphore(10)

    async def one(r: Reminder) -> None:
        async with gate:
            handle = client.get_workflow_handle(r.incident)
            events = [e async for e in handle.fetch_history_events()]
        at = {e.event_id: e.event_time.ToNanoseconds() / 1e9 for e in events}
        fired = next(
            e
            for e in events
            if e.HasField("timer_fired_event_attributes") and at[e.event_id] >= r.due - 0.1
        )
        scheduled = next(
            e
            for e in events
            if e.event_id > fired.event_id
            and e.HasField("activity_task_scheduled_event_attributes")
        )
        started = next(
            e
            for e in events
            if e.HasField("activity_task_started_event_attributes")
            and e.activity_task_started_event_attributes.scheduled_event_id == scheduled.event_id
        )
        timer = next(
            e for e in events if e.event_id == fired.timer_fired_event_attributes.started_event_id
        )
        timeout = timer.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
        set_for = at[timer.event_id] + timeout.total_seconds()
        stages["set"].append(set_for - r.due)
        stages["timer"].append(at[fired.event_id] - set_for)
        stages["task"].append(at[scheduled.event_id] - at[fired.event_id])
        stages["queue"].append(at[started.event_id] - at[scheduled.event_id])
        stages["slack"].append(r.at - at[started.event_id])

    await asyncio.gather(*(one(r) for r in sample))
    return stages


class Profiler:
    """py-spy (--gil: only the thread holding the GIL) on the worker for one step."""

    # Frames every sample passes through: the event loop, thread pools, the entry point.
    PLUMBING = ("asyncio/", "threading.py", "futures/thread.py", "<frozen", "bench/worker.py")

    def __init__(self, pid: int, seconds: float, out: Path) -> None:
        self.out = out
        argv = [str(PY_SPY), "record", "--pid", str(pid), "--duration", str(int(seconds)), "--gil"]
        argv += ["--rate", "50", "--format", "raw", "--nonblocking", "--output", str(out)]
        self.popen = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
        )

    def stop(self) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(30)
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()

    def top(self, n: int = 20) -> list[tuple[str, float]]:
        """The functions most often on the stack (inclusive share of GIL-holding samples)."""
        if not self.out.exists():
            return []
        inclusive: Counter[str] = Counter()
        total = 0
        for line in self.out.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            total += int(count)
            frames = {_frame(f) for f in stack.split(";") if not self.plumbing(f)}
            for frame in frames:
                inclusive[frame] += int(count)
        return [(frame, 100 * c / max(total, 1)) for frame, c in inclusive.most_common(n)]

    @classmethod
    def plumbing(cls, frame: str) -> bool:
        return any(p in frame for p in cls.PLUMBING) or frame.startswith("process ")


def _frame(frame: str) -> str:
    """'fn (path/to/site-packages/pkg/mod.py:12)' -> 'fn (pkg/mod.py)'."""
    if "(" not in frame:
        return frame
    name, where = frame.split(" (", 1)
    parts = where.rstrip(")").rsplit(":", 1)[0].split("site-packages/")[-1].split("/")
    return f"{name} ({'/'.join(parts[-2:])})"


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

    async def metrics(self) -> dict[str, float]:
        return await metrics(self.metrics_port)


async def run_phase(args: argparse.Namespace, kind: str, plan: Plan) -> PhaseResult:
    plan = copy.deepcopy(plan)  # its steps get this phase's start times
    result = PhaseResult(kind, plan)
    stack = Stack(args.logs / f"{plan.name}-{kind}")
    try:
        temporal, address = await stack.temporal()
        slack, slack_url = await stack.slack()
        metrics_port = free_port()
        argv = [PYTHON, "-m", "bench.worker", kind]
        for option in ("max_cached_workflows", "max_concurrent_workflow_tasks", "passthrough"):
            if getattr(args, option) is not None:
                argv += ["--" + option.replace("_", "-"), str(getattr(args, option))]
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
        for n in range(2, args.workers + 1):
            other = stack.start(f"worker-{n}", argv, env)
            await wait_for_line(other, "ready")
        client = await connect(address)
        if kind == "product":
            opener = product_opener(client, result)
        else:
            opener = await bare_opener(client, slack_url)
        procs = {"worker": worker.pid, "temporal": temporal.pid, "slack": slack.pid}
        async with Sampler({**procs, "bench": os.getpid()}) as sampler:
            process = psutil.Process(worker.pid)
            rig = Rig(kind, client, opener, sampler, process, metrics_port, slack_url)
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
    say = _say(rig.kind, plan.name)
    idle = plan.population - plan.fires
    began = time.time()
    await open_all(rig.opener, [None] * idle, args.concurrency, result)
    rate = idle / (time.time() - began)
    # No earlier than the schedule's length: no incident can fire twice within it.
    start = time.time() + max(MARGIN * plan.fires / rate, plan.length) + args.quiet
    say(
        f"{idle} idle opened at {rate:.0f}/s; {plan.fires} to fire, "
        f"the first in {start - time.time():.0f}s"
    )
    dues = plan.schedule(start)
    opened = await open_all(rig.opener, list(dues), args.concurrency, result, first=idle)
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
    for step in plan.steps:
        await asyncio.sleep(max(step.start - time.time(), 0))
        profiler = None
        if args.profile == step.rate and PY_SPY:
            out = args.logs / f"{plan.name}-{rig.kind}" / f"py-spy-{step.rate:g}.txt"
            profiler = Profiler(rig.worker.pid, step.window, out)
        await asyncio.sleep(max(step.end - time.time(), 0))
        after = await rig.metrics()
        snapshots.append(diff(after, before))
        before = after
        if profiler:
            profiler.stop()
            result.profile = profiler.top()
        _say(rig.kind, plan.name)(f"{step.rate:g}/s for {step.window:g}s done")
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


def _say(kind: str, phase: str) -> Callable[[str], None]:
    def say(text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')} {phase} {kind}] {text}", flush=True)

    return say


# -- the report ----------------------------------------------------------------------------


def seconds(x: float) -> str:
    return ">drain" if math.isinf(x) else f"{x:.2f}"


def report(results: list[PhaseResult]) -> None:
    print("\n== timers: one worker, 2 cores; lateness = Slack received - due, seconds ==")
    print(
        "columns: fires received, miss(ing after --drain), lateness p50/p99/max; mean CPU% of\n"
        "one core: worker, dev server, Slack emulator, other processes on the machine; workflow\n"
        "tasks the worker ran, sticky cache misses, mean workflow task execution and\n"
        "schedule-to-start (ms). Below each rate: where the lateness went, from the\n"
        "histories of a sample (set = when the timer was set to fire - due, timer = fired -\n"
        "when set to fire, task = activity scheduled - fired,\n"
        "queue = activity started - scheduled, slack = received - activity started)."
    )
    for r in results:
        d = r.declare_latency
        print(
            f"\n{r.plan.name} / {r.kind}: {r.open} open; opened in {r.declare_seconds:.0f}s "
            f"({len(d) / r.declare_seconds:.0f}/s, latency p50 {percentile(d, 50):.2f}s "
            f"p99 {percentile(d, 99):.2f}s, slipped {r.slipped}, second reminders {r.extra})"
        )
        o = r.open_cpu
        print(
            f"  while opening: worker {o['worker']:.0f}% CPU, dev server {o['temporal']:.0f}%, "
            f"emulator {o['slack']:.0f}%, this harness {o['bench']:.0f}%, others {o['others']:.0f}%"
        )
        for reason, times in r.refused.items():
            print(f"  declarations refused with '{reason}' and retried: {times}")
        print(
            f"  worker RSS: {mib(r.rss_declared)} after opening, {mib(r.rss_end)} at end, "
            f"{mib(r.rss_peak)} peak"
        )
        q = r.quiet_cpu
        print(
            f"  nothing due ({r.quiet_seconds:.0f}s): worker {q['worker']:.1f}% CPU, "
            f"dev server {q['temporal']:.1f}%, emulator {q['slack']:.1f}% (of one core)"
        )
        print(
            f"  {'rate/s':>7}{'fires':>7}{'miss':>6}{'p50':>8}{'p99':>8}{'max':>8}"
            f"{'wrk%':>7}{'srv%':>7}{'slk%':>6}{'oth%':>6}{'WFTs':>7}{'miss$':>7}"
            f"{'wft ms':>8}{'s2s ms':>8}"
        )
        for s in r.steps:
            c = s.counters
            wfts = c.get("temporal_workflow_task_execution_latency_count", 0)
            exec_ms = 1000 * c.get("temporal_workflow_task_execution_latency_sum", 0) / max(wfts, 1)
            s2s = c.get("temporal_workflow_task_schedule_to_start_latency_count", 0)
            s2s_ms = (
                1000
                * c.get("temporal_workflow_task_schedule_to_start_latency_sum", 0)
                / max(s2s, 1)
            )
            print(
                f"  {s.step.rate:>7g}{len(s.lateness):>7}{s.missing:>6}"
                f"{seconds(s.p(50)):>8}{seconds(s.p(99)):>8}{seconds(s.p(100)):>8}"
                f"{s.cpu['worker']:>7.0f}{s.cpu['temporal']:>7.0f}{s.cpu['slack']:>6.0f}"
                f"{s.cpu['others']:>6.0f}{wfts:>7.0f}"
                f"{c.get('temporal_sticky_cache_miss', 0):>7.0f}{exec_ms:>8.1f}{s2s_ms:>8.0f}"
            )
            if s.stages:
                parts = [
                    f"{stage} {percentile(v, 50):.2f}/{percentile(v, 99):.2f}"
                    for stage, v in s.stages.items()
                ]
                print(f"  {'':>7}  p50/p99 of {len(s.stages['timer'])}: " + ", ".join(parts))
        if r.profile:
            print("  py-spy --gil on the worker: share of samples with the function on the stack")
            for frame, share in r.profile:
                print(f"    {share:5.1f}%  {frame}")
    ratios(results)


def ratios(results: list[PhaseResult]) -> None:
    by = {(r.plan.name, r.kind): r for r in results}
    print("\nproduct / baseline")
    for name in ("steady", "steps"):
        product, bare = by.get((name, "product")), by.get((name, "bare"))
        if not (product and bare):
            continue
        print(
            f"  {name}: worker RSS at end {product.rss_end / max(bare.rss_end, 1):.1f}x; "
            f"CPU nothing due {_ratio(product.quiet_cpu['worker'], bare.quiet_cpu['worker'])}"
        )
        for p, b in zip(product.steps, bare.steps, strict=True):
            print(
                f"    {p.step.rate:g}/s: p50 {_ratio(p.p(50), b.p(50))}, "
                f"p99 {_ratio(p.p(99), b.p(99))}, "
                f"worker CPU {_ratio(p.cpu['worker'], b.cpu['worker'])}"
            )
    for kind in ("product", "bare"):
        steps = by.get(("steps", kind))
        if steps:
            ok = [s.step.rate for s in steps.steps if s.p(99) < 1]
            print(
                f"  highest rate with p99 < 1 s, {kind}: {max(ok):g}/s"
                if ok
                else f"  highest rate with p99 < 1 s, {kind}: none of {args_steps(steps)}"
            )


def args_steps(r: PhaseResult) -> str:
    return ",".join(f"{s.step.rate:g}" for s in r.steps)


def _ratio(a: float, b: float) -> str:
    if math.isinf(a) or math.isinf(b) or not b:
        return "n/a"
    return f"{a / b:.1f}x"


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
        for kind in args.kinds.split(","):
            results.append(await run_phase(args, kind, plan))
    report(results)


if __name__ == "__main__":
    run(main(arguments()))

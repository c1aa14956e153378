"""bench.timers, the plan: what each phase opens and when it fires, and opening it."""

from __future__ import annotations

import asyncio
import math
import random
import shutil
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from slack_sdk.web.async_client import AsyncWebClient
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from bench.bare import BareTimer, TimerInput
from bench.stack import (
    percentile,
)
from localslack import BOT_TOKEN
from starter.desk import IncidentDesk
from starter.intake import Intake
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
    workers: int = 1  # worker processes on the queue

    @property
    def label(self) -> str:
        return self.kind if self.workers == 1 else f"{self.kind} x{self.workers}"

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
    cold_start: tuple[float, float] | None = None  # when the workers were killed, back ready
    recovery: tuple[float, int] = (0.0, 0)  # seconds until on time again, reminders late


# -- opening incidents ---------------------------------------------------------------------


def cadence_policy(every: float, continue_as_new_once_open: bool = False) -> Policy:
    """The default policy, but with this update cadence, no escalation and no broadcast."""
    data = default_policy().model_dump()
    for severity in data["severities"].values():
        severity.update(update_every=every, escalation=[], missed_update_broadcast=False)
    data["history"] = {"continue_as_new_once_open": continue_as_new_once_open}
    return Policy.model_validate(data)


Opener = Callable[[int, float], Awaitable[tuple[str, float]]]


def product_opener(client: Client, result: PhaseResult, rest: bool = False) -> Opener:
    # One intake for every desk, like an API process's: it keeps the next free number, where
    # an intake per declaration would re-read visibility and collide with the others each time.
    intake = Intake(client, QUEUE)

    async def declare(i: int, every: float) -> tuple[str, float]:
        desk = IncidentDesk(client, QUEUE, cadence_policy(every, rest), intake)
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
                # A transient refusal from the server (none expected since numbering left
                # the registry): counted, then tried again.
                reason = next((r for r in RETRIED if r in error.message), None)
                if reason is None:
                    raise
                result.refused[reason] += 1
                await asyncio.sleep(random.uniform(0.05, 0.25))

    return declare


async def bare_opener(client: Client, slack_url: str, opening: bool = False) -> Opener:
    slack = AsyncWebClient(token=BOT_TOKEN, base_url=slack_url)
    channels = (await slack.conversations_list(limit=1000))["channels"]
    channel_id = next(c["id"] for c in channels if c["name"] == "incidents")

    async def start(i: int, every: float) -> tuple[str, float]:
        workflow_id = f"bare-timer-{i}"
        started = await client.execute_update_with_start_workflow(
            BareTimer.opening if opening else BareTimer.started,
            start_workflow_operation=WithStartWorkflowOperation(
                BareTimer.run,
                TimerInput(every, channel_id, opening),
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
            # Whole seconds: incidents opened close together share a policy, as a worker's
            # incidents share theirs (its cache of decoded policies then hits, as it does there).
            every = IDLE_EVERY if due is None else float(math.floor(due - began))
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

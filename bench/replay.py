"""What one sticky-cache miss costs the worker: replaying a history from scratch.

    python -m bench.replay [--reminders 1] [--times 200] [--histories DIR]

A worker whose cache cannot hold every open incident evicts the least recently used one;
when that incident's timer fires, the worker rebuilds it: a new sandboxed instance (the
workflow's module imported again inside the sandbox) and a replay of its whole history.
This records, on a fresh dev server, the history of one incident (declared through
``IncidentDesk.declare``, then ``--reminders`` reminders) and of one ``BareTimer`` with as
many fires and, like the incident's opening, one activity before its first timer (so both
histories have as many workflow tasks, activities, timers and updates), then replays each
``--times`` times with ``temporalio.worker.Replayer`` in this process and the worker's data
converter, sandboxed, with the product worker's runner (every module passed through, no
payload codec asked about each payload) and unsandboxed, taking turns, and prints the median
CPU time per replay. Every process started is stopped by its PID at the end. ``--histories``
replays the two histories a previous run saved instead (no server): two builds compared on the
same histories. A third row replays the incident's history with ``IncidentShape``: its
commands and payloads without its code, so the ratio splits into what the SDK spends on what
the incident writes and what the incident's own code spends.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import WithStartWorkflowOperation, WorkflowHistory
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from bench.bare import BareTimer, IncidentShape, TimerInput
from bench.stack import PYTHON, Stack, connect, run, wait_for_line
from bench.timer_plan import cadence_policy
from config.temporal import data_converter
from starter.desk import IncidentDesk
from worker import WORKFLOW_RUNNER
from workflows.incident import IncidentWorkflow
from workflows.models import Declaration

QUEUE, BARE_QUEUE = "bench-replay", "bench-replay-bare"
ROUNDS = 5
SHAPE = (EventType.EVENT_TYPE_TIMER_STARTED, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
TASK = EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.replay",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--reminders", type=int, default=1, help="reminders in each history")
    parser.add_argument("--times", type=int, default=200, help="replays of each history")
    # Longer than a loaded machine takes to open the incident: its reminders count from the
    # declaration, so a shorter cadence is due again before the opening ends.
    parser.add_argument("--every", type=float, default=10.0, help="seconds between reminders")
    parser.add_argument(
        "--continue-as-new-once-open", action="store_true", help="the policy's [history] option"
    )
    parser.add_argument("--logs", type=Path, default=Path(".data/bench/replay"))
    parser.add_argument("--histories", type=Path, help="replay a previous run's saved histories")
    return parser.parse_args()


async def record(args: argparse.Namespace, stack: Stack) -> list[WorkflowHistory]:
    _, address = await stack.temporal()
    _, slack_url = await stack.slack()
    env = {"TEMPORAL_ADDRESS": address, "SLACK_API_URL": slack_url}
    # A queue each: a worker meeting the other's workflow type fails its task until retried.
    for kind, queue in (("product", QUEUE), ("bare", BARE_QUEUE)):
        argv = [PYTHON, "-m", "bench.worker", kind]
        worker = stack.start(f"{kind}-worker", argv, {**env, "INCIDENT_TASK_QUEUE": queue})
        await wait_for_line(worker, "ready")
    client = await connect(address)
    desk = IncidentDesk(client, QUEUE, cadence_policy(args.every, args.continue_as_new_once_open))
    declaration = Declaration(title="Replay bench", severity="sev2", commander="U0ALICE01")
    state, _ = await desk.declare(declaration)
    channel = state.channel.id if state.channel else ""
    started = await client.execute_update_with_start_workflow(
        BareTimer.opening,
        start_workflow_operation=WithStartWorkflowOperation(
            BareTimer.run,
            TimerInput(args.every, channel, opening=True),
            id="bare-replay",
            task_queue=BARE_QUEUE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        ),
    )
    # Fetched halfway between the later one's last reminder and the earlier one's next: the
    # incident counts from its declaration, the baseline from its first task, seconds later.
    origins = (state.declared_at.timestamp(), started)
    last = max(origins) + args.every * args.reminders
    await asyncio.sleep((last + min(origins) + args.every * (args.reminders + 1)) / 2 - time.time())
    return [
        await client.get_workflow_handle(workflow_id).fetch_history()
        for workflow_id in (state.id, "bare-replay")
    ]


RUNNERS: dict[str, WorkflowRunner] = {
    "sandboxed": SandboxedWorkflowRunner(),
    "worker": WORKFLOW_RUNNER,  # the product's worker's: every module passed through
    "unsandboxed": UnsandboxedWorkflowRunner(),
}


async def replay(
    history: WorkflowHistory, times: int, runner: WorkflowRunner, shape_only: bool = False
) -> float:
    """CPU seconds per replay (this process is otherwise idle); NaN when the history is not the
    shape ``IncidentShape`` replays (another number of tasks, or a continued run)."""
    workflow = IncidentShape if shape_only else IncidentWorkflow
    replayer = Replayer(
        workflows=[workflow, BareTimer],
        data_converter=data_converter(),  # the worker's (config.connect)
        workflow_runner=runner,
    )

    async def copies() -> AsyncIterator[WorkflowHistory]:
        for _ in range(times):
            yield history

    began = time.process_time()
    results = await replayer.replay_workflows(copies(), raise_on_replay_failure=not shape_only)
    if results.replay_failures:
        return math.nan
    return (time.process_time() - began) / times


def shape(history: WorkflowHistory) -> tuple[int, ...]:
    """Timers and activities: the work both histories must have alike to be compared."""
    return tuple(sum(e.event_type == kind for e in history.events) for kind in SHAPE)


def saved(folder: Path) -> list[WorkflowHistory]:
    """The incident's and the baseline's histories as a run saved them (``{workflow id}.json``)."""
    incident, bare = next(folder.glob("incident-*.json")), folder / "bare-replay.json"
    return [WorkflowHistory.from_json(path.stem, path.read_text()) for path in (incident, bare)]


async def main(args: argparse.Namespace) -> None:
    if args.histories:
        histories = saved(args.histories)
    else:
        stack = Stack(args.logs)
        try:
            histories = await record(args, stack)
        finally:
            stack.close()
    args.logs.mkdir(parents=True, exist_ok=True)
    # The histories take turns, ROUNDS times, and each keeps its median round: a machine shared
    # with other work slows whichever runs while it is busy, not one history for good.
    # The third: the incident's history replayed by IncidentShape, its commands without its code.
    subjects = [(histories[0], False), (histories[1], False), (histories[0], True)]
    costs: dict[tuple[int, str], list[float]] = {}
    for name, runner in RUNNERS.items():
        for _ in range(ROUNDS):
            for i, (history, shape_only) in enumerate(subjects):
                cost = await replay(history, max(args.times // ROUNDS, 1), runner, shape_only)
                costs.setdefault((i, name), []).append(cost)
    print(f"\nreplay of one history, CPU ms per replay ({args.times} replays, one process)")
    head = f"{'history':<34}{'events':>7}{'tasks':>6}{'bytes':>8}"
    print(head + "".join(f"{r:>13}" for r in RUNNERS))
    medians: list[list[float]] = []
    for i, (history, shape_only) in enumerate(subjects):
        (args.logs / f"{history.workflow_id}.json").write_text(history.to_json())
        events = len(history.events)
        tasks = sum(e.event_type == TASK for e in history.events)
        size = sum(e.ByteSize() for e in history.events)
        label = f"{history.workflow_id} ({args.reminders} reminder)"
        label = f"{history.workflow_id}, commands only" if shape_only else label
        medians.append([statistics.median(costs[i, name]) * 1000 for name in RUNNERS])
        row = f"{label:<34}{events:>7}{tasks:>6}{size:>8}"
        print(row + "".join(f"{c:>13.1f}" for c in medians[-1]))
    incident, bare, commands_only = medians
    for label, costs_of in (("incident / bare", incident), ("commands only / bare", commands_only)):
        ratios = [cost / base for cost, base in zip(costs_of, bare, strict=True)]
        print(f"{label:<55}" + "".join(f"{r:>12.2f}x" for r in ratios))
    print(
        "sandboxed: the SDK's default sandbox; worker: the product worker's (worker.py), the\n"
        "sandbox taking every module as it is and answering no payload codec; unsandboxed: no\n"
        "sandbox at all.\n"
        "Commands only: IncidentShape (bench/bare.py) replaying the incident's history, its\n"
        "commands and payloads with none of its code (nan: not that shape).\n"
        "The incident's history is its current run's (with --continue-as-new-once-open, a new\n"
        f"run). The histories are in {args.logs}."
    )
    shapes = [shape(history) for history in histories]
    if len(set(shapes)) > 1:
        print(f"NOT ALIKE: (timers, activities) {shapes}; a larger --every may help.")
    # The desk starts the incident, then sends its opening update: a worker that polls between
    # the two runs the first task without it, and the update takes a task of its own.
    counts = [sum(e.event_type == TASK for e in history.events) for history in histories]
    if counts[0] != counts[1]:
        print(f"Workflow tasks {counts}: the incident's update came after its first task.")


if __name__ == "__main__":
    run(main(arguments()))

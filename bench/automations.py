"""What a policy's automations cost the incident workflow: 50 rules against none.

    python -m bench.automations [--rules 50] [--times 100]

Records, on a fresh dev server with the product's worker, the histories of two incidents
declared alike and driven by the same commands (acknowledge, identified, an update, a severity
change, the commander, monitoring), one with a policy of ``--rules`` rules and one with none.
The rules are a team's likely mix: every trigger, ``if`` conditions over the incident and the
event, a third with ``after`` and ``unless``; none of them holds in this scenario, so both
histories have the same activities and timers and what is measured is the rules' cost (the
policy's CEL compiled when the input is decoded, the events told, the conditions asked), not
their steps' Slack posts.
Each history is replayed ``--times`` times in this process (the worker's data converter and
sandbox setting), taking turns, at two points: right after the declaration (its opening
tasks) and after the commands; the CPU per replay, per workflow task and their ratios are
printed. Every process started is stopped by its PID at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from pathlib import Path
from typing import Any, get_args

from temporalio.client import WorkflowHistory

from bench.replay import TASK, replay
from bench.stack import PYTHON, Stack, connect, run, wait_for_line
from starter.desk import IncidentDesk
from worker import WORKFLOW_RUNNER
from workflows.automations import Trigger
from workflows.lifecycle import commands as cmd
from workflows.models import Declaration, Role, Status
from workflows.policy import Policy, default_policy

QUEUE = "bench-automations"
TRIGGERS = get_args(Trigger)
ROUNDS = 5
CONDITIONS = (
    'incident.severity == "sev1" && "payments" in incident.components',
    'event.to == "resolved" && incident.escalation_level > 2',
    'incident.type == "security" && !incident.private',
    '"U0BOB0002" in incident.responders || incident.age_seconds > 86400.0',
)


def rules(count: int) -> list[dict[str, Any]]:
    made = []
    for n in range(count):
        rule: dict[str, Any] = {
            "name": f"rule {n}",
            "on": TRIGGERS[n % len(TRIGGERS)],
            "if": CONDITIONS[n % len(CONDITIONS)],
            "do": [{"post": {"text": "{label}: rule {rule}"}}, {"escalate": ""}],
        }
        if n % 3 == 0:
            rule |= {"after": "1h", "unless": 'incident.status == "resolved"'}
        made.append(rule)
    return made


def policy(count: int) -> Policy:
    return Policy.model_validate({**default_policy().model_dump(), "automations": rules(count)})


COMMANDS: tuple[cmd.Command, ...] = (
    cmd.Acknowledge(by="U0ALICE01"),
    cmd.SetStatus(status=Status.IDENTIFIED),
    cmd.PostUpdate(message="found it"),
    cmd.SetSeverity(severity="sev1"),
    cmd.AssignRole(role=Role.COMMANDER, user="U0BOB0002"),
    cmd.SetStatus(status=Status.MONITORING),
)


async def record(stack: Stack, count: int) -> dict[str, list[WorkflowHistory]]:
    _, address = await stack.temporal()
    _, slack_url = await stack.slack()
    env = {"TEMPORAL_ADDRESS": address, "SLACK_API_URL": slack_url, "INCIDENT_TASK_QUEUE": QUEUE}
    await wait_for_line(
        stack.start("worker", [PYTHON, "-m", "bench.worker", "product"], env), "ready"
    )
    client = await connect(address)
    declaration = Declaration(
        title="Automations bench", severity="sev2", commander="U0ALICE01", components=["checkout"]
    )
    found: dict[str, list[WorkflowHistory]] = {}
    for label, rules_in in (("none", 0), (f"{count} rules", count)):
        desk = IncidentDesk(client, QUEUE, policy(rules_in))
        state, _ = await desk.declare(declaration)
        await asyncio.sleep(1)  # the opening's activities done
        handle = client.get_workflow_handle(state.id)
        declared = await handle.fetch_history()
        for command in COMMANDS:
            await desk.command(state.id, command)
        await asyncio.sleep(1)
        found[label] = [declared, await handle.fetch_history()]
    return found


async def main(args: argparse.Namespace) -> None:
    stack = Stack(args.logs)
    try:
        histories = await record(stack, args.rules)
    finally:
        stack.close()
    costs: dict[tuple[str, int], list[float]] = {}
    for _ in range(ROUNDS):
        for label, pair in histories.items():
            for point, history in enumerate(pair):
                cost = await replay(history, max(args.times // ROUNDS, 1), WORKFLOW_RUNNER)
                costs.setdefault((label, point), []).append(cost)
    print(f"\nCPU ms per replay ({args.times} replays each, one process, {ROUNDS} rounds)")
    print(f"{'incident':<14}{'point':<18}{'tasks':>6}{'ms/replay':>11}{'ms/task':>9}")
    per: dict[tuple[str, int], tuple[float, float]] = {}
    for (label, point), values in costs.items():
        history = histories[label][point]
        tasks = sum(e.event_type == TASK for e in history.events)
        ms = statistics.median(values) * 1000
        per[label, point] = (ms, ms / tasks)
        where = ("declared", "after 6 commands")[point]
        print(f"{label:<14}{where:<18}{tasks:>6}{ms:>11.2f}{ms / tasks:>9.3f}")
    many = f"{args.rules} rules"
    (a, _), (b, _) = per["none", 0], per[many, 0]
    print(f"{many} / none, a declaration (its opening tasks): {b / a:.2f}x")
    (a, at), (b, bt) = per["none", 1], per[many, 1]
    print(f"{many} / none, the whole history after the commands: {b / a:.2f}x")
    print(f"{many} / none, per workflow task there: {bt / at:.2f}x (tasks differ when the")
    print("worker takes two commands in one task: the whole history is the steadier figure)")


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.automations",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rules", type=int, default=50)
    parser.add_argument("--times", type=int, default=100)
    parser.add_argument("--logs", type=Path, default=Path(".data/bench/automations"))
    return parser.parse_args()


if __name__ == "__main__":
    run(main(arguments()))

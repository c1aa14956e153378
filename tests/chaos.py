"""Chaos: incidents through whole lifecycles while the worker is SIGKILLed at random moments,
Slack fails a share of writes (some after doing them), and the Temporal server restarts.

    python -m tests.chaos --incidents 50        (what `make chaos` runs; prints the figures)

The suite's short form (tests/test_chaos.py) runs the same scenario smaller. Afterwards every
incident must be in its expected final state, no timer may be lost (an incident acknowledged
after its first tier was due must show that escalation; every incident is archived), and no
channel or message may exist twice.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from starter.desk import IncidentDesk
from tests.processes import DevServer, EmulatorProcess, Processes, WorkerProcess
from workflows.lifecycle import commands as cmd
from workflows.lifecycle.notices import CommandRefused
from workflows.models import Declaration, IncidentState, Status
from workflows.policy import Policy, default_policy

TASK_QUEUE = "incidents-chaos"
ESCALATE_AFTER = 3.0
COMMANDER = "U0ALICE01"


def chaos_policy() -> Policy:
    """Seconds-scale: tiers, reminders, retrospective and archive all fire within the run
    (the retrospective's slot is any time: business hours round the clock)."""
    policy = default_policy().model_dump()
    policy["business_hours"] = {"start": "00:00", "end": "24:00", "days": list(range(7))}
    for sev in policy["severities"].values():
        sev.update(
            update_every=4,
            escalation=[{"after": ESCALATE_AFTER, "notify": ["U0BOB0002"], "page": False}],
            retrospective={"required": True, "after": 2, "remind_every": 3},
            archive_after=2,
        )
    return Policy.model_validate(policy)


@dataclass
class Figures:
    incidents: int
    seconds: float = 0.0
    worker_kills: int = 0
    server_restarts: int = 0
    command_retries: int = 0
    slack_calls: int = 0
    slack_failures: int = 0
    duplicates: list[str] = field(default_factory=list)
    lost_timers: list[str] = field(default_factory=list)
    wrong_states: list[str] = field(default_factory=list)

    def print(self) -> None:
        print(
            f"chaos: {self.incidents} incidents in {self.seconds:.1f} s; "
            f"{self.worker_kills} worker SIGKILLs, {self.server_restarts} Temporal restarts, "
            f"{self.command_retries} command retries; Slack {self.slack_calls} calls, "
            f"{self.slack_failures} failed on purpose; duplicates {len(self.duplicates)}, "
            f"lost timers {len(self.lost_timers)}, wrong final states {len(self.wrong_states)}"
        )
        for problem in [*self.duplicates, *self.lost_timers, *self.wrong_states][:20]:
            print(f"  - {problem}")

    @property
    def clean(self) -> bool:
        return not (self.duplicates or self.lost_timers or self.wrong_states)


class Chaos:
    def __init__(self, workdir: Path, incidents: int, seed: int, fault_rate: float) -> None:
        self.workdir = workdir
        self.random = random.Random(seed)
        self.fault_rate = fault_rate
        self.figures = Figures(incidents=incidents)
        self.processes = Processes()
        self.policy = chaos_policy()
        self.server = DevServer(workdir / "temporal.db", workdir / "temporal.log")
        self.slack = EmulatorProcess(workdir / "localslack.log")
        self.worker: WorkerProcess | None = None
        self.client: Client | None = None
        self.restarting = asyncio.Lock()

    # -- the stack ---------------------------------------------------------------------------

    async def start(self) -> None:
        self.processes.track(self.server.process)
        await self.server.start()
        self.processes.track(self.slack)
        await self.slack.started()
        await self._start_worker()
        self.client = await self.server.connect()

    async def _start_worker(self) -> None:
        self.worker = WorkerProcess(
            self.workdir / "worker.log",
            temporal_address=self.server.address,
            task_queue=TASK_QUEUE,
            slack_api_url=self.slack.base_url,
        )
        self.processes.track(self.worker)
        await self.worker.started(timeout=60)

    def stop(self) -> None:
        self.processes.stop_all()

    async def _emulator(self, path: str, body: dict[str, Any]) -> None:
        async with httpx.AsyncClient(timeout=10) as http:
            url = f"http://127.0.0.1:{self.slack.port}{path}"
            (await http.post(url, json=body)).raise_for_status()

    async def slack_fails_writes(self) -> None:
        """A share of Slack writes fail; half of those fail after Slack did the write."""
        if not self.fault_rate:
            return
        await self._emulator("/_emulator/chaos", {"rate": self.fault_rate, "seed": 7})

    # -- the monkey --------------------------------------------------------------------------

    async def monkey(self, until: asyncio.Event) -> None:
        """SIGKILL the worker at random moments; restart Temporal once, half way through."""
        restarted = False
        started = time.monotonic()
        while not until.is_set():
            await asyncio.sleep(self.random.uniform(1.5, 4.0))
            if until.is_set():
                return
            async with self.restarting:
                assert self.worker is not None
                self.worker.kill()
                self.figures.worker_kills += 1
                await asyncio.sleep(self.random.uniform(0.0, 0.5))
                if not restarted and time.monotonic() - started > 8:
                    await self.server.restart(signal.SIGKILL)
                    self.figures.server_restarts += 1
                    restarted = True
                await self._start_worker()

    # -- one incident ------------------------------------------------------------------------

    def desk(self) -> IncidentDesk:
        assert self.client is not None
        return IncidentDesk(self.client, TASK_QUEUE, self.policy)

    async def _retry(self, what: Any) -> Any:
        """Commands are retried as a client would; a refusal saying it is done already is fine."""
        for _ in range(200):
            try:
                return await what()
            except CommandRefused as refused:
                if "already" in str(refused):
                    return None
                raise
            except Exception:  # Temporal restarting, an Update lost with a dead worker...
                self.figures.command_retries += 1
                await asyncio.sleep(0.5)
        raise TimeoutError("a command kept failing for 100 s")

    async def lifecycle(self, index: int) -> str:
        late = index % 2 == 0  # every other incident is acknowledged only after tier one
        declaration = Declaration(
            title=f"Chaos {index} checkout failing",
            severity="sev2",
            commander=COMMANDER,
            idempotency_key=f"chaos-{index}",
        )
        state, _ = await self._retry(lambda: self.desk().declare(declaration))
        ref = state.id
        await asyncio.sleep(ESCALATE_AFTER + 1.5 if late else self.random.uniform(0, 1))
        steps: list[cmd.Command] = [
            cmd.Acknowledge(by=COMMANDER),
            cmd.SetStatus(status=Status.IDENTIFIED, message="Bad deploy", by=COMMANDER),
            cmd.PostUpdate(message="Rolling back", by=COMMANDER),
            cmd.SetStatus(status=Status.MONITORING, message="Rolled back", by=COMMANDER),
            cmd.Resolve(message="Error rate normal", by=COMMANDER),
        ]
        for step in steps:
            await self._retry(lambda step=step: self.desk().command(ref, step))
            await asyncio.sleep(self.random.uniform(0.1, 1.0))
        return str(ref)

    # -- the verdict -------------------------------------------------------------------------

    async def final_state(self, ref: str) -> IncidentState:
        state: IncidentState = await self._retry(lambda: self.desk().get(ref))
        return state

    async def check(self, refs: list[str]) -> None:
        deadline = time.monotonic() + 120
        states: dict[str, IncidentState] = {}
        while time.monotonic() < deadline:
            states = {ref: await self.final_state(ref) for ref in refs}
            if all(s.archived_at for s in states.values()):
                break
            await asyncio.sleep(1)
        workspace = await self.slack.state()
        self._check_slack(states, workspace)
        for ref, state in states.items():
            if state.status is not Status.RESOLVED:
                self.figures.wrong_states.append(f"{ref} ended {state.status.value}")
            if state.archived_at is None:
                self.figures.lost_timers.append(f"{ref} was never archived")
            acked_late = state.acknowledged_at and state.acknowledged_at - state.declared_at > (
                timedelta(seconds=ESCALATE_AFTER + 0.5)
            )
            if acked_late and not any(e.kind == "escalated" for e in state.timeline):
                self.figures.lost_timers.append(f"{ref}: tier one never fired")

    def _check_slack(self, states: dict[str, IncidentState], workspace: dict[str, Any]) -> None:
        channels = workspace["channels"]
        for ref in states:
            mine = [c for c in channels if f"[{ref}]" in c["purpose"]]
            if len(mine) != 1:
                self.figures.duplicates.append(f"{ref} has {len(mine)} channels")
        keys: Counter[tuple[str, str, str]] = Counter()
        for channel in channels:
            for message in channel["messages"]:
                payload = (message.get("metadata") or {}).get("event_payload") or {}
                if "incident_id" in payload:
                    keys[(channel["id"], payload["incident_id"], payload["key"])] += 1
        self.figures.duplicates += [
            f"{k[1]} posted {k[2]} {n} times" for k, n in keys.items() if n > 1
        ]
        # The broadcast channel stays readable: one message per incident, the rest in its thread.
        broadcast = next(c for c in channels if c["name"] == "incidents")
        tops = Counter(
            m["metadata"]["event_payload"]["incident_id"]
            for m in broadcast["messages"]
            if "incident_id" in ((m.get("metadata") or {}).get("event_payload") or {})
            and m.get("thread_ts", m["ts"]) == m["ts"]
        )
        self.figures.duplicates += [
            f"{ref} has {tops[ref]} messages in the broadcast channel"
            for ref in states
            if tops[ref] != 1
        ]

    async def slack_figures(self) -> None:
        async with httpx.AsyncClient(timeout=30) as http:
            url = f"http://127.0.0.1:{self.slack.port}/_emulator/calls"
            calls = (await http.get(url)).json()["calls"]
        # Beside the processes' logs: what a duplicate's story is read from (--keep).
        (self.workdir / "slack-calls.json").write_text(json.dumps(calls))
        self.figures.slack_calls = len(calls)
        self.figures.slack_failures = sum(1 for c in calls if not c["ok"])


async def run(
    incidents: int, seed: int = 1, fault_rate: float = 0.3, keep: Path | None = None
) -> Figures:
    """One chaos run; with ``keep``, its processes' logs stay there to read afterwards."""
    with tempfile.TemporaryDirectory(prefix="chaos-") as scratch:
        workdir = keep or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        chaos = Chaos(workdir, incidents, seed, fault_rate)
        started = time.monotonic()
        try:
            await chaos.start()
            await chaos.slack_fails_writes()
            done = asyncio.Event()
            monkey = asyncio.create_task(chaos.monkey(done))
            refs = await asyncio.gather(*(chaos.lifecycle(i) for i in range(incidents)))
            done.set()
            await monkey
            await chaos.check(list(refs))
            await chaos.slack_figures()
        finally:
            chaos.figures.seconds = time.monotonic() - started
            chaos.stop()
        return chaos.figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--incidents", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fault-rate", type=float, default=0.3)
    parser.add_argument("--keep", type=Path, help="keep the processes' logs in this folder")
    args = parser.parse_args()
    figures = asyncio.run(run(args.incidents, args.seed, args.fault_rate, args.keep))
    figures.print()
    raise SystemExit(0 if figures.clean else 1)


if __name__ == "__main__":
    main()

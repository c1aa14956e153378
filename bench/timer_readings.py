"""bench.timers, readings: SDK counters, reminders and their lateness, where it went, and
a py-spy profile of the worker."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import httpx
from temporalio.client import Client

from bench.timer_plan import PY_SPY, REMINDER

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

    def __init__(self, pid: int, seconds: float, out: Path, rate: int = 50) -> None:
        self.out = out
        argv = [str(PY_SPY), "record", "--pid", str(pid), "--duration", str(int(seconds)), "--gil"]
        argv += ["--rate", str(rate), "--format", "raw", "--nonblocking", "--output", str(out)]
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

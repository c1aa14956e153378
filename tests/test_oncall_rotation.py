"""On-call handoffs end to end: the dev server, ``python worker.py`` and the emulator as
processes, a seconds-scale rotation from the policy file. Handoff DMs and the user group follow
the rotation, an override wins, bad input is refused, and a handoff missed while the worker was
killed happens once when it is back. And the handoff activities on their own, against the
in-process emulator."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import signal
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.slack import OncallActivities
from clients.slack import Slack
from clients.slack_client import slack_client
from localslack import BOT_TOKEN, SlackEmulator
from tests.processes import DevServer, EmulatorProcess, Processes, WorkerProcess, temporal_binary
from workflows.oncall.rotation import AddOverride, RemoveOverride, ScheduleWorkflow
from workflows.oncall.schedules import on_call
from workflows.requests import DirectMessage, ResolvePeople, SetUserGroup

TASK_QUEUE = "oncall-test"
SHIFT = 6.0  # seconds: long enough for a loaded machine to hand off well inside a shift
PEOPLE = ["U0ALICE01", "U0BOB0002", "U0CAROL03"]  # as the policy names them: @alice, email, id
BOT = "U0BOT0001"
ON_CALL = "You are on call for payments-primary"


def policy_file(path: Path, start: datetime) -> Path:
    path.write_text(
        f"""
[severities.sev1]
escalation = [{{after = "5m", notify = ["oncall:payments-primary"]}}]

[schedules.payments-primary]
timezone = "Europe/Paris"
people = ["@alice", "bob@example.com", "U0CAROL03"]
shift = "{SHIFT}s"
start = "{start.isoformat()}"
user_group = "oncall"
"""
    )
    return path


class Rotation:
    """The processes, and what the test reads through the emulator's control surface."""

    def __init__(self, tmp_path: Path, processes: Processes) -> None:
        self.tmp_path, self.processes = tmp_path, processes
        self.start = datetime.now(UTC).replace(microsecond=0)
        self.policy = policy_file(tmp_path / "policy.toml", self.start)

    async def up(self) -> None:
        self.server = DevServer(
            self.tmp_path / "temporal.db", self.tmp_path / "temporal.log", binary=temporal_binary()
        )
        self.processes.track(self.server.process)
        await self.server.start()
        self.slack = EmulatorProcess(self.tmp_path / "localslack.log")
        self.processes.track(self.slack)
        await self.slack.started()
        self.worker = WorkerProcess(
            self.tmp_path / "worker.log",
            temporal_address=self.server.address,
            task_queue=TASK_QUEUE,
            slack_api_url=self.slack.base_url,
            env={"INCIDENT_POLICY_FILE": str(self.policy)},
        )
        self.processes.track(self.worker)
        await self.worker.started()
        self.client: Client = await self.server.connect()

    def expected(self, at: float) -> str:
        """people[n mod 3], n whole shifts since the start."""
        return PEOPLE[math.floor((at - self.start.timestamp()) / SHIFT) % 3]

    def handoff_before(self, at: float) -> float:
        return self.start.timestamp() + math.floor((at - self.start.timestamp()) / SHIFT) * SHIFT

    async def dms(self) -> list[dict[str, Any]]:
        """Every DM the app sent, oldest first, with whom it went to."""
        state = await self.slack.state()
        found = [
            {**message, "to": next(m for m in channel["members"] if m != BOT)}
            for channel in state["channels"]
            if channel["is_im"]
            for message in channel["messages"]
            if message.get("user") == BOT
        ]
        return sorted(found, key=lambda m: float(m["ts"]))

    async def group(self) -> list[str]:
        state = await self.slack.state()
        return next(g["users"] for g in state["usergroups"] if g["handle"] == "oncall")

    async def wait_for(
        self, count: int, text: str = ON_CALL, timeout: float = 30, to: str | None = None
    ) -> list[Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [
                m for m in await self.dms() if m["text"].startswith(text) and to in (None, m["to"])
            ]
            if len(found) >= count:
                return found
            await asyncio.sleep(0.2)
        raise AssertionError(f"fewer than {count} {text!r} DMs in {timeout}s: {await self.dms()}")


@pytest.fixture
async def rotation(tmp_path: Path) -> AsyncIterator[Rotation]:
    processes = Processes()
    try:
        found = Rotation(tmp_path, processes)
        await found.up()
        yield found
    finally:
        processes.stop_all()


async def test_handoffs_overrides_and_a_missed_handoff_happening_once(rotation: Rotation) -> None:
    # The worker started the schedule's workflow from the policy, with people resolved to ids.
    handle = rotation.client.get_workflow_handle("oncall-payments-primary")
    first = (await rotation.wait_for(1))[0]
    roster = await handle.query(ScheduleWorkflow.roster)
    assert roster.schedule.layers[0].people == PEOPLE
    # Sent as the worker starts the schedule: on a loaded machine it may land just after the
    # next handoff, whose own DM then follows it.
    at = float(first["ts"])
    assert first["to"] in (rotation.expected(at), rotation.expected(at - SHIFT))

    # Three handoffs: each incoming person told, on time; the outgoing told who took over.
    announced = await rotation.wait_for(4)
    for message in announced[1:4]:
        at = float(message["ts"])
        assert message["to"] == rotation.expected(at)
        assert at - rotation.handoff_before(at) < 3, "within a few seconds of the handoff"
        assert "until" in message["text"] and "Europe/Paris" in message["text"]
    over = await rotation.wait_for(3, "Your on-call shift for payments-primary is over")
    for message in over[:3]:
        incoming = rotation.expected(float(message["ts"]))
        assert f"<@{incoming}> is on call now" in message["text"]
        assert message["to"] != incoming
    middle = rotation.handoff_before(time.time()) + SHIFT * 1.5
    await asyncio.sleep(middle - time.time())
    assert await rotation.group() == [rotation.expected(time.time())], "the group follows"

    # An override wins at once (it may start in the past); removing it hands back.
    now = datetime.now(UTC)
    request = AddOverride(
        user="@dave", start=now - timedelta(hours=1), end=now + timedelta(minutes=5)
    )
    override = await handle.execute_update(ScheduleWorkflow.add_override, request)
    assert (override.id, override.user) == ("1", "U0DAVE004")
    await asyncio.sleep(2)
    dave = [m for m in await rotation.dms() if m["to"] == "U0DAVE004"]
    assert [m["text"][: len(ON_CALL)] for m in dave] == [ON_CALL]
    assert await rotation.group() == ["U0DAVE004"]
    roster = await handle.query(ScheduleWorkflow.roster)
    shift = on_call(roster.schedule, roster.overrides, datetime.now(UTC))
    assert shift is not None and (shift.user, shift.override) == ("U0DAVE004", True)
    for bad, reason in [
        (request.model_copy(update={"end": now - timedelta(hours=2)}), "end after it starts"),
        (request.model_copy(update={"end": now - timedelta(minutes=1)}), "already over"),
    ]:
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(ScheduleWorkflow.add_override, bad)
        assert reason in str(refused.value.cause)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(ScheduleWorkflow.remove_override, RemoveOverride(id="7"))
    assert "no override '7'" in str(refused.value.cause)
    await handle.execute_update(ScheduleWorkflow.remove_override, RemoveOverride(id="1"))
    await asyncio.sleep(2)
    assert await rotation.group() == [rotation.expected(time.time())], "back to the rotation"
    dave = [m["text"] for m in await rotation.dms() if m["to"] == "U0DAVE004"]
    assert len(dave) == 2 and "is over" in dave[1], "dave told his override is over"

    # Killed for two handoffs: when it is back, one handoff, late, to whoever is on call then.
    before = len(await rotation.dms())
    before_on_call = len([m for m in await rotation.dms() if m["text"].startswith(ON_CALL)])
    rotation.worker.stop(signal.SIGKILL)
    await asyncio.sleep(2 * SHIFT + 1)
    assert len(await rotation.dms()) == before, "nothing happens while no worker runs"
    await rotation.worker.started()
    came_back = time.time()
    late = (await rotation.wait_for(before_on_call + 1))[before_on_call]
    assert float(late["ts"]) >= came_back - 1, "late: once a worker is back"
    assert late["to"] == rotation.expected(float(late["ts"]))
    next_handoff = rotation.handoff_before(float(late["ts"])) + SHIFT
    await asyncio.sleep(max(next_handoff - time.time() - 0.2, 0))
    once = [m for m in await rotation.dms() if m["text"].startswith(ON_CALL)][before_on_call:]
    assert [m for m in once if float(m["ts"]) < next_handoff] == [late], "once, not twice"
    keys = [m["metadata"]["event_payload"]["key"] for m in await rotation.dms()]
    assert len(keys) == len(set(keys)), "no DM sent twice"
    roster = await handle.query(ScheduleWorkflow.roster)
    assert len(roster.definitions) == 1, "the same policy at restart changes nothing"

    # The policy changes (only erin now): from now on, and the shifts already past stay.
    past = roster.shifts(rotation.start, datetime.now(UTC))
    edited = roster.written.model_copy(deep=True)
    edited.layers[0].people = ["erin@example.com"]
    await handle.execute_update(ScheduleWorkflow.set_schedule, edited)
    await rotation.wait_for(1, ON_CALL, timeout=5, to="U0ERIN005")  # on call at once
    roster = await handle.query(ScheduleWorkflow.roster)
    assert [d.schedule.layers[0].people for d in roster.definitions] == [PEOPLE, ["U0ERIN005"]]
    since = roster.definitions[1].since
    assert [s for s in roster.shifts(rotation.start, since) if s.end <= past[-1].start] == [
        s for s in past if s.end <= past[-1].start
    ]

    # Gone from the policy: the next worker to start stops the schedule's workflow.
    rotation.worker.stop()
    rotation.policy.write_text('[severities.sev1]\nescalation = [{after = "5m"}]\n')
    await rotation.worker.started()
    deadline = time.monotonic() + 20
    while (await handle.describe()).status is WorkflowExecutionStatus.RUNNING:
        assert time.monotonic() < deadline, "the schedule's workflow still runs"
        await asyncio.sleep(0.2)
    assert (await handle.describe()).status is WorkflowExecutionStatus.TERMINATED
    assert "not_kept" not in rotation.worker.log.read_text()


async def test_handoff_activities_resolve_people_message_once_and_set_the_group(
    slack: SlackEmulator,
) -> None:
    web = slack_client(BOT_TOKEN, slack.base_url)
    oncall = OncallActivities(Slack(web, "#incidents", str))
    env = ActivityEnvironment()
    people = ["@alice", "bob@example.com", "U0CAROL03", "@nobody"]
    resolved = await env.run(oncall.resolve_people, ResolvePeople(people=people))
    assert resolved == [*PEOPLE, "@nobody"], "someone Slack does not know stays as written"

    key = f"handoff-{uuid.uuid4().hex}"  # the emulator is shared: others write to Dave too
    message = DirectMessage(user="U0DAVE004", text=f"{ON_CALL} until Mon 09:00.", key=key)
    for attempt in (1, 2, 3):  # retries whose answers were lost
        env.info = dataclasses.replace(env.info, attempt=attempt)
        await env.run(oncall.direct_message, message)
    opened = await web.conversations_open(users="U0DAVE004")
    texts = [
        m["text"]
        for m in slack.messages(opened["channel"]["id"])
        if m.get("metadata", {}).get("event_payload", {}).get("key") == key
    ]
    assert texts == [message.text]

    members = list(slack.workspace.user_groups["S0ONCALL1"].users)  # other tests notify them
    try:
        await env.run(oncall.set_user_group, SetUserGroup(handle="oncall", users=["U0CAROL03"]))
        assert slack.workspace.user_groups["S0ONCALL1"].users == ("U0CAROL03",)
    finally:
        await env.run(oncall.set_user_group, SetUserGroup(handle="oncall", users=members))
    with pytest.raises(ApplicationError, match="no Slack user group @payments") as refused:
        await env.run(oncall.set_user_group, SetUserGroup(handle="payments", users=PEOPLE))
    assert refused.value.non_retryable

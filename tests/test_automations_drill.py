"""An automation's ``drill`` step end to end: the incident schedules a practice run, a timer
workflow (a child the incident abandons) declares it when due on the drill's compressed clock,
exactly once, taking the next free number as the intake does; a drill's own rules schedule no
other drill; a private incident's practice run is private and its timer names nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from tests.conftest import TASK_QUEUE
from tests.test_automations import ALICE, automation_log, declare, policy_with, settled
from workflows.lifecycle.numbering import IncidentKeyClaim, highest_number
from workflows.preview import Scenario, dry_run, preview
from workflows.text import incident_id


def practise(after: str = "1s", **step: Any) -> dict[str, Any]:
    return {"name": "practise it", "on": "declared", "do": [{"drill": {"after": after, **step}}]}


async def timers_of(client: Client, incident: str) -> list[str]:
    query = f"WorkflowType = 'DrillTimer' AND ParentWorkflowId = '{incident}'"
    return [execution.id async for execution in client.list_workflows(query)]


async def the_timer(client: Client, incident: str) -> WorkflowHandle[Any, Any]:
    found = await settled(lambda: timers_of(client, incident), bool)
    assert len(found) == 1, found
    return client.get_workflow_handle(found[0])


async def test_a_rule_schedules_a_practice_run_declared_once_when_due(client, worker, slack):
    policy = policy_with(practise("2s", title="Practice: {title} ({label})"))
    desk, state = await declare(client, policy, "Checkout failing", components=["api"])
    log = await settled(lambda: automation_log(desk, state.id), bool)
    title = f"Practice: Checkout failing ({state.label})"
    assert log == [f"Automation 'practise it': scheduled a drill '{title}' in 0:00:02"]
    timer = await the_timer(client, state.id)
    described = await timer.describe()
    assert await described.static_summary() == f"Drill of {state.label}: {title}"

    drill_id = await timer.result()
    drill = await desk.get(drill_id)
    assert drill.number > state.number and drill.drill
    assert (drill.title, drill.severity, drill.components) == (title, "sev2", ["api"])
    assert drill.roles.commander == ALICE and drill.source == "automation"
    assert drill.summary == f"A practice run of {state.label}, scheduled by automation " + (
        "'practise it'."
    )
    # The drill runs the same rules, compressed; its own "declared" schedules no other drill.
    found = await settled(lambda: automation_log(desk, drill_id), bool)
    timeline = (await desk.get(drill_id)).timeline
    print("\n".join(["", *log, *(f"{drill.label}: {e.kind}: {e.text}" for e in timeline)]))
    assert found == [
        f"Automation 'practise it': did not drill: {drill.label} is a drill; "
        "a drill schedules no other drill"
    ]
    assert await timers_of(client, drill_id) == []
    channel = await settled(lambda: desk.get(drill_id), lambda s: s.channel is not None)
    assert channel.channel is not None and channel.channel.name.startswith("drill-")
    assert await timers_of(client, state.id) == [timer.id]  # once: the incident moved on
    # The dry run over the recorded incident shows what the live run did.
    dry = dry_run(policy, await desk.get(state.id), datetime.now(UTC))
    assert [s.text for s in dry if s.what == "automation"] == log


def test_the_preview_shows_the_drill_scheduled():
    policy = policy_with(practise("14d"))
    shown = [s.text for s in preview(policy, Scenario(severity="sev2", horizon="1h"))]
    assert (
        "Automation 'practise it': scheduled a drill 'Practice: Policy preview' in 14 days, 0:00:00"
        in shown
    )


async def test_the_drill_steps_past_a_number_taken_meanwhile(client, worker, slack):
    desk, state = await declare(client, policy_with(practise("3s")), "Numbers taken")
    timer = await the_timer(client, state.id)
    # Someone holds the next number when the drill is due (its workflow is not an incident,
    # so visibility does not count it): the drill takes the one after.
    taken = await highest_number(client) + 1
    blocker = await client.start_workflow(
        IncidentKeyClaim.run, 0, id=incident_id(taken), task_queue=TASK_QUEUE
    )
    try:
        drill_id = await timer.result()
    finally:
        await blocker.terminate(reason="the test is done")
    assert drill_id == incident_id(taken + 1)
    history = await timer.fetch_history()
    failed = EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_FAILED
    assert [e.event_type for e in history.events].count(failed) == 1
    assert (await desk.get(drill_id)).drill


async def test_a_private_incidents_practice_run_is_private(client, worker, slack):
    desk, state = await declare(client, policy_with(practise()), "Secret leak", private=True)
    timer = await the_timer(client, state.id)
    assert await (await timer.describe()).static_summary() is None
    drill = await desk.get(await timer.result())
    assert drill.private and drill.drill

"""Recorded histories must replay on today's code: a change that would break running
incidents fails here (see tests/record_histories.py for how they are made)."""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.worker import Replayer
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from config import Settings
from config.temporal import data_converter
from localslack import SlackEmulator
from starter.desk import IncidentDesk
from tests.conftest import seconds_policy
from tests.support import eventually
from tests.test_durability import keyed
from worker import WORKFLOW_RUNNER
from workflows.incident import IncidentWorkflow
from workflows.lifecycle import commands as cmd
from workflows.lifecycle.numbering import DrillTimer, IncidentKeyClaim
from workflows.models import Declaration, Status
from workflows.text import incident_id

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def workflow_id(path: Path, events: dict[str, Any]) -> str:
    """The id the history ran under: an incident's state and memo hold it (``incident-N``)."""
    started = events["events"][0]["workflowExecutionStartedEventAttributes"]
    if started["workflowType"]["name"] != "IncidentWorkflow":
        return path.stem
    payload = started["input"]["payloads"][0]["data"]
    return incident_id(json.loads(base64.b64decode(payload))["number"])


# The SDK's default sandbox (each module imported again per run: module state would show) and
# the one the worker runs them in.
RUNNERS = {"sandboxed": SandboxedWorkflowRunner(), "worker": WORKFLOW_RUNNER}


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_recorded_history_replays(path: Path, runner: str):
    events = json.loads(path.read_text())
    history = WorkflowHistory.from_json(workflow_id(path, events), events)
    replayer = Replayer(
        workflows=[IncidentWorkflow, IncidentKeyClaim, DrillTimer],
        data_converter=data_converter(),
        workflow_runner=RUNNERS[runner],
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


def test_histories_are_recorded():
    expected = {"incident_lifecycle", "key_claim", "incident_drill_step", "drill_timer"}
    assert {p.stem for p in HISTORIES} >= expected


ENCODED: list[str] = []  # the types a converter below was given to encode, in order


def counting_converter() -> DataConverter:
    product = data_converter()

    class Counting(product.payload_converter_class):  # type: ignore[misc,name-defined]
        def to_payloads(self, values: Any) -> Any:
            ENCODED.extend(type(value).__name__ for value in values)
            return super().to_payloads(values)

    return dataclasses.replace(product, payload_converter_class=Counting)


async def test_a_replay_encodes_no_request_or_answer_again():
    """Temporal keeps the payloads a history's commands sent; a replay (every sticky-cache
    miss) sends stand-ins for the activities' requests, the Updates' answers and the result
    instead of encoding the state and each request again (``visibility.sent_once``)."""
    path = Path(__file__).parent / "histories" / "incident_lifecycle_one_run.json"
    events = json.loads(path.read_text())
    history = WorkflowHistory.from_json(workflow_id(path, events), events)
    kinds = [e.WhichOneof("attributes") for e in history.events]
    sent = kinds.count("activity_task_scheduled_event_attributes")
    answered = kinds.count("workflow_execution_update_completed_event_attributes")
    answered += kinds.count("workflow_execution_completed_event_attributes")  # its result
    assert sent >= 3 and answered >= 3, "the recording no longer shows what this checks"
    replayer = Replayer(
        workflows=[IncidentWorkflow],
        data_converter=counting_converter(),
        workflow_runner=WORKFLOW_RUNNER,
    )
    ENCODED.clear()
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
    assert ENCODED.count("RawValue") == sent + answered, ENCODED
    assert not {"IncidentState", "OpenIncident", "PostMessage"} & set(ENCODED), ENCODED


async def test_a_worker_that_caches_nothing_still_sends_and_answers_in_full(
    client: Client, slack: SlackEmulator, settings: Settings, worker: None
):
    """Without a sticky cache every workflow task replays the incident from its start, so
    each one's new commands come after a replay that sent stand-ins: none may reach Slack or
    a caller."""
    from worker import build_worker

    uncached = settings.model_copy(update={"task_queue": "incidents-uncached"})
    async with (
        httpx.AsyncClient() as http,
        build_worker(client, uncached, http, max_cached_workflows=0),
    ):
        desk = IncidentDesk(client, uncached.task_queue, seconds_policy(update_every=1))
        declared = Declaration(title="Uncached checkout", severity="sev2", commander="U0ALICE01")
        state, _ = await desk.declare(declared)
        assert state.channel is not None and state.kickoff is not None  # the opening's answer
        channel = state.channel.id
        acked = await desk.command(state.id, cmd.Acknowledge(by="U0BOB0002"))
        assert (acked.acknowledged_by, acked.channel) == ("U0BOB0002", state.channel)

        def posted(*prefixes: str) -> list[str]:
            return [str(m.get("text", "")) for m in keyed(slack.messages(channel), *prefixes)]

        reminders = await eventually(lambda: posted("update_due"), timeout=10)
        assert "status update is due" in reminders[0]
        identified = cmd.SetStatus(status=Status.IDENTIFIED, message="bad deploy rolled back")
        changed = await desk.command(state.id, identified)
        assert changed.status is Status.IDENTIFIED and changed.number == state.number
        said = await eventually(lambda: [t for t in posted("") if "bad deploy" in t], timeout=10)
        assert "identified" in said[0].lower(), said
        await desk.command(state.id, cmd.Resolve())  # its reminders stop with the test

"""Recorded histories must replay on today's code: a change that would break running
incidents fails here (see tests/record_histories.py for how they are made)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from config.temporal import data_converter
from worker import WORKFLOW_RUNNER
from workflows.incident import IncidentWorkflow
from workflows.lifecycle.numbering import DrillTimer, IncidentKeyClaim
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

"""Recorded histories must replay on today's code: a change that would break running
incidents fails here (see tests/record_histories.py for how they are made)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.claims import IncidentKeyClaim
from workflows.incident import IncidentWorkflow
from workflows.registry import IncidentRegistry

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_recorded_history_replays(path: Path):
    history = WorkflowHistory.from_json(path.stem, json.loads(path.read_text()))
    replayer = Replayer(
        workflows=[IncidentWorkflow, IncidentRegistry, IncidentKeyClaim],
        data_converter=pydantic_data_converter,
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


def test_histories_are_recorded():
    assert {p.stem for p in HISTORIES} >= {"incident_lifecycle", "registry"}

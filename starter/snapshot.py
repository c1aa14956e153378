"""An incident's state, answered even before any worker has run its workflow.

A started workflow is durable at once, but a query needs a worker to run it, and before the
first workflow task completes nobody can answer one (the query would wait out its timeout).
So: if the workflow has not run yet, its state is what its start input says, derived by the
same pure ``IncidentInput.first_state`` the workflow will run (channel ``None``, nothing sent yet).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from workflows.incident import IncidentInput, IncidentWorkflow
from workflows.models import IncidentState

# A workflow that has run at least once has a longer history than this: read it to be sure.
SHORT_HISTORY = 16
QUERY_TIMEOUT = timedelta(seconds=5)


class NoWorkerAnswered(Exception):
    """The incident has run before, but no worker answered the query in time."""


async def current_state(
    client: Client, handle: WorkflowHandle[Any, Any], described: WorkflowExecutionDescription
) -> IncidentState:
    length = described.raw_description.workflow_execution_info.history_length
    if length <= SHORT_HISTORY:
        declared = await _declared_state(client, handle, described)
        if declared is not None:
            return declared
    try:
        return await handle.query(IncidentWorkflow.snapshot, rpc_timeout=QUERY_TIMEOUT)
    except RPCError as error:
        if error.status in (RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED):
            raise NoWorkerAnswered(str(error)) from error
        raise


async def _declared_state(
    client: Client, handle: WorkflowHandle[Any, Any], described: WorkflowExecutionDescription
) -> IncidentState | None:
    """The state as started, if no workflow task has completed yet; else None."""
    started: IncidentInput | None = None
    async for event in client.get_workflow_handle(
        described.id, run_id=described.run_id
    ).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            return None
        attributes = event.workflow_execution_started_event_attributes
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            values = await client.data_converter.decode(attributes.input.payloads, [IncidentInput])
            started = values[0]
    if started is None:
        return None
    # The workflow's own first state: declared when the intake's start was accepted (as the
    # workflow has it), or carried over whole by a continued run.
    state, _ = started.first_state(described.id, described.start_time)
    return state

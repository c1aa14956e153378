"""Reading incidents from Temporal: one incident's state, and pages of them from visibility.

One incident's state is answered even before any worker has run its workflow. A started
workflow is durable at once, but a query needs a worker to run it, and before the first
workflow task completes nobody can answer one (the query would wait out its timeout). So: if
the workflow has not run yet, its state is what its start input says, derived by the same
pure ``IncidentInput.first_state`` the workflow will run (channel ``None``, nothing sent yet).

Listing uses visibility alone: no query, no replay, per workflow. Each incident keeps its list
view in its memo (``workflows.lifecycle.visibility``) and its status, severity and commander
in search attributes, so one ``ListWorkflowExecutions`` call answers a page. Status, severity,
commander, type and open/closed are visibility filters. Text (in the title) is filtered here, on
the memo of each visibility page: the incident search attributes are keywords (exact match
only), and substring matching on a Text attribute depends on the visibility store (SQLite,
PostgreSQL and Elasticsearch differ), so the result would too.

What one person's App Home holds is derived here too, from one ``HomeReading`` that serves
everyone's (``starter.slack.events.Home`` reads it and publishes).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionDescription,
    WorkflowHandle,
)
from temporalio.common import SearchAttributeKey
from temporalio.service import RPCError, RPCStatusCode

from workflows.incident import IncidentInput, IncidentWorkflow
from workflows.incident_types import members
from workflows.lifecycle.visibility import (
    INCIDENT_COMMANDER,
    INCIDENT_SEVERITY,
    INCIDENT_STATUS,
    INCIDENT_TYPE,
    MEMO_KEY,
    IncidentSummary,
    incidents_where,
    summarize,
    where,
)
from workflows.models import ActionItem, IncidentState, Role, Status
from workflows.oncall.rotation import Roster
from workflows.oncall.schedules import Shift

# -- one incident --------------------------------------------------------------------------

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


async def started_with(client: Client, workflow_id: str, started: IncidentInput) -> bool:
    """Whether ``started`` is the input that started the workflow, byte for byte."""
    given = await client.data_converter.encode([started])
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events(page_size=1):
        return list(event.workflow_execution_started_event_attributes.input.payloads) == given
    return False


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


# -- pages of incidents ---------------------------------------------------------------------

# Text filtering reads at most this many visibility pages for one answer (then hands back a
# token to go on), so a rare word cannot turn one request into a scan of every incident.
TEXT_SCAN_PAGES = 5
OLD_QUERY_TIMEOUT = timedelta(seconds=2)


TASK_QUEUE = SearchAttributeKey.for_keyword("TaskQueue")  # Temporal's own, in list filters


@dataclass
class ListFilter:
    status: Status | None = None
    severity: str | None = None
    commander: str | None = None
    text: str | None = None
    open: bool | None = None
    type: str | None = None
    running_on: str | None = None  # only workflows running on this task queue (the desk's own)

    def query(self) -> str:
        clauses = [
            "ExecutionStatus != 'Terminated'",
            # An incident's earlier runs: the one that opened it, and any whose history grew long.
            "ExecutionStatus != 'ContinuedAsNew'",
        ]
        if self.status is not None:
            clauses.append(where(INCIDENT_STATUS, "=", self.status.value))
        if self.severity is not None:
            clauses.append(where(INCIDENT_SEVERITY, "=", self.severity))
        if self.commander is not None:
            clauses.append(where(INCIDENT_COMMANDER, "=", self.commander))
        if self.type is not None:
            clauses.append(where(INCIDENT_TYPE, "=", self.type))
        if self.open is True:
            clauses += [
                where(INCIDENT_STATUS, "!=", Status.RESOLVED),
                "ExecutionStatus = 'Running'",
            ]
        elif self.open is False:
            clauses.append(where(INCIDENT_STATUS, "=", Status.RESOLVED))
        if self.running_on is not None:
            clauses += ["ExecutionStatus = 'Running'", where(TASK_QUEUE, "=", self.running_on)]
        return incidents_where(*clauses)

    def keeps(self, incident: IncidentSummary) -> bool:
        return not self.text or self.text.casefold() in incident.title.casefold()


@dataclass
class Page:
    incidents: list[IncidentSummary] = field(default_factory=list)
    next_page_token: bytes | None = None


async def list_page(
    client: Client, filters: ListFilter, page_size: int, token: bytes | None
) -> Page:
    """A page may hold fewer than ``page_size`` (text filter); only no token means the end."""
    page = Page(next_page_token=token)
    for _ in range(TEXT_SCAN_PAGES if filters.text else 1):
        executions = client.list_workflows(
            filters.query(), page_size=page_size, next_page_token=page.next_page_token
        )
        await executions.fetch_next_page()
        found = await asyncio.gather(*(_summary(client, e) for e in executions.current_page or []))
        page.incidents += [s for s in found if s is not None and filters.keeps(s)]
        page.next_page_token = executions.next_page_token or None
        if page.incidents or page.next_page_token is None:
            break
    page.incidents.sort(key=lambda s: s.number, reverse=True)
    return page


async def _summary(client: Client, execution: WorkflowExecution) -> IncidentSummary | None:
    payload = execution.raw_info.memo.fields.get(MEMO_KEY)
    if payload is not None and payload.metadata.get("encoding") == b"json/plain":
        # Straight from the JSON: a page of 1,000 is 1,000 of these, so skip the converter.
        return IncidentSummary.model_validate_json(payload.data)
    memo = await execution.memo()
    if MEMO_KEY in memo:
        return IncidentSummary.model_validate(memo[MEMO_KEY])
    # Declared before incidents kept a memo, and unchanged since: ask the incident itself.
    handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
    try:
        state = await handle.query(IncidentWorkflow.snapshot, rpc_timeout=OLD_QUERY_TIMEOUT)
    except RPCError:  # a listing must not fail because one old incident cannot answer
        return None
    return summarize(state)


# -- one person's App Home ------------------------------------------------------------------

SHIFTS_AHEAD = timedelta(days=14)
HOME_SHIFTS = 5
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class HomeReading:
    """The running incidents' states and every schedule's shifts from ``at`` on, by schedule
    (None: one did not answer), read once for everyone's Home."""

    states: tuple[IncidentState, ...]
    shifts: dict[str, list[Shift]] | None
    at: datetime

    @classmethod
    def of(
        cls, states: tuple[IncidentState, ...], rosters: dict[str, Roster] | None, at: datetime
    ) -> HomeReading:
        ahead = at + SHIFTS_AHEAD
        shifts = None if rosters is None else {n: r.shifts(at, ahead) for n, r in rosters.items()}
        return cls(states, shifts, at)


Roles = list[tuple[IncidentState, list[str]]]
Items = list[tuple[IncidentState, ActionItem]]


def person_home(
    reading: HomeReading, user: str, steady: bool = False
) -> tuple[Roles, Items, list[Shift] | None]:
    """Their open incidents with their roles, their open action items, their next shifts; a
    private incident only to its members (as ``/incident list`` shows it).
    ``steady``: a shift under way starts at the reading's time, which tells nothing new, so
    it starts at the epoch instead (to tell whether a Home changed, not to show)."""
    states = [s for s in reading.states if not s.private or user in members(s)]
    mine = [(s, roles_of(s, user)) for s in states if s.status != Status.RESOLVED]
    items = [(s, i) for s in states for i in s.action_items if i.is_open and i.owner == user]
    at = reading.at
    shifts = None if reading.shifts is None else person_shifts(reading.shifts, user)
    if shifts is not None and steady:
        shifts = [s.model_copy(update={"start": EPOCH}) if s.start <= at else s for s in shifts]
    return [m for m in mine if m[1]], items, None if shifts is None else shifts[:HOME_SHIFTS]


def roles_of(state: IncidentState, user: str) -> list[str]:
    """The person's roles in the incident by their names: commander, tech lead, comms lead,
    responder."""
    held = [r.value.replace("_", " ") for r in Role if state.roles.holder(r) == user]
    return held + ["responder"] * (user in state.responders)


def person_shifts(shifts: dict[str, list[Shift]], user: str) -> list[Shift]:
    """One person's shifts among every schedule's, each named in ``user`` as the schedule."""
    found = [
        shift.model_copy(update={"user": name})
        for name, listed in shifts.items()
        for shift in listed
        if shift.user == user
    ]
    return sorted(found, key=lambda s: s.start)


def shown_digest(view: dict[str, Any]) -> str:
    """What a view shows, to tell whether it changed since it was published."""
    return hashlib.sha256(json.dumps(view, sort_keys=True).encode()).hexdigest()

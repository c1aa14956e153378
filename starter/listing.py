"""Listing incidents from Temporal visibility alone: no query, no replay, per workflow.

Each incident keeps its list view in its memo (``workflows.listing``) and its status, severity
and commander in search attributes, so one ``ListWorkflowExecutions`` call answers a page.
Status, severity, commander and open/closed are visibility filters. Text (in the title) is
filtered here, on the memo of each visibility page: the incident search attributes are
keywords (exact match only), and substring matching on a Text attribute depends on the
visibility store (SQLite, PostgreSQL and Elasticsearch differ), so the result would too.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio.client import Client, WorkflowExecution
from temporalio.service import RPCError

from workflows.incident import IncidentWorkflow
from workflows.lifecycle.visibility import (
    INCIDENT_COMMANDER,
    INCIDENT_SEVERITY,
    INCIDENT_STATUS,
    MEMO_KEY,
    IncidentSummary,
    incidents_where,
    summarize,
    where,
)
from workflows.models import Status

# Text filtering reads at most this many visibility pages for one answer (then hands back a
# token to go on), so a rare word cannot turn one request into a scan of every incident.
TEXT_SCAN_PAGES = 5
OLD_QUERY_TIMEOUT = timedelta(seconds=2)


@dataclass
class ListFilter:
    status: Status | None = None
    severity: str | None = None
    commander: str | None = None
    text: str | None = None
    open: bool | None = None

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
        if self.open is True:
            clauses += [
                where(INCIDENT_STATUS, "!=", Status.RESOLVED),
                "ExecutionStatus = 'Running'",
            ]
        elif self.open is False:
            clauses.append(where(INCIDENT_STATUS, "=", Status.RESOLVED))
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

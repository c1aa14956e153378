"""The list view of an incident, kept in its workflow's memo so listing needs no query.

Only fields that change with a person's command or an escalation are here (not the update
cadence), so a reminder fire writes no memo to history. Timeline, action items and the summary
text are read from the incident itself (``GET /incidents/{id}``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from workflows.models import Channel, Impact, IncidentState, Roles, Status, incident_label

MEMO_KEY = "incident"


class IncidentSummary(BaseModel):
    id: str
    number: int
    title: str
    severity: str
    status: Status
    impact: Impact
    components: list[str] = Field(default_factory=list)
    roles: Roles = Field(default_factory=Roles)
    channel: Channel | None = None
    declared_at: datetime
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    escalation_level: int = 0
    archived_at: datetime | None = None
    idempotency_key: str | None = None
    drill: bool = False

    @property
    def label(self) -> str:
        return incident_label(self.number)


def summarize(state: IncidentState) -> IncidentSummary:
    return IncidentSummary.model_validate(
        state.model_dump(include=set(IncidentSummary.model_fields))
    )


def memo_of(state: IncidentState) -> dict[str, Any]:
    """JSON-ready, so the memo decodes the same with any data converter. ``drill`` is there
    only for drills: the memo of every other incident stays as recorded histories have it."""
    exclude = None if state.drill else {"drill"}
    return summarize(state).model_dump(mode="json", exclude=exclude)

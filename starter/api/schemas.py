"""What the HTTP API gives, kept apart from the workflow's own state.

Requests are the commands themselves (``workflows.lifecycle.commands``). The workflow state may grow
fields (outbox bookkeeping, deadlines) that callers should not depend on; these models are the
published shape of an incident, and the OpenAPI document is built from them.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from workflows.lifecycle.visibility import IncidentSummary
from workflows.models import Impact, IncidentState, Status

# -- responses -------------------------------------------------------------------------------


class RolesOut(BaseModel):
    commander: str | None
    tech_lead: str | None
    comms_lead: str | None


class ChannelOut(BaseModel):
    id: str
    name: str


class TimelineEntryOut(BaseModel):
    at: datetime
    kind: str
    actor: str | None
    text: str
    via: str | None = Field(
        default=None, description="The API token the command came through, when it came so."
    )
    source: str | None = Field(
        default=None,
        description="Where it came in: api, cli, slack or alert:<source> (none: the incident's "
        "own doing, like an escalation, or recorded before entry points were).",
    )


class ActionItemOut(BaseModel):
    id: int
    text: str
    owner: str | None
    created_at: datetime
    due_at: datetime | None
    done_at: datetime | None
    dropped_at: datetime | None = None


class RetrospectiveOut(BaseModel):
    required: bool
    due_at: datetime | None
    completed_at: datetime | None
    document_url: str | None
    meeting_at: datetime | None = None


class AutomationWaitOut(BaseModel):
    id: int = Field(description="Its number: `POST /incidents/{id}/automations/skip` takes it.")
    rule: str = Field(description="The policy's rule (`[[automations]]` name).")
    event: dict[str, Any] = Field(description="The event that started it, as its rule read it.")
    due_at: datetime = Field(description="When its wait ends: `unless` is asked, then its steps.")


class IncidentOut(BaseModel):
    id: str = Field(description="The workflow id, like incident-42.", examples=["incident-42"])
    number: int
    label: str = Field(description="What people call it, like INC-42.", examples=["INC-42"])
    title: str
    severity: str
    status: Status
    impact: Impact
    components: list[str]
    summary: str
    roles: RolesOut
    responders: list[str]
    channel: ChannelOut | None = Field(description="The Slack channel, once it exists.")
    declared_at: datetime
    declared_by: str | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    escalation_level: int
    last_update_at: datetime
    next_update_due: datetime | None
    archived_at: datetime | None
    timeline: list[TimelineEntryOut]
    action_items: list[ActionItemOut]
    retrospective: RetrospectiveOut
    report: str | None = Field(default=None, description="Situation report (Markdown).")
    url: str = Field(description="The incident's workflow in the Temporal Web UI.")
    drill: bool = Field(default=False, description="A practice run: no pages, no metrics.")
    type: str | None = Field(default=None, description="The incident's type in the policy.")
    private: bool = Field(default=False, description="Shown only to its members and admins.")
    automations: list[AutomationWaitOut] = Field(
        default_factory=list, description="The policy's rules waiting for their `after`."
    )

    @classmethod
    def of(cls, state: IncidentState, url: str) -> IncidentOut:
        return cls.model_validate({**state.model_dump(), "label": state.label, "url": url})


class IncidentSummaryOut(BaseModel):
    """An incident in a list: what the list shows; the rest is at `GET /incidents/{id}`."""

    id: str = Field(examples=["incident-42"])
    number: int
    label: str = Field(examples=["INC-42"])
    title: str
    severity: str
    status: Status
    impact: Impact
    components: list[str]
    roles: RolesOut
    channel: ChannelOut | None
    declared_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    escalation_level: int
    archived_at: datetime | None
    url: str
    drill: bool = False
    type: str | None = None
    private: bool = False

    @classmethod
    def of(cls, incident: IncidentSummary, url: str) -> IncidentSummaryOut:
        return cls.model_validate({**incident.model_dump(), "label": incident.label, "url": url})


PAGE_TOKEN = r"^p1\.[A-Za-z0-9_-]+$"  # "p1." and Temporal's page token in URL-safe base64


def packed(token: bytes) -> str:
    return "p1." + base64.urlsafe_b64encode(token).decode().rstrip("=")


def unpacked(token: str) -> bytes:
    """Temporal's token again; ``ValueError`` when the text cannot be one (``binascii.Error``)."""
    data = token.removeprefix("p1.")
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


class IncidentList(BaseModel):
    incidents: list[IncidentSummaryOut]
    next_page_token: str | None = Field(
        default=None, description="Pass it back for the next page; absent on the last page."
    )


class Health(BaseModel):
    status: str = Field(examples=["ok"])
    temporal: str = Field(description="`serving` when Temporal answers.", examples=["serving"])

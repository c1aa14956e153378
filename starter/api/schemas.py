"""What the HTTP API takes and gives, kept apart from the workflow's own models.

The workflow state may grow fields (outbox bookkeeping, deadlines) that callers should not
depend on; these models are the published shape, and the OpenAPI document is built from them.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from workflows.listing import IncidentSummary
from workflows.models import Impact, IncidentState, Role, Status, UserId

By = UserId | None
BY = Field(default=None, description="Slack user id of who acts (like U024BE7LH).")


# -- requests --------------------------------------------------------------------------------


class DeclareRequest(BaseModel):
    title: str = Field(min_length=1, max_length=200, examples=["Checkout failing"])
    severity: str = Field(description="A severity of the policy in force, like sev1.")
    summary: str = Field(default="", max_length=3000)
    impact: Impact = Impact.MAJOR
    components: list[str] = Field(default_factory=list, examples=[["checkout", "payments"]])
    commander: By = Field(default=None, description="Slack user id of the incident commander.")
    responders: list[UserId] = Field(default_factory=list, description="Slack user ids to invite.")
    template: str | None = Field(
        default=None, description="A policy template that fills what this request leaves out."
    )
    idempotency_key: str | None = Field(
        default=None,
        max_length=200,
        description="While an incident with this key is open, declaring again returns it.",
    )
    by: By = BY


class AcknowledgeRequest(BaseModel):
    by: By = BY


class StatusRequest(BaseModel):
    status: Status
    message: str = Field(default="", max_length=3000)
    by: By = BY


class UpdateRequest(BaseModel):
    message: str = Field(min_length=1, max_length=3000)
    by: By = BY


class SeverityRequest(BaseModel):
    severity: str = Field(description="A severity of the policy in force, like sev2.")
    reason: str = Field(default="", max_length=3000)
    by: By = BY


class RoleRequest(BaseModel):
    role: Role
    user: UserId = Field(description="Slack user id who takes the role.")
    by: By = BY


class RespondersRequest(BaseModel):
    users: list[UserId] = Field(min_length=1, max_length=100)
    by: By = BY


class EscalateRequest(BaseModel):
    reason: str = Field(default="", max_length=3000)
    by: By = BY


class ResolveRequest(BaseModel):
    message: str = Field(default="", max_length=3000)
    by: By = BY


class ReopenRequest(BaseModel):
    reason: str = Field(default="", max_length=3000)
    by: By = BY


class ActionItemRequest(BaseModel):
    text: str = Field(min_length=1, max_length=500)
    owner: By = Field(default=None, description="Slack user id who owns the item.")
    by: By = BY


class CompleteActionItemRequest(BaseModel):
    by: By = BY


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


class ActionItemOut(BaseModel):
    id: int
    text: str
    owner: str | None
    created_at: datetime
    due_at: datetime | None
    done_at: datetime | None


class RetrospectiveOut(BaseModel):
    required: bool
    due_at: datetime | None
    completed_at: datetime | None
    document_url: str | None


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
    url: str = Field(description="The incident's workflow in the Temporal Web UI.")

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

    @classmethod
    def of(cls, incident: IncidentSummary, url: str) -> IncidentSummaryOut:
        return cls.model_validate({**incident.model_dump(), "label": incident.label, "url": url})


class IncidentList(BaseModel):
    incidents: list[IncidentSummaryOut]
    next_page_token: str | None = Field(
        default=None, description="Pass it back for the next page; absent on the last page."
    )


class Health(BaseModel):
    status: str = Field(examples=["ok"])
    temporal: str = Field(description="The Temporal frontend that answered.")

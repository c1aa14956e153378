"""The incident domain: what an incident is, as the workflow keeps it.

Plain pydantic, deterministic and free of I/O, so the workflow sandbox can use it and
continue-as-new can carry it whole; times are set by the caller (``workflow.now()``), never read.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, cast

from pydantic import AfterValidator, AliasChoices, BaseModel, Field

from workflows.automations import AutomationWait
from workflows.text import Line, RequiredText, Text, incident_label, slack_user_id

UserId = Annotated[str, AfterValidator(slack_user_id)]


class Status(StrEnum):
    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"

    @property
    def rank(self) -> int:
        return list(Status).index(self)


class Impact(StrEnum):
    NONE = "none"
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


class Role(StrEnum):
    COMMANDER = "commander"
    TECH_LEAD = "tech_lead"
    COMMS_LEAD = "comms_lead"

    @property
    def display(self) -> str:
        return {"commander": "Incident commander", "tech_lead": "Tech lead"}.get(
            self.value, "Comms lead"
        )


class Roles(BaseModel):
    """One person per role; in particular exactly one commander at a time."""

    commander: str | None = None
    tech_lead: str | None = None
    comms_lead: str | None = None

    def holder(self, role: Role) -> str | None:
        return cast("str | None", getattr(self, role.value))


class Channel(BaseModel):
    id: str
    name: str


class TimelineEntry(BaseModel):
    at: datetime
    kind: str
    actor: str | None = None
    text: str
    via: str | None = None  # the API token a command came through: "service-1", "tok_..."
    source: str | None = None  # where it came in (``text.EntryPoint``): api, cli, slack...


class ActionItem(BaseModel):
    id: int
    text: str
    owner: str | None = None
    created_at: datetime
    due_at: datetime | None = None
    done_at: datetime | None = None
    dropped_at: datetime | None = None
    reminders_sent: int = 0  # since it fell due: the next reminder is one interval later

    @property
    def is_open(self) -> bool:
        return self.done_at is None and self.dropped_at is None


class AlertTally(BaseModel):
    """Alerts of the incident's group seen so far; the timeline holds a digest, not each one."""

    batches: int = 0
    # Each distinct alert's latest status, by fingerprint (workflows.alerts.folding.identity):
    # the counts below are read from it, so a group sent again counts once.
    latest: dict[str, str] = Field(default_factory=dict)
    untold: int = 0  # alerts of the group's latest notification that were not told apart
    firing: int = 0
    resolved: int = 0
    last_at: datetime | None = None
    group_resolved: bool = False  # said in the channel; said again only after firing anew


class Retrospective(BaseModel):
    required: bool = False
    due_at: datetime | None = None
    completed_at: datetime | None = None
    document_url: str | None = None
    meeting_at: datetime | None = None  # the slot proposed in business hours
    drafted_at: datetime | None = None  # draft and invitation sent
    reminders_sent: int = 0


MAX_COMPONENTS = 50
MAX_START_TIER = 20  # a declaration starts at most this many escalation tiers in
# A component is a name people recognise ("checkout"), not a paragraph.
Component = Annotated[Line, Field(max_length=100)]


class Link(BaseModel):
    """A link worth a click from the incident channel (a dashboard, a doc, a ticket)."""

    title: Line = Field(min_length=1, max_length=100)
    url: str = Field(max_length=3000, pattern=r"^https?://\S+$")


Title = Annotated[Line, Field(min_length=1, max_length=200)]
SeverityName = Annotated[str, Field(min_length=1, max_length=50)]


class PublicStart(BaseModel):
    """An incident that starts on the status page, with this as its first public update."""

    message: RequiredText = Field(min_length=1, max_length=3000)
    impact: Impact | None = Field(default=None, description="Default: the incident's impact.")
    components: list[Component] | None = Field(
        default=None, max_length=MAX_COMPONENTS, description="Default: the incident's."
    )


class DeclarationRequest(BaseModel):
    """What someone asks for when they declare an incident (API, CLI, Slack or an alert).

    ``title`` and ``severity`` may come from the named template (``lifecycle.commands.complete``
    completes a request into a ``Declaration``, the only kind a workflow starts from).
    """

    title: Title | None = Field(default=None, description="Required unless the template gives one.")
    severity: SeverityName | None = Field(
        default=None,
        description="A severity of the policy (sev1, sev2, ...). Required unless the template "
        "gives one.",
    )
    summary: Text = Field(default="", max_length=3000)
    impact: Impact = Impact.MAJOR
    components: list[Component] = Field(default_factory=list, max_length=MAX_COMPONENTS)
    commander: UserId | None = None
    responders: list[UserId] = Field(default_factory=list, max_length=100)
    template: str | None = Field(
        default=None,
        max_length=100,
        description="A template of the policy (default: the type's): fills the title, severity, "
        "impact, summary, components and public start left out; what the request says wins.",
    )
    type: str | None = Field(default=None, max_length=63, description="A type of the policy.")
    idempotency_key: str | None = Field(default=None, max_length=200)
    links: list[Link] = Field(default_factory=list, max_length=10)
    # `by`, as every command names who acts, is taken too.
    declared_by: UserId | None = Field(
        default=None, validation_alias=AliasChoices("declared_by", "by")
    )
    source: str = "api"
    # Set by the API: the token it came through (what a client sends is replaced).
    via: str | None = Field(default=None, max_length=64, json_schema_extra={"readOnly": True})
    drill: bool = False  # a practice run: marked everywhere, compressed, no pages, no metrics
    escalation_level: int = Field(
        default=0,
        ge=0,
        le=MAX_START_TIER,
        description="Start past the first escalation tiers: tiers 1 to N are notified at once "
        "(invited and paged as each says) and the next tier's timer counts from the "
        "declaration. Beyond the policy's last tier: all tiers at once.",
    )
    public: PublicStart | None = Field(
        default=None,
        description="Start on the status page with this first public update (not for drills).",
    )
    private: bool = False  # members and admins only (or its type's); see docs/contract.md


class Declaration(DeclarationRequest):
    """A complete declaration: what the incident workflow starts from."""

    title: Title
    severity: SeverityName
    # When Temporal took the declaration (set by the intake, never by a client): the incident
    # is declared then, even if no worker runs it until later.
    accepted_at: datetime | None = None

    def declared_time(self, now: datetime) -> datetime:
        """The incident's declared time, given the workflow's first ``now``."""
        return now if self.accepted_at is None else min(self.accepted_at, now)


class PublicUpdate(BaseModel):
    """One public update on the status page: what the comms lead tells everyone."""

    at: datetime
    status: Status
    message: str = Field(max_length=3000)


class PublicInfo(BaseModel):
    """What the status page shows of this incident; None until someone makes it public."""

    components: list[str] = Field(default_factory=list)
    impact: Impact
    updates: list[PublicUpdate] = Field(default_factory=list)
    published_status: Status | None = None  # the incident status the page last heard of


class SimilarIncident(BaseModel):
    """An earlier incident like this one (the archive's full-text search), on the kickoff."""

    id: str
    label: str
    title: str
    components: list[str] = Field(default_factory=list)
    status: Status
    resolution: str = ""  # its resolution's message, else its latest status update


class MessageRef(BaseModel):
    """A message we posted: to edit (the kickoff, the announcement) or reply to in its thread."""

    channel_id: str
    ts: str


class IncidentState(BaseModel):
    """The whole incident: the query answer, the update results and the continue-as-new payload."""

    id: str
    number: int
    title: str
    summary: str = ""
    severity: str
    impact: Impact
    components: list[str] = Field(default_factory=list)
    status: Status = Status.INVESTIGATING
    roles: Roles = Field(default_factory=Roles)
    responders: list[str] = Field(default_factory=list)
    channel: Channel | None = None
    declared_at: datetime
    declared_by: str | None = None
    source: str = "api"
    idempotency_key: str | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    status_entered_at: dict[Status, datetime] = Field(default_factory=dict)
    resolved_at: datetime | None = None
    escalation_level: int = 0
    escalated_at: datetime | None = None
    paged_at: datetime | None = None  # first page sent: acknowledge and resolve follow it
    last_update_at: datetime
    updates_missed: int = 0
    notices_posted: int = 0  # numbers each notice, so a retried post can find its message
    next_update_due: datetime | None = None
    archived_at: datetime | None = None
    timeline: list[TimelineEntry] = Field(default_factory=list)
    marked: dict[str, list[str]] = {}  # channel message ts -> its pins and reactions that count
    action_items: list[ActionItem] = Field(default_factory=list)
    retrospective: Retrospective = Field(default_factory=Retrospective)
    alerts: AlertTally = Field(default_factory=AlertTally)
    # Update ids already applied, across runs (workflows/lifecycle/visibility.py).
    applied_updates: list[str] = Field(default_factory=list)
    kickoff: MessageRef | None = None
    announcement: MessageRef | None = None  # in the broadcast channel; its thread has the rest
    links: list[Link] = Field(default_factory=list)  # given at declaration, bookmarked
    report: str | None = None  # the situation report (Markdown), written at resolution
    report_at: datetime | None = None  # the resolution the report was written for
    drill: bool = False
    public: PublicInfo | None = None  # on the status page
    type: str | None = None  # a type of the policy
    private: bool = False  # declared so or by its type: hidden from non-members
    similar: list[SimilarIncident] = Field(default_factory=list)  # the closest, when it opened
    recurrences: int | None = None  # how many similar in all (None: not known)
    automations: list[AutomationWait] = Field(default_factory=list)  # rules waiting (after)

    @property
    def label(self) -> str:
        return incident_label(self.number)

    @property
    def is_open(self) -> bool:
        return self.status is not Status.RESOLVED

    def note(self, at: datetime, kind: str, actor: str | None, text: str) -> None:
        self.timeline.append(TimelineEntry(at=at, kind=kind, actor=actor, text=text))

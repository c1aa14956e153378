"""What the activities take and give: the incident's brief that messages are rendered from,
the channel's requests, files for Slack, emails, the invitation.

Plain data shared by the workflow and the activities (Slack, documents, mail, the archive).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from workflows.models import (
    Channel,
    Declaration,
    Impact,
    Link,
    MessageRef,
    SimilarIncident,
    Status,
)
from workflows.oncall.schedules import Schedule
from workflows.policy import Policy

CanvasKind = Literal["channel", "own"] | None


class WebhookCall(BaseModel):
    """An automation's ``webhook`` step: ``body`` POSTed as JSON, signed with HMAC-SHA256 when
    ``secret_env`` names the key (``X-Incident-Signature: sha256=<hex>``)."""

    key: str  # the delivery's id (``X-Incident-Delivery``), the same on every retry
    rule: str
    url: str
    secret_env: str | None = None
    body: dict[str, Any]

    @classmethod
    def of(
        cls,
        key: str,
        rule: str,
        url: str,
        secret_env: str | None,
        event: dict[str, Any],
        incident: dict[str, Any],
        private: bool,
    ) -> WebhookCall:
        """The rule, the event and the incident as the rule read them; of a private incident
        only what names it (no title, people or text)."""
        if private:
            incident = {f: incident[f] for f in ("id", "label", "severity", "status")}
            event = {"kind": event["kind"]}
        body = {"delivery": key, "rule": rule, "event": event, "incident": incident}
        return cls(key=key, rule=rule, url=url, secret_env=secret_env, body=body)


class DrillPlan(BaseModel):
    """An automation's practice run: its timer's id, and the drill it declares at ``due_at``
    (on the policy's compressed clock, as every drill runs)."""

    id: str  # the timer workflow's: ``incident-7-drill-12``
    rule: str
    origin: str  # the incident whose rule scheduled it: ``INC-7``
    due_at: datetime
    declaration: Declaration
    policy: Policy


class DocumentFile(BaseModel):
    filename: str
    title: str
    content: str
    mime: str = "text/markdown"
    # In Slack, a canvas where the workspace allows: the channel's own (the retrospective
    # draft), or one of its own the channel reads (the situation report); else this file.
    canvas: CanvasKind = None


class Upload(BaseModel):
    """Share files in a channel with Slack's external upload flow (the first as a canvas if it
    asks and Slack allows); a retry finds its share."""

    channel_id: str
    files: list[DocumentFile]
    comment: str = ""


class Uploaded(BaseModel):
    permalinks: list[str] = Field(default_factory=list)  # the canvas's first, when one was made
    canvas: bool = False
    refused: str = ""  # Slack's answer when the workspace allowed no canvas: a file went instead


class People(BaseModel):
    users: list[str]


class Emails(BaseModel):
    by_user: dict[str, str] = Field(default_factory=dict)  # user id -> email, when Slack has one


class Invitation(BaseModel):
    """The retrospective meeting, rendered as an iCalendar request by an activity."""

    uid: str
    summary: str
    description: str
    start: datetime
    length_seconds: float
    attendees: list[str]  # emails


class Email(BaseModel):
    key: str  # becomes the Message-ID, so a retried send is recognisably the same message
    to: list[str]
    subject: str
    body: str
    attachments: list[DocumentFile] = Field(default_factory=list)
    # Mail to subscribers: List-Unsubscribe with RFC 8058 one-click (a POST to this URL).
    unsubscribe_url: str | None = None


class Sent(BaseModel):
    sent: bool
    reason: str = ""


class IncidentBrief(BaseModel):
    """The part of an incident that messages, topics and pages are rendered from."""

    id: str
    number: int
    title: str
    summary: str
    severity: str
    severity_description: str
    paging_severity: str = "error"
    impact: Impact
    status: Status
    components: list[str]
    commander: str | None
    tech_lead: str | None
    comms_lead: str | None
    channel: Channel | None
    escalation_level: int
    next_update_due: datetime | None
    declared_at: datetime
    resolved_at: datetime | None
    declared_by: str | None = None
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    drill: bool = False
    type: str | None = None  # the incident's type, with the policy's description of it
    type_description: str = ""
    similar: list[SimilarIncident] = Field(default_factory=list)  # the kickoff's only
    private: bool = False  # its channel is: the announcement offers no Join
    # Broadcast posts reply in the announcement's thread; also in the channel if the severity's
    # ``broadcast_replies`` says so (Slack's ``reply_broadcast``).
    announcement: MessageRef | None = None
    broadcast_replies: bool = False
    retrospective_url: str | None = None  # the draft (the channel's canvas, or a file), linked


class Recurrences(BaseModel):
    """Earlier incidents like this one in the archive: the closest, best first, and how many
    in all (any shared word counts; private incidents and drills never do)."""

    closest: list[SimilarIncident] = Field(default_factory=list)
    total: int = 0


class OpenChannel(BaseModel):
    """Create (or find again, on a retry) the incident's channel."""

    incident_id: str
    label: str
    title: str
    name: str
    drill: bool = False
    private: bool = False  # a private channel (Slack's groups:* scopes)


class SetTopic(BaseModel):
    channel_id: str
    brief: IncidentBrief


class InviteUsers(BaseModel):
    channel_id: str
    users: list[str]


class InviteResult(BaseModel):
    invited: list[str] = Field(default_factory=list)
    failed: dict[str, str] = Field(default_factory=dict)  # user -> Slack error


class Posted(BaseModel):
    channel_id: str
    ts: str


class ChannelRef(BaseModel):
    channel_id: str


class EditKickoff(BaseModel):
    """Render the kickoff (or the broadcast announcement) again from the brief and put it in
    place of the posted one."""

    channel_id: str
    ts: str
    brief: IncidentBrief
    announcement: bool = False


class AddBookmarks(BaseModel):
    """Bookmark these links (and the incident in the Temporal UI) in the incident channel."""

    incident_id: str
    channel_id: str
    links: list[Link]


class WhoIsOnCall(BaseModel):
    """Who is on call for each schedule at ``at``, asked of the schedules' workflows; each
    schedule as the incident's policy has it answers when its workflow does not run yet."""

    schedules: dict[str, Schedule]
    at: datetime


class OnCall(BaseModel):
    people: dict[str, str | None]  # by schedule: a user id, or None for nobody (a gap)


class WhoHoldsRoles(BaseModel):
    """Who fills the roles an incident type names: each ``oncall:<schedule>`` as ``WhoIsOnCall``
    answers, a user group's (S...) first member, an @handle's or an email's user."""

    on_call: WhoIsOnCall | None = None
    people: list[str] = Field(default_factory=list, max_length=10)


class RoleHolders(BaseModel):
    on_call: dict[str, str | None] = Field(default_factory=dict)  # by schedule, as OnCall
    people: dict[str, str] = Field(default_factory=dict)  # by name as given: those Slack knows


# On-call handoffs (``workflows/oncall/rotation.py``): people resolved, a direct message to the
# incoming and outgoing person, and the schedule's user group set to whoever is on call.
MAX_ONCALL_PEOPLE = 100


class ResolvePeople(BaseModel):
    people: list[str] = Field(max_length=MAX_ONCALL_PEOPLE)  # ids, @handles, emails


class DirectMessage(BaseModel):
    user: str = Field(max_length=64)
    text: str = Field(max_length=3000)  # already escaped: built from ids, names and times
    key: str = Field(max_length=200)  # the same handoff's message is sent once, across retries


class SetUserGroup(BaseModel):
    handle: str = Field(max_length=80)
    users: list[str] = Field(min_length=1, max_length=MAX_ONCALL_PEOPLE)

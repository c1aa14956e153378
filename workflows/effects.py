"""Side effects the workflow asks for, queued in order in its outbox and run as activities.

Handlers only change state and queue effects, so a command answers at once while Slack is
told in order, durably, by the main loop. Effects run in lanes (``lanes``, named by each effect:
``SideEffect.routes``): in order inside one (an invitation before the message mentioning the
invited), lanes side by side (the incident channel, the broadcast and the topic at once).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, Field

from workflows import requests as rq
from workflows.models import Channel, IncidentState, Link, Role
from workflows.policy import EscalationTier


class Audience(StrEnum):
    CHANNEL = "channel"  # the incident's own channel
    BROADCAST = "broadcast"  # the organisation-wide #incidents channel
    OWNER = "owner"  # a direct message to the person the post mentions first
    NAMED = "named"  # a channel the policy names (``Post.channel``): an automation's post


class Lane(StrEnum):
    """Where an effect waits its turn: in order inside a lane, lanes side by side."""

    CHANNEL = "channel"  # the opening, posts in the incident channel, invitations, the archive
    BROADCAST = "broadcast"
    TOPIC = "topic"  # and the bookmarks: they only dress the channel, so no timer waits on them
    PAGING = "paging"
    KEYS = "keys"  # the other workflows an incident starts or signals: its key's claim, a drill
    KICKOFF = "kickoff"
    DIRECT = "direct"  # reminders to one person
    DOCUMENTS = "documents"  # the report and the retrospective
    ARCHIVE = "archive"  # the incident database
    STATUS_PAGE = "status_page"  # the public status page and its subscribers
    WEBHOOK = "webhook"  # automations' webhooks: a slow receiver holds up no page or post


class SideEffect(BaseModel):
    """An effect knows its lane, so the outbox groups effects without asking their type."""

    lane: ClassVar[Lane]
    # Only the newest of its kind in a batch runs: an older one would only show an older state.
    newest_only: ClassVar[bool] = False

    def routes(self) -> list[tuple[Lane, Audience | None]]:
        """The lanes this effect runs in, each with the audience it reaches there."""
        return [(self.lane, None)]


AUDIENCE_LANE = {Audience.CHANNEL: Lane.CHANNEL, Audience.BROADCAST: Lane.BROADCAST}
ASIDE = (Lane.ARCHIVE, Lane.TOPIC)  # run in the background: a slow or lost call holds nothing back


class Notice(StrEnum):
    KICKOFF = "kickoff"
    ANNOUNCEMENT = "announcement"
    ACKNOWLEDGED = "acknowledged"
    STATUS_CHANGED = "status_changed"
    UPDATE = "update"
    SEVERITY_CHANGED = "severity_changed"
    RENAMED = "renamed"
    ROLE_ASSIGNED = "role_assigned"
    RESPONDERS_ADDED = "responders_added"
    ESCALATED = "escalated"
    RESOLVED = "resolved"
    REOPENED = "reopened"
    UPDATE_DUE = "update_due"
    UPDATE_OVERDUE = "update_overdue"
    ACTION_ITEM = "action_item"
    ALERTS_RESOLVED = "alerts_resolved"
    ACTION_ITEM_DUE = "action_item_due"
    RETROSPECTIVE_DUE = "retrospective_due"
    RETROSPECTIVE_DONE = "retrospective_done"
    DOCUMENT = "document"  # a link to a report or draft shared in the incident channel
    PUBLIC_UPDATE = "public_update"  # the confirmation of an update on the status page
    PAGED = "paged"  # a direct message to someone a tier pages, with an Acknowledge button
    AUTOMATION = "automation"  # a step of one of the policy's automations


class Post(SideEffect):
    kind: Literal["post"] = "post"
    key: str  # unique within the incident: a retried activity finds it and does not post twice
    notice: Notice
    audience: list[Audience]
    actor: str | None = None
    text: str = ""
    mentions: list[str] = Field(default_factory=list)
    # Why a mentioned person is told, shown beside them: "on call for payments-primary".
    why: dict[str, str] = Field(default_factory=dict)
    channel: str | None = None  # "#payments": where a post to ``Audience.NAMED`` goes
    rule: str | None = None  # the automation whose step it is: the Web UI names it
    pin: bool = False
    # Look for an earlier copy even on a first attempt: another activity may have posted it.
    check_first: bool = False

    def routes(self) -> list[tuple[Lane, Audience | None]]:
        """One lane per audience: the channel, the broadcast and a person hear side by side."""
        return [(AUDIENCE_LANE.get(audience, Lane.DIRECT), audience) for audience in self.audience]


class RefreshTopic(SideEffect):
    lane = Lane.TOPIC
    newest_only = True
    kind: Literal["topic"] = "topic"


class Invite(SideEffect):
    lane = Lane.CHANNEL
    kind: Literal["invite"] = "invite"
    users: list[str]


class PageAction(StrEnum):
    TRIGGER = "trigger"
    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"


class Page(SideEffect):
    lane = Lane.PAGING
    kind: Literal["page"] = "page"
    action: PageAction
    targets: list[str] = Field(default_factory=list)


class ArchiveChannel(SideEffect):
    lane = Lane.CHANNEL
    kind: Literal["archive"] = "archive"


class ReleaseKey(SideEffect):
    """Resolved: the incident's idempotency key may declare a new incident again."""

    lane = Lane.KEYS
    kind: Literal["release_key"] = "release_key"


class UpdateKickoff(SideEffect):
    """The pinned kickoff shows the incident as it is now (status, roles, buttons)."""

    lane = Lane.KICKOFF
    newest_only = True
    kind: Literal["kickoff"] = "kickoff"


class PublishReport(SideEffect):
    """Resolved: the situation report goes to the channel, the broadcast and the stakeholders."""

    lane = Lane.DOCUMENTS
    kind: Literal["report"] = "report"
    key: str


class SendRetrospective(SideEffect):
    """The retrospective draft and the meeting invitation for everyone involved."""

    lane = Lane.DOCUMENTS
    kind: Literal["retrospective"] = "retrospective"
    key: str
    draft: str  # Markdown
    meeting_at: datetime
    meeting_length_seconds: float
    attendees: list[str]  # Slack user ids; their emails come from Slack


class RecordIncident(SideEffect):
    """Upsert the incident into the archive database (status changes and completion)."""

    lane = Lane.ARCHIVE
    kind: Literal["record"] = "record"


class BookmarkLinks(SideEffect):
    """Bookmark links the incident learnt after its channel was made (later alerts' runbooks)."""

    lane = Lane.TOPIC
    kind: Literal["bookmarks"] = "bookmarks"
    links: list[Link]


class PublishStatus(SideEffect):
    """The status page hears of the public incident as it is now; subscribers of news."""

    lane = Lane.STATUS_PAGE
    kind: Literal["status_page"] = "status_page"


class ReachOnCall(SideEffect):
    """Tiers naming ``oncall:<schedule>``: who is on call at ``asked.at`` (overrides included;
    a schedule not answering: nobody, noted), then the tiers reach them. A later page waits."""

    lane = Lane.PAGING
    kind: Literal["reach_on_call"] = "reach_on_call"
    asked: rq.WhoIsOnCall
    tiers: list[EscalationTier]
    notice: Post  # the escalation's notice; its mentions are completed with who is on call


class ScheduleDrill(SideEffect):
    lane = Lane.KEYS
    kind: Literal["drill"] = "drill"
    plan: rq.DrillPlan


class CallWebhook(SideEffect):
    lane = Lane.WEBHOOK
    kind: Literal["webhook"] = "webhook"
    call: rq.WebhookCall

    @property
    def doing(self) -> str:  # in the Web UI, and on the timeline if it fails
        return f"call the webhook of automation '{self.call.rule}'"


class FillRoles(SideEffect):
    """Roles a type fills with ``oncall:<schedule>``, a user group (its first member), an
    @handle or an email: asked before the kickoff is posted, then ``lifecycle.opening.fill``."""

    lane = Lane.CHANNEL
    kind: Literal["fill_roles"] = "fill_roles"
    roles: dict[Role, str]
    asked: rq.WhoHoldsRoles


class PostMessage(BaseModel):
    """Post one notice in one channel; ``channel_id`` None means the broadcast channel."""

    channel_id: str | None
    post: Post
    brief: rq.IncidentBrief


class SendPage(BaseModel):
    page: Page
    brief: rq.IncidentBrief


class OpenIncident(BaseModel):
    """What Slack sees of a declaration, in one activity (``activities.slack.Attempt``)."""

    channel: rq.OpenChannel
    brief: rq.IncidentBrief  # without the channel, which the activity fills in once it exists
    topic: bool
    invite: list[str]
    posts: list[Post]
    conference_url: str | None = None  # a template: the channel's name is known only later
    links: list[Link] = Field(default_factory=list)
    record: IncidentState | None = None  # for the archive, with the channel once it exists


class Opened(BaseModel):
    channel: Channel | None = None
    posted: dict[str, rq.Posted] = Field(default_factory=dict)  # by the post's key
    invited: rq.InviteResult = Field(default_factory=rq.InviteResult)
    problems: list[str] = Field(default_factory=list)  # what retrying could not fix
    recorded: bool = False  # the archive has ``record``
    left: list[str] = Field(default_factory=list)  # optional steps not done in time, by name
    similar: rq.Recurrences | None = None  # None: the archive did not answer in time


class RetryOpening(SideEffect):
    """The opening gave up (Slack refused for longer than it may take): run again at the next
    turn, its posts looking for an earlier copy first, the channel found by its purpose."""

    kind: Literal["opening"] = "opening"
    lane = Lane.CHANNEL
    request: OpenIncident


Effect = Annotated[
    Post | RefreshTopic | Invite | Page | ArchiveChannel | ReleaseKey | PublishReport
    | SendRetrospective | RecordIncident | UpdateKickoff | PublishStatus | BookmarkLinks
    | RetryOpening | ReachOnCall | FillRoles | CallWebhook | ScheduleDrill,
    Field(discriminator="kind"),
]  # fmt: skip

Step = tuple[Effect, Audience | None]


def lanes(effects: list[Effect]) -> dict[Lane, list[Step]]:
    """Split a batch of effects into ordered lanes; of a ``newest_only`` kind, only the last."""
    newest = {type(effect): index for index, effect in enumerate(effects) if effect.newest_only}
    grouped: dict[Lane, list[Step]] = {}
    for index, effect in enumerate(effects):
        if effect.newest_only and newest[type(effect)] != index:
            continue
        for lane, audience in effect.routes():
            grouped.setdefault(lane, []).append((effect, audience))
    return grouped

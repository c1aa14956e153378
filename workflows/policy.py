"""The incident policy: severities, update cadence, escalation tiers, retrospectives, archiving.

A policy is data. It is read from TOML by the entry points (never by the workflow) and travels
in each workflow's input, so editing the file never rewrites a running incident's past.
"""

from __future__ import annotations

import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, model_validator

from workflows.alerts.routing import AlertPolicy
from workflows.automations import Automation, check_automations
from workflows.incident_types import ONCALL as ONCALL
from workflows.incident_types import TYPE_NAME, IncidentType, Permissions, check_types
from workflows.models import MAX_COMPONENTS, Component, Impact, PublicStart, Title
from workflows.oncall.schedules import Schedule
from workflows.text import Duration as Duration
from workflows.text import Emoji, Text, check_template
from workflows.text import parse_duration as parse_duration

# Drills: a practice incident runs the real workflow on a compressed clock, clearly marked.
#
# The policy a drill carries in its workflow input is the real one with every duration scaled
# by the drill factor, so escalations, reminders, the retrospective and the archive all come
# sooner without a single special case in the deadline code.
M = TypeVar("M", bound=BaseModel)


class DrillPolicy(BaseModel):
    time_factor: float = Field(default=0.1, gt=0, le=1)  # 0.1: a 15-minute cadence is 90 s
    page: bool = False  # pages go out only when a team wants to practise the pager too


def _scaled(value: Any, factor: float) -> Any:
    if isinstance(value, timedelta):
        return value * factor
    if isinstance(value, BaseModel):
        return compress(value, factor)
    if isinstance(value, list):
        return [_scaled(v, factor) for v in value]
    if isinstance(value, dict):
        return {k: _scaled(v, factor) for k, v in value.items()}
    return value


def compress(model: M, factor: float) -> M:
    """A copy of ``model`` with every duration in it, however deep, multiplied by ``factor``."""
    changed = {name: _scaled(getattr(model, name), factor) for name in type(model).model_fields}
    return model.model_copy(update=changed)


class EscalationTier(BaseModel):
    """Who hears about an unacknowledged incident, and when."""

    after: Duration
    notify: list[str] = Field(default_factory=list)  # ids (U..., S... groups), @handles, emails
    invite: bool = True
    page: bool = False
    repeat: int = Field(default=0, ge=0, le=100)  # fire this tier again, `after` apart


class RetrospectivePolicy(BaseModel):
    required: bool = False
    after: Duration = timedelta(days=1)
    meeting_length: Duration = timedelta(hours=1)
    remind_every: Duration = timedelta(days=1)  # until it is marked done


class BusinessHours(BaseModel):
    """When a retrospective may be held: working days, from ``start`` to ``end`` local time."""

    timezone: str = "UTC"  # an IANA name, e.g. "Europe/Paris"
    start: str = Field(default="09:00", pattern=r"^([01]\d|2[0-4]):[0-5]\d$")
    end: str = Field(default="17:00", pattern=r"^([01]\d|2[0-4]):[0-5]\d$")
    days: list[int] = Field(default=[0, 1, 2, 3, 4], min_length=1)  # Monday is 0

    @model_validator(mode="after")
    def _sensible(self) -> BusinessHours:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {self.timezone!r} (use an IANA name)") from None
        if self.start >= self.end:
            raise ValueError("business hours must start before they end")
        if any(not 0 <= day <= 6 for day in self.days):
            raise ValueError("business days are 0 (Monday) to 6 (Sunday)")
        return self


class DigestPolicy(BaseModel):
    """The incident digest the broadcast channel gets from a Temporal Schedule."""

    enabled: bool = True
    every: Duration = timedelta(weeks=1)


class HistoryPolicy(BaseModel):
    """How an incident keeps its workflow history short (see docs/performance.md)."""

    # Continue as new once the incident is open, announced and recorded: every later replay
    # (a worker without it in cache, after a deploy) reads a dozen events instead of forty,
    # for one more workflow task per declaration.
    continue_as_new_once_open: bool = False


class SlackPolicy(BaseModel):
    """Reactions that put a channel message on the timeline; reactions that acknowledge; how
    often the App Home of those who opened it is read again, and published where it changed."""

    timeline_reactions: list[Emoji] = Field(default=["pushpin"], max_length=20)
    ack_reactions: list[Emoji] = Field(default=["eyes", "white_check_mark"], max_length=20)
    home_refresh_every: Duration = Field(default=timedelta(seconds=15), ge=timedelta(seconds=1))


PagingSeverity = Literal["critical", "error", "warning", "info"]


class SeverityPolicy(BaseModel):
    description: str = ""
    update_every: Duration | None = None
    missed_update_notify: list[str] = Field(default_factory=list)
    missed_update_broadcast: bool = True
    escalation: list[EscalationTier] = Field(default_factory=list)
    retrospective: RetrospectivePolicy = Field(default_factory=RetrospectivePolicy)
    archive_after: Duration = timedelta(days=7)
    stakeholders: list[str] = Field(default_factory=list)  # emails the report goes to
    action_item_remind_every: Duration = timedelta(days=1)  # after an item falls due
    # What a page of this severity says to PagerDuty (its Events API v2 severities).
    paging_severity: PagingSeverity = "error"
    broadcast_replies: bool = False  # the announcement's thread replies show in #incidents too


class ChannelPolicy(BaseModel):
    name_template: str = "inc-{yymmdd}-{slug}"
    private_name_template: str = "inc-{yymmdd}-{number}"  # no word of the title
    # Bookmarked in each channel: {channel} its name, {number} the incident's (a room each).
    conference_url: str | None = Field(default=None, pattern=r"^https?://\S+$")

    @model_validator(mode="after")
    def _known_fields(self) -> ChannelPolicy:
        check_template(self.name_template)
        check_template(self.private_name_template, private=True)
        return self


class IncidentTemplate(BaseModel):
    """Pre-fills a declaration for a common kind of incident: what the declaration leaves out
    (see ``workflows.lifecycle.commands.complete``). Checked like a declaration, so a bad
    template fails when the policy loads, not when someone declares in a hurry."""

    title: Title | None = None
    severity: str | None = None
    impact: Impact | None = None
    summary: Text | None = Field(default=None, max_length=3000)
    components: list[Component] = Field(default_factory=list, max_length=MAX_COMPONENTS)
    public: PublicStart | None = None  # the incident starts on the status page with this


class ComponentPolicy(BaseModel):
    """What the policy knows about a component: its runbook is bookmarked in the channel."""

    runbook: str | None = Field(default=None, pattern=r"^https?://\S+$")
    group: str = Field(default="", max_length=100)  # the status page lists components by group
    team: str | None = None  # the team that owns it: its escalation path (see Policy.tiers_for)


class Team(BaseModel):
    """People who own components, and whom to reach, in turn, when one of them breaks."""

    escalation: list[EscalationTier] = Field(default_factory=list, max_length=20)


SCHEDULE_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class Policy(BaseModel):
    channel: ChannelPolicy = Field(default_factory=ChannelPolicy)
    severities: dict[str, SeverityPolicy]
    templates: dict[str, IncidentTemplate] = Field(default_factory=dict)
    alerts: AlertPolicy = Field(default_factory=AlertPolicy)
    components: dict[str, ComponentPolicy] = Field(default_factory=dict)
    business_hours: BusinessHours = Field(default_factory=BusinessHours)
    digest: DigestPolicy = Field(default_factory=DigestPolicy)
    drill: DrillPolicy = Field(default_factory=DrillPolicy)
    history: HistoryPolicy = Field(default_factory=HistoryPolicy)
    slack: SlackPolicy = Field(default_factory=SlackPolicy)
    schedules: dict[Annotated[str, Field(pattern=SCHEDULE_NAME)], Schedule] = Field(
        default_factory=dict, max_length=5000
    )
    teams: dict[str, Team] = Field(default_factory=dict, max_length=1000)
    types: dict[Annotated[str, Field(pattern=TYPE_NAME)], IncidentType] = Field(
        default_factory=dict, max_length=200
    )
    permissions: Permissions = Field(default_factory=Permissions)
    automations: list[Automation] = Field(default_factory=list, max_length=200)

    @model_validator(mode="after")
    def _templates_name_known_severities(self) -> Policy:
        if not self.severities:
            raise ValueError("a policy needs at least one severity")
        for name, template in self.templates.items():
            if template.severity and template.severity not in self.severities:
                raise ValueError(f"template {name!r} names unknown severity {template.severity!r}")
            public = template.public.components if template.public else None
            unknown_public = sorted(set(public or []) - set(self.components))
            if self.components and unknown_public:
                raise ValueError(
                    f"template {name!r} puts unknown components {unknown_public} on the status "
                    f"page; the policy knows {sorted(self.components)}"
                )
        unknown = self.alerts.severities() - set(self.severities)
        if unknown:
            raise ValueError(f"alert rules name unknown severities {sorted(unknown)}")
        self._check_oncall()
        severities = {k: t.severity for k, t in self.templates.items()}
        check_types(self.types, set(self.severities), severities, set(self.schedules))
        check_automations(self.automations, set(self.severities), set(self.schedules))
        return self

    def _check_oncall(self) -> None:
        """Every ``oncall:<name>`` names a schedule and every component's team exists, so a
        typo fails when the policy loads, not when a tier fires in the night."""
        paths = {f"severity {k!r}": v.escalation for k, v in self.severities.items()}
        paths |= {f"team {k!r}": v.escalation for k, v in self.teams.items()}
        for where, tiers in paths.items():
            for target in (t for tier in tiers for t in tier.notify if t.startswith(ONCALL)):
                if target.removeprefix(ONCALL) not in self.schedules:
                    known = ", ".join(sorted(self.schedules)) or "none"
                    raise ValueError(
                        f"{where} notifies {target!r}: no such schedule (the policy has {known})"
                    )
        for name, component in self.components.items():
            if component.team is not None and component.team not in self.teams:
                raise ValueError(f"component {name!r} names unknown team {component.team!r}")

    @property
    def alert_severity(self) -> str:
        """For alerts whose rule names no severity: the most severe one that does not page as
        critical (nobody classified the alert, so not all hands), else the mildest."""
        calm = (n for n, s in self.severities.items() if s.paging_severity != "critical")
        return next(calm, list(self.severities)[-1])

    def severity(self, name: str) -> SeverityPolicy:
        try:
            return self.severities[name]
        except KeyError:
            known = ", ".join(self.severities)
            raise ValueError(f"unknown severity {name!r}; this policy knows {known}") from None


def default_policy() -> Policy:
    """The practice the product follows: SEV1 all hands, SEV2 look at, SEV3 a bug."""
    return Policy(
        severities={
            "sev1": SeverityPolicy(
                description="Customers cannot log in, buy, or be billed. All hands, at once.",
                update_every=timedelta(minutes=15),
                escalation=[
                    EscalationTier(after=timedelta(minutes=5), page=True),
                    EscalationTier(after=timedelta(minutes=10), page=True, repeat=3),
                ],
                retrospective=RetrospectivePolicy(required=True, after=timedelta(days=1)),
                paging_severity="critical",
            ),
            "sev2": SeverityPolicy(
                description="Internal operations are prevented, but a workaround exists.",
                update_every=timedelta(minutes=30),
                escalation=[EscalationTier(after=timedelta(minutes=15), page=True)],
                retrospective=RetrospectivePolicy(required=True, after=timedelta(days=3)),
            ),
            "sev3": SeverityPolicy(
                description="Internal operations are impaired, not prevented. Fixed as a bug "
                "in the current sprint.",
                update_every=timedelta(hours=24),
                archive_after=timedelta(days=3),
                paging_severity="warning",
            ),
        }
    )


def load_policy(path: str | Path | None) -> Policy:
    """The policy file named by ``INCIDENT_POLICY_FILE``, or the built-in one."""
    if not path:
        return default_policy()
    with open(path, "rb") as file:
        return Policy.model_validate(tomllib.load(file))

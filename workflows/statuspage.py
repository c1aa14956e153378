"""The public status page's model: components, public incidents, and what follows from them.

A component's status follows the worst open public incident touching it and returns to
operational when that incident resolves; maintenance is set by people and wins over
"operational" only. Pure, so the page, ``/status.json`` and the feed agree by construction.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field

from workflows.effects import Effect, Notice, PublishStatus
from workflows.lifecycle import commands as cmd
from workflows.lifecycle.notices import CHANNEL, CommandRefused, post_notice
from workflows.models import Impact, IncidentState, PublicInfo, PublicStart, PublicUpdate, Status
from workflows.policy import Policy

# Public incidents: what the comms lead puts on the status page, and what follows by itself.
#
# Pure: the workflow applies these and queues ``PublishStatus``; an activity writes the public
# incident to the status page's database and tells the subscribers.
MAX_PUBLIC_UPDATES = 200
RESOLVED_MESSAGE = "This incident has been resolved."
REOPENED_MESSAGE = "The problem is back; we are investigating it again."


def check_post_public_update(state: IncidentState, policy: Policy, c: cmd.PostPublicUpdate) -> None:
    if state.drill:
        raise CommandRefused(f"{state.label} is a drill; drills never go on the status page")
    if state.private:
        raise CommandRefused(
            f"{state.label} is private; a private incident never goes on the status page"
        )
    if state.public and len(state.public.updates) >= MAX_PUBLIC_UPDATES:
        raise CommandRefused(f"{state.label} has {MAX_PUBLIC_UPDATES} public updates already")
    unknown = sorted(set(c.components or []) - set(policy.components))
    if policy.components and unknown:
        known = ", ".join(sorted(policy.components))
        raise CommandRefused(f"unknown components {', '.join(unknown)} (known: {known})")


def apply_post_public_update(
    state: IncidentState, policy: Policy, c: cmd.PostPublicUpdate, now: datetime
) -> list[Effect]:
    check_post_public_update(state, policy, c)
    public = state.public or PublicInfo(components=list(state.components), impact=state.impact)
    if c.components is not None:
        public.components = list(c.components)
    public.impact = c.impact or public.impact
    status = c.status or state.status
    public.updates.append(PublicUpdate(at=now, status=status, message=c.message))
    public.published_status = state.status
    state.public = public
    text = f"On the status page ({status.value}): {c.message}"
    state.note(now, "public_update", c.by, text)
    return [post_notice(state, Notice.PUBLIC_UPDATE, CHANNEL, c.by, text), PublishStatus()]


def start_public(
    state: IncidentState, policy: Policy, start: PublicStart, now: datetime
) -> list[Effect]:
    """Declared public (a template's ``public``): the first public update goes out at once."""
    first = cmd.PostPublicUpdate(
        message=start.message,
        impact=start.impact,
        components=start.components,
        by=state.declared_by,
    )
    try:
        return apply_post_public_update(state, policy, first, now)
    except CommandRefused as refused:  # the entry points refuse these first; never fail a start
        state.note(now, "problem", None, f"not put on the status page: {refused.message}")
        return []


def follow_resolution(state: IncidentState, now: datetime) -> list[Effect]:
    """A public incident resolved (or reopened) says so on the page without anyone asking."""
    public = state.public
    if public is None or public.published_status is state.status:
        return []
    was_resolved = public.published_status is Status.RESOLVED
    public.published_status = state.status
    if state.status is Status.RESOLVED:
        message = RESOLVED_MESSAGE
    elif was_resolved:
        message = REOPENED_MESSAGE
    else:
        return []  # an internal status change: the public hears of it from the comms lead
    public.updates.append(PublicUpdate(at=now, status=state.status, message=message))
    state.note(now, "public_update", None, f"On the status page: {message}")
    return [PublishStatus()]


def public_incident(state: IncidentState) -> PublicIncident:
    """The incident as the public sees it: no channel, no people, no internal timeline."""
    assert state.public is not None, "only a public incident is published"
    updates = state.public.updates
    status = updates[-1].status if updates else state.status
    return PublicIncident(
        id=state.id,
        number=state.number,
        title=state.title,
        impact=state.public.impact,
        components=state.public.components,
        status=status,
        declared_at=state.declared_at,
        resolved_at=updates[-1].at if status is Status.RESOLVED else None,
        updates=updates,
    )


HISTORY_DAYS = 90


class ComponentStatus(StrEnum):
    OPERATIONAL = "operational"
    MAINTENANCE = "under_maintenance"
    DEGRADED = "degraded_performance"
    PARTIAL_OUTAGE = "partial_outage"
    MAJOR_OUTAGE = "major_outage"

    @property
    def rank(self) -> int:
        return list(ComponentStatus).index(self)

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()


# How bad an incident of each impact is for the components it touches.
IMPACT_STATUS = {
    Impact.NONE: ComponentStatus.OPERATIONAL,
    Impact.MINOR: ComponentStatus.DEGRADED,
    Impact.MAJOR: ComponentStatus.PARTIAL_OUTAGE,
    Impact.CRITICAL: ComponentStatus.MAJOR_OUTAGE,
}


class Component(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    group: str = Field(default="", max_length=100)
    maintenance: bool = False


class PublicIncident(BaseModel):
    """What the public sees of an incident: never the channel, the people or the timeline."""

    id: str
    number: int
    title: str
    impact: Impact
    components: list[str] = Field(default_factory=list)
    status: Status
    declared_at: datetime
    resolved_at: datetime | None = None
    updates: list[PublicUpdate] = Field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.status is not Status.RESOLVED


def component_statuses(
    components: list[Component], incidents: list[PublicIncident]
) -> dict[str, ComponentStatus]:
    statuses = {
        c.name: ComponentStatus.MAINTENANCE if c.maintenance else ComponentStatus.OPERATIONAL
        for c in components
    }
    for incident in (i for i in incidents if i.is_open):
        touched = IMPACT_STATUS[incident.impact]
        for name in incident.components:
            if name in statuses and touched.rank > statuses[name].rank:
                statuses[name] = touched
    return statuses


def overall(statuses: dict[str, ComponentStatus]) -> ComponentStatus:
    return max(statuses.values(), key=lambda s: s.rank, default=ComponentStatus.OPERATIONAL)


class StatusPage(BaseModel):
    """Everything the page shows, computed once per request."""

    title: str
    generated_at: datetime
    overall: ComponentStatus
    groups: dict[str, list[tuple[str, ComponentStatus]]]
    active: list[PublicIncident]
    history: dict[str, list[PublicIncident]]  # ISO day -> incidents declared that day


def status_page(
    title: str, components: list[Component], incidents: list[PublicIncident], now: datetime
) -> StatusPage:
    statuses = component_statuses(components, incidents)
    groups: dict[str, list[tuple[str, ComponentStatus]]] = {}
    for component in components:
        groups.setdefault(component.group, []).append((component.name, statuses[component.name]))
    since = now - timedelta(days=HISTORY_DAYS)
    history: dict[str, list[PublicIncident]] = {}
    for incident in sorted(incidents, key=lambda i: i.declared_at, reverse=True):
        if not incident.is_open and incident.declared_at >= since:
            history.setdefault(incident.declared_at.date().isoformat(), []).append(incident)
    active = [i for i in incidents if i.is_open]
    return StatusPage(
        title=title,
        generated_at=now,
        overall=overall(statuses),
        groups=groups,
        active=sorted(active, key=lambda i: i.declared_at, reverse=True),
        history=history,
    )

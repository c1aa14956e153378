"""The public status page's model: components, public incidents, and what follows from them.

A component's status follows the worst open public incident touching it and returns to
operational when that incident resolves; maintenance is set by people and wins over
"operational" only. Pure, so the page, ``/status.json`` and the feed agree by construction.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field

from workflows.models import Impact, PublicUpdate, Status

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

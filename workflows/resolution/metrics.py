"""Incident figures: one record per incident for the archive, and the aggregates over many.

Pure functions, so the figures are checked against a scripted history with known times.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from statistics import fmean

from pydantic import BaseModel, Field

from workflows.lifecycle import timeline
from workflows.models import IncidentState, SimilarIncident, Status
from workflows.resolution import report
from workflows.text import incident_label

RECURRING = 2  # a component in this many incidents of the period is recurring
MAX_RESOLUTION = 300  # characters of how a similar incident was resolved, on a kickoff


class IncidentRecord(BaseModel):
    """What the archive keeps of an incident; it outlives Temporal's retention."""

    id: str
    number: int
    title: str
    severity: str
    type: str | None = None  # the incident type, if it was declared with one
    status: Status
    impact: str
    components: list[str] = Field(default_factory=list)
    commander: str | None = None
    people: list[str] = Field(default_factory=list)  # everyone who held a role or responded
    declared_at: datetime
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    archived_at: datetime | None = None
    time_to_acknowledge: float | None = None  # seconds
    time_to_resolve: float | None = None
    seconds_in_status: dict[str, float] = Field(default_factory=dict)
    escalations: int = 0
    escalation_level: int | None = None  # reached; None in records archived before it was kept
    missed_updates: int = 0
    open_action_items: int = 0
    report: str | None = None
    drill: bool = False  # kept in the archive, left out of every figure
    private: bool = False  # never listed as similar to another incident
    resolution: str | None = None  # its resolution's message, else its latest status update

    def similar(self) -> SimilarIncident:
        """As the kickoff of a later incident like it lists it."""
        said = (self.resolution or "")[:MAX_RESOLUTION]
        kept = self.model_dump(include={"id", "title", "components", "status"})
        return SimilarIncident(**kept, label=incident_label(self.number), resolution=said)


def seconds_in_status(state: IncidentState, now: datetime) -> dict[str, float]:
    """Seconds in each status the incident was in (``timeline.time_in_status``: a reopened
    incident's time counts again from the reopening; an open one's status runs until now)."""
    spent = timeline.time_in_status(state, now)
    return {status.value: span.total_seconds() for status, span in spent.items()}


def _seconds(span: timedelta | None) -> float | None:
    return span.total_seconds() if span is not None else None


def record_of(state: IncidentState, now: datetime) -> IncidentRecord:
    roles = [state.roles.commander, state.roles.tech_lead, state.roles.comms_lead]
    people = [p for p in [*roles, *state.responders] if p]
    return IncidentRecord(
        id=state.id,
        number=state.number,
        title=state.title,
        severity=state.severity,
        type=state.type,
        status=state.status,
        impact=state.impact.value,
        components=state.components,
        commander=state.roles.commander,
        people=list(dict.fromkeys(people)),
        declared_at=state.declared_at,
        acknowledged_at=state.acknowledged_at,
        resolved_at=state.resolved_at,
        archived_at=state.archived_at,
        time_to_acknowledge=_seconds(report.response_time(state)),
        time_to_resolve=_seconds(report.time_to_resolve(state)),
        seconds_in_status=seconds_in_status(state, now),
        escalations=report.escalations(state),
        escalation_level=state.escalation_level,
        missed_updates=report.missed_updates(state),
        open_action_items=sum(1 for item in state.action_items if item.is_open),
        report=state.report,
        drill=state.drill,
        private=state.private,
        resolution=report.how_resolved(state),
    )


class IncidentFigures(BaseModel):
    """The figures of a group of incidents: all those chosen, or those of one severity."""

    incidents: int = 0
    open: int = 0
    mtta_seconds: float | None = None  # mean time to acknowledge
    mttr_seconds: float | None = None  # mean time to resolve
    # Resolved incidents only: an open incident's time was measured when it was last recorded.
    # Only those ever in a status count for it: one never identified is no zero there.
    mean_seconds_in_status: dict[str, float] = Field(
        default_factory=dict,
        description="Per status (investigating, identified, monitoring), the mean seconds spent "
        "in it by the resolved incidents that were ever in it; a reopened incident's time "
        "counts again from the reopening.",
    )
    escalations: int = 0
    escalations_per_incident: float | None = Field(
        default=None, description="Escalations per incident, on average."
    )
    mean_escalation_level: float | None = Field(
        default=None,
        description="The escalation level reached, on average over the incidents whose "
        "record keeps it.",
    )
    missed_updates: int = 0


# What the figures are broken down by, and what of a record each groups on: a breakdown is one
# line here (the incident type joins as ``"type": lambda r: r.type or "none"``).
BREAKDOWNS: dict[str, Callable[[IncidentRecord], str]] = {
    "severity": lambda record: record.severity,
    "type": lambda record: record.type or "none",
}


class IncidentMetrics(IncidentFigures):
    since: datetime | None = None
    severity: str | None = None
    by_severity: dict[str, int] = Field(default_factory=dict)  # incidents per severity
    recurring_components: dict[str, int] = Field(default_factory=dict)
    workload: dict[str, int] = Field(default_factory=dict)  # person -> incidents worked
    breakdown: dict[str, dict[str, IncidentFigures]] = Field(
        default_factory=dict,
        description='Every figure again per group: {"severity": {"sev1": {...}, ...}}.',
    )


def _mean(values: list[float]) -> float | None:
    return fmean(values) if values else None


def figures(records: list[IncidentRecord]) -> IncidentFigures:
    resolved = [r for r in records if r.status is Status.RESOLVED]
    in_status: dict[str, float] = {}
    for phase in (status.value for status in timeline.PHASES):
        spent = [r.seconds_in_status[phase] for r in resolved if phase in r.seconds_in_status]
        if spent:
            in_status[phase] = fmean(spent)
    acks = [r.time_to_acknowledge for r in records if r.time_to_acknowledge is not None]
    fixes = [r.time_to_resolve for r in records if r.time_to_resolve is not None]
    levels = [float(r.escalation_level) for r in records if r.escalation_level is not None]
    return IncidentFigures(
        incidents=len(records),
        open=len(records) - len(resolved),
        mtta_seconds=_mean(acks),
        mttr_seconds=_mean(fixes),
        mean_seconds_in_status=in_status,
        escalations=sum(r.escalations for r in records),
        escalations_per_incident=_mean([float(r.escalations) for r in records]),
        mean_escalation_level=_mean(levels),
        missed_updates=sum(r.missed_updates for r in records),
    )


def aggregate(
    records: list[IncidentRecord], since: datetime | None = None, severity: str | None = None
) -> IncidentMetrics:
    chosen = [
        r
        for r in records
        if not r.drill
        and (since is None or r.declared_at >= since)
        and (severity in (None, r.severity))
    ]
    components = Counter(c for r in chosen for c in dict.fromkeys(r.components))
    workload = Counter(p for r in chosen for p in r.people)
    groups: dict[str, dict[str, list[IncidentRecord]]] = {name: {} for name in BREAKDOWNS}
    for record in chosen:
        for name, group_of in BREAKDOWNS.items():
            groups[name].setdefault(group_of(record), []).append(record)
    return IncidentMetrics(
        **figures(chosen).model_dump(),
        since=since,
        severity=severity,
        by_severity={s: len(group) for s, group in sorted(groups["severity"].items())},
        recurring_components={c: n for c, n in components.most_common() if n >= RECURRING},
        workload=dict(workload.most_common()),
        breakdown={
            name: {key: figures(group) for key, group in sorted(by_key.items())}
            for name, by_key in groups.items()
        },
    )


def digest(metrics: IncidentMetrics, escape: Callable[[str], str] = str) -> str:
    """The digest in plain words; ``escape`` makes component names (typed by people) safe."""
    severities = ", ".join(f"{s.upper()} {n}" for s, n in metrics.by_severity.items()) or "none"
    mtta = report.duration(_delta(metrics.mtta_seconds))
    mttr = report.duration(_delta(metrics.mttr_seconds))
    period = f"since {report.when(metrics.since)}" if metrics.since else "so far"
    lines = [
        f"Incidents {period}: {metrics.incidents} ({severities}); {metrics.open} still open.",
        f"MTTA {mtta} · MTTR {mttr} · escalations {metrics.escalations} · "
        f"missed updates {metrics.missed_updates}",
    ]
    if metrics.mean_seconds_in_status:
        spans = metrics.mean_seconds_in_status.items()
        mean = " · ".join(f"{s} {report.duration(timedelta(seconds=v))}" for s, v in spans)
        lines.append(f"Mean time in status: {mean}")
    if metrics.recurring_components:
        recurring = ", ".join(f"{escape(c)} ({n})" for c, n in metrics.recurring_components.items())
        lines.append(f"Recurring components: {recurring}")
    if metrics.workload:
        busiest = ", ".join(f"<@{p}> {n}" for p, n in list(metrics.workload.items())[:5])
        lines.append(f"Most incidents worked: {busiest}")
    return "\n".join(lines)


def _delta(seconds: float | None) -> timedelta | None:
    return timedelta(seconds=seconds) if seconds is not None else None

"""Incident figures: one record per incident for the archive, and the aggregates over many.

Pure functions, so the figures are checked against a scripted history with known times.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from statistics import fmean

from pydantic import BaseModel, Field

from workflows.models import IncidentState, Status
from workflows.resolution import report

RECURRING = 2  # a component in this many incidents of the period is recurring


class IncidentRecord(BaseModel):
    """What the archive keeps of an incident; it outlives Temporal's retention."""

    id: str
    number: int
    title: str
    severity: str
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
    missed_updates: int = 0
    open_action_items: int = 0
    report: str | None = None
    drill: bool = False  # kept in the archive, left out of every figure


def seconds_in_status(state: IncidentState, now: datetime) -> dict[str, float]:
    """Each status lasts from when it was (last) entered until the next one was entered; the
    current status runs until now, or until resolution for a resolved incident."""
    entered = sorted(state.status_entered_at.items(), key=lambda item: item[1])
    spans: dict[str, float] = {}
    for index, (status, since) in enumerate(entered):
        if status is Status.RESOLVED:
            continue
        until = entered[index + 1][1] if index + 1 < len(entered) else now
        spans[status.value] = (until - since).total_seconds()
    return spans


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
        missed_updates=report.missed_updates(state),
        open_action_items=sum(1 for item in state.action_items if item.is_open),
        report=state.report,
        drill=state.drill,
    )


class IncidentMetrics(BaseModel):
    since: datetime | None = None
    severity: str | None = None
    incidents: int = 0
    open: int = 0
    mtta_seconds: float | None = None  # mean time to acknowledge
    mttr_seconds: float | None = None  # mean time to resolve
    by_severity: dict[str, int] = Field(default_factory=dict)
    escalations: int = 0
    missed_updates: int = 0
    recurring_components: dict[str, int] = Field(default_factory=dict)
    workload: dict[str, int] = Field(default_factory=dict)  # person -> incidents worked


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
    acks = [r.time_to_acknowledge for r in chosen if r.time_to_acknowledge is not None]
    fixes = [r.time_to_resolve for r in chosen if r.time_to_resolve is not None]
    components = Counter(c for r in chosen for c in dict.fromkeys(r.components))
    workload = Counter(p for r in chosen for p in r.people)
    return IncidentMetrics(
        since=since,
        severity=severity,
        incidents=len(chosen),
        open=sum(1 for r in chosen if r.status is not Status.RESOLVED),
        mtta_seconds=fmean(acks) if acks else None,
        mttr_seconds=fmean(fixes) if fixes else None,
        by_severity=dict(sorted(Counter(r.severity for r in chosen).items())),
        escalations=sum(r.escalations for r in chosen),
        missed_updates=sum(r.missed_updates for r in chosen),
        recurring_components={c: n for c, n in components.most_common() if n >= RECURRING},
        workload=dict(workload.most_common()),
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
    if metrics.recurring_components:
        recurring = ", ".join(f"{escape(c)} ({n})" for c, n in metrics.recurring_components.items())
        lines.append(f"Recurring components: {recurring}")
    if metrics.workload:
        busiest = ", ".join(f"<@{p}> {n}" for p, n in list(metrics.workload.items())[:5])
        lines.append(f"Most incidents worked: {busiest}")
    return "\n".join(lines)


def _delta(seconds: float | None) -> timedelta | None:
    return timedelta(seconds=seconds) if seconds is not None else None

"""The kickoff message follows the incident: which changes it shows, and the brief it is
rendered from. Pure, so the workflow only sequences."""

from __future__ import annotations

from workflows.effects import Effect, IncidentBrief, Notice, Post
from workflows.models import IncidentState
from workflows.policy import Policy

# Notices after which the pinned kickoff no longer shows the incident as it is.
SHOWN_ON_KICKOFF = frozenset(
    {
        Notice.ACKNOWLEDGED,
        Notice.STATUS_CHANGED,
        Notice.SEVERITY_CHANGED,
        Notice.ROLE_ASSIGNED,
        Notice.RESOLVED,
        Notice.REOPENED,
    }
)


def changes_kickoff(effects: list[Effect]) -> bool:
    return any(isinstance(e, Post) and e.notice in SHOWN_ON_KICKOFF for e in effects)


def brief(state: IncidentState, policy: Policy) -> IncidentBrief:
    """The part of the incident that messages, topics and pages are rendered from."""
    return IncidentBrief(
        id=state.id,
        number=state.number,
        title=state.title,
        summary=state.summary,
        severity=state.severity,
        severity_description=policy.severity(state.severity).description,
        paging_severity=policy.severity(state.severity).paging_severity,
        impact=state.impact,
        status=state.status,
        components=state.components,
        commander=state.roles.commander,
        tech_lead=state.roles.tech_lead,
        comms_lead=state.roles.comms_lead,
        channel=state.channel,
        escalation_level=state.escalation_level,
        next_update_due=state.next_update_due,
        declared_at=state.declared_at,
        resolved_at=state.resolved_at,
        declared_by=state.declared_by,
        acknowledged_by=state.acknowledged_by,
        acknowledged_at=state.acknowledged_at,
        drill=state.drill,
    )

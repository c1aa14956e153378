"""What is written about an incident once it is resolved: the resolution notice, the situation
report and the retrospective draft. Pure functions of the state, so the report is exactly the
state at the moment of resolution and is unit-tested without a server.

People are shown by Slack user id (``@U024BE7LH``): the report travels by email and Markdown,
where a Slack mention would not resolve.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from workflows.lifecycle import timeline
from workflows.models import ActionItem, IncidentState, Role
from workflows.policy import Policy
from workflows.requests import DocumentFile, Uploaded
from workflows.text import MENTION

TIMELINE_LIMIT = 200  # entries in a document; a longer incident says how many were left out
PLACEHOLDER = "_To be written by the people in the retrospective._"


def duration(span: timedelta | None) -> str:
    """``1h 05m``, ``3m 20s``, ``2d 4h``; ``-`` when unknown."""
    if span is None:
        return "-"
    seconds = max(int(span.total_seconds()), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC") if at else "-"


def who(user: str | None) -> str:
    return f"@{user}" if user else "unassigned"


def response_time(state: IncidentState) -> timedelta | None:
    """Acknowledged - declared."""
    return state.acknowledged_at - state.declared_at if state.acknowledged_at else None


def time_to_resolve(state: IncidentState) -> timedelta | None:
    return state.resolved_at - state.declared_at if state.resolved_at else None


def escalations(state: IncidentState) -> int:
    return sum(1 for entry in state.timeline if entry.kind == "escalated")


def missed_updates(state: IncidentState) -> int:
    """Times a status update went overdue (a second cadence without one)."""
    return sum(1 for entry in state.timeline if entry.kind == "update_overdue")


def resolution(state: IncidentState) -> str:
    """What the solution was: the message of the latest resolution."""
    for entry in reversed(state.timeline):
        if entry.kind == "resolved":
            return entry.text
    return "Resolved"


def how_resolved(state: IncidentState) -> str | None:
    """The latest resolution's message, else the latest status update (an open incident's too):
    what the kickoff of a similar incident says of this one."""
    for entry in reversed(state.timeline):
        said = entry.kind == "resolved" and entry.text != "Resolved"
        if said or entry.kind in ("update", "status"):
            return entry.text
    return None


def recurrences(state: IncidentState) -> list[str]:
    """How many earlier incidents were like this one when it opened, and the closest."""
    if state.recurrences is None:
        return ["- Not known: the archive did not answer when the incident opened"]
    closest = [f"- {s.label} {s.title} ({s.status.value})" for s in state.similar]
    return [f"Similar earlier incidents: {state.recurrences}", *([""] if closest else []), *closest]


def resolution_notice(state: IncidentState) -> str:
    """Normal operations restored: what support tells affected users."""
    components = ", ".join(state.components) or "none named"
    lines = [
        f"Normal operations restored after {duration(time_to_resolve(state))}.",
        f"Impact: {state.impact.value}. Affected components: {components}.",
    ]
    message = resolution(state)
    if message != "Resolved":
        lines.append(f"Resolution: {message}")
    return "\n".join(lines)


def _item(item: ActionItem) -> str:
    due = f", due {when(item.due_at)}" if item.due_at else ""
    status = "done" if item.done_at else "dropped" if item.dropped_at else "open"
    box = "x" if item.done_at else " "
    return f"- [{box}] #{item.id} {item.text} ({who(item.owner)}{due}; {status})"


def _plain(text: str) -> str:
    """Timeline text carries Slack mentions (``<@U…>``); documents show ``@U…``."""
    return MENTION.sub(r"@\1", text)


def _timeline(state: IncidentState) -> list[str]:
    entries = state.timeline[-TIMELINE_LIMIT:]
    lines = [
        f"- {when(e.at)} · {e.kind}{f' · {who(e.actor)}' if e.actor else ''} · {_plain(e.text)}"
        for e in entries
    ]
    left_out = len(state.timeline) - len(entries)
    return ([f"- ({left_out} earlier entries left out)"] if left_out else []) + lines


def _time_in_status(state: IncidentState) -> list[str]:
    """Written at resolution, so the status of the moment ends there."""
    spent = timeline.time_in_status(state, state.resolved_at or state.last_update_at)
    lines = [
        f"- {status.value.capitalize()}: {duration(spent[status]) if status in spent else 'never'}"
        for status in timeline.PHASES
    ]
    if reopened := timeline.reopenings(state):
        lines.append(
            f"- Reopened {reopened} time{'s' if reopened > 1 else ''}: the time between a "
            "resolution and its reopening counts in no status"
        )
    return lines


def _people(state: IncidentState) -> list[str]:
    lines = [f"- {role.display}: {who(state.roles.holder(role))}" for role in Role]
    if state.responders:
        lines.append("- Responders: " + ", ".join(who(u) for u in state.responders))
    return lines


def _type(state: IncidentState, policy: Policy) -> list[str]:
    """The incident's type, when it has one: ``Type security (Data leaks and breaches)``."""
    if state.type is None:
        return []
    kind = policy.types.get(state.type)
    return [f"Type {state.type}" + (f" ({kind.description})" if kind and kind.description else "")]


def situation_report(state: IncidentState, policy: Policy) -> str:
    """The situation report, from the state the moment the incident is resolved."""
    declared_by = f" by {who(state.declared_by)}" if state.declared_by else ""
    acked_by = f" by {who(state.acknowledged_by)}" if state.acknowledged_by else ""
    open_items = [item for item in state.action_items if item.is_open]
    lines = [
        f"# {'DRILL ' if state.drill else ''}{state.label} situation report: {state.title}",
        "",
        f"Severity {state.severity.upper()} ({policy.severity(state.severity).description}) · "
        f"impact {state.impact.value} · status {state.status.value}",
        *_type(state, policy),
        "",
        "## What was reported",
        "",
        state.summary or state.title,
        "",
        f"- Reported: {when(state.declared_at)}{declared_by} (via {state.source})",
        f"- Acknowledged: {when(state.acknowledged_at)}{acked_by}",
        f"- Closed: {when(state.resolved_at)}",
        f"- Response time (acknowledged - declared): {duration(response_time(state))}",
        f"- Time to resolve: {duration(time_to_resolve(state))}",
        "",
        "## Time in each status",
        "",
        *_time_in_status(state),
        "",
        "## Who held which role",
        "",
        *_people(state),
        "",
        "## Solution",
        "",
        resolution(state),
        "",
        "## Impact",
        "",
        f"- Impact: {state.impact.value}",
        f"- Affected components: {', '.join(state.components) or 'none named'}",
        f"- Summary: {state.summary or '-'}",
        "",
        "## Escalations and missed updates",
        "",
        f"- Escalations: {escalations(state)} (highest level {state.escalation_level})",
        f"- Missed status updates: {missed_updates(state)}",
        "",
        "## Recurrences",
        "",
        *recurrences(state),
        "",
        "## Open action items",
        "",
        *([_item(item) for item in open_items] or ["- none"]),
        "",
        "## Timeline",
        "",
        *_timeline(state),
    ]
    return "\n".join(lines) + "\n"


def retrospective_draft(state: IncidentState, policy: Policy, meeting_at: datetime) -> str:
    """The document people fill in; the facts are written, the judgement is left to them."""
    hours = policy.business_hours
    length = policy.severity(state.severity).retrospective.meeting_length
    lines = [
        f"# Retrospective: {'DRILL ' if state.drill else ''}{state.label} {state.title} (draft)",
        "",
        f"Meeting proposed: {when(meeting_at)} ({duration(length)}, business hours in "
        f"{hours.timezone})",
        "",
        "## Overview",
        "",
        state.summary or state.title,
        "",
        f"- Severity {state.severity.upper()}, impact {state.impact.value}",
        f"- Declared {when(state.declared_at)}, acknowledged {when(state.acknowledged_at)}, "
        f"resolved {when(state.resolved_at)}",
        f"- Response time {duration(response_time(state))}, time to resolve "
        f"{duration(time_to_resolve(state))}",
        *_people(state),
        "",
        "## Timeline",
        "",
        *_timeline(state),
        "",
        "## Resolution",
        "",
        resolution(state),
        "",
        "## Impact",
        "",
        f"- Impact: {state.impact.value}; affected components: "
        f"{', '.join(state.components) or 'none named'}",
        f"- Escalations: {escalations(state)}; missed status updates: {missed_updates(state)}",
        "",
        *_cause_or_lesson(state),
        "",
        "## Action items",
        "",
        *([_item(item) for item in state.action_items] or ["- none yet"]),
        "",
        "## Process improvements",
        "",
        PLACEHOLDER,
        "",
        "## Learnings",
        "",
        PLACEHOLDER,
    ]
    return "\n".join(lines) + "\n"


def _cause_or_lesson(state: IncidentState) -> list[str]:
    """Nothing broke in a drill: what matters is what practising it showed."""
    if state.drill:
        return [
            "## What did this drill teach us?",
            "",
            "What worked, what was missing (access, runbooks, alerts, roles), what to practise "
            "next time.",
            "",
            PLACEHOLDER,
        ]
    return ["## Root cause and contributing factors", "", PLACEHOLDER]


def shared_where(document: DocumentFile, shared: Uploaded | None) -> str:
    """Where a document went, for the timeline: a canvas, or a file (and why not a canvas)."""
    link, canvas = (shared.permalinks[0], shared.canvas) if shared else ("", False)
    why = f" (Slack refused a canvas: {shared.refused})" if shared and shared.refused else ""
    return f"{document.title}: {'canvas' if canvas else 'file'} {link}{why}"


def attendees(state: IncidentState) -> list[str]:
    """Everyone who held a role or posted an update, in order of first appearance."""
    people: list[str | None] = [
        state.roles.commander,
        state.roles.tech_lead,
        state.roles.comms_lead,
        state.acknowledged_by,
    ]
    people += [e.actor for e in state.timeline if e.kind in ("update", "status", "resolved")]
    return list(dict.fromkeys(p for p in people if p and p[0] in "UW"))

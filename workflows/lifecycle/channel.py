"""The kickoff message follows the incident: which changes it shows, and the brief it is
rendered from. Pure, so the workflow only sequences."""

from __future__ import annotations

from workflows.alerts.routing import AlertBatch
from workflows.effects import BookmarkLinks, Effect, Notice, Post
from workflows.models import IncidentState, Link
from workflows.policy import Policy
from workflows.requests import EditKickoff, IncidentBrief

# Well under Slack's per-channel limit (bookmarks.add answers too_many_bookmarks past it),
# leaving room for people's own; later alerts' links count against it too.
# Which links the incident channel bookmarks: pure, from the state and the policy.
MAX_BOOKMARKS = 40


def channel_bookmarks(state: IncidentState, policy: Policy) -> list[Link]:
    """The conference room, the runbooks of the affected components, the declared links."""
    template = policy.channel.conference_url
    if template and state.channel:
        links = [conference(template, state.channel.name, state.number)]
    else:
        links = []
    return unique(links + declared_links(state, policy))


def declared_links(state: IncidentState, policy: Policy) -> list[Link]:
    """The runbooks of the affected components and the links the declaration carried."""
    links: list[Link] = []
    for component in state.components:
        known = policy.components.get(component)
        if known and known.runbook:
            links.append(Link(title=f"Runbook: {component}"[:100], url=known.runbook))
    return links + state.links


def conference(template: str, channel_name: str, number: int) -> Link:
    url = template.replace("{channel}", channel_name).replace("{number}", str(number))
    return Link(title="Conference", url=url)


def unique(links: list[Link]) -> list[Link]:
    """One bookmark per address, the first title wins; at most ``MAX_BOOKMARKS``."""
    first: dict[str, Link] = {}
    for link in links:
        first.setdefault(link.url, link)
    return list(first.values())[:MAX_BOOKMARKS]


def alert_links(state: IncidentState, policy: Policy, batch: AlertBatch) -> list[Link]:
    """Links in a later notification of the incident's alert group that its channel does not
    bookmark yet (a runbook, a dashboard, the alert's source), while there is room."""
    if state.archived_at is not None:
        return []
    known = {link.url for link in channel_bookmarks(state, policy)}
    new: dict[str, Link] = {}
    for event in batch.events:
        for link in event.links:
            if link.url not in known:
                new.setdefault(link.url, link)
    room = MAX_BOOKMARKS - len(known)
    return list(new.values())[: max(room, 0)]


def bookmark(state: IncidentState, links: list[Link]) -> list[Effect]:
    """The incident keeps them (so a link is bookmarked once, across continue-as-new too) and
    the channel gets them; before the channel exists, opening it bookmarks them."""
    state.links += links
    return [BookmarkLinks(links=links)]


# Notices after which the pinned kickoff no longer shows the incident as it is.
SHOWN_ON_KICKOFF = frozenset(
    {
        Notice.ACKNOWLEDGED,
        Notice.STATUS_CHANGED,
        Notice.SEVERITY_CHANGED,
        Notice.RENAMED,
        Notice.ROLE_ASSIGNED,
        Notice.RESOLVED,
        Notice.REOPENED,
    }
)


def changes_kickoff(effects: list[Effect]) -> bool:
    return any(isinstance(e, Post) and e.notice in SHOWN_ON_KICKOFF for e in effects)


def incident_brief(state: IncidentState, policy: Policy, kickoff: bool = False) -> IncidentBrief:
    """The part of the incident that messages, topics and pages are rendered from; the kickoff's
    also lists the similar earlier incidents (no other message shows them)."""
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
        type=state.type,
        type_description=kind.description if (kind := policy.types.get(state.type or "")) else "",
        similar=state.similar if kickoff else [],
        private=state.private,
        announcement=state.announcement,
        broadcast_replies=policy.severity(state.severity).broadcast_replies,
        retrospective_url=state.retrospective.document_url,
    )


def edits(state: IncidentState, policy: Policy) -> list[tuple[EditKickoff, str]]:
    """The kickoff and the broadcast announcement as the incident is now (those posted), each
    with what its edit is called on the timeline if it fails."""
    return [
        (
            EditKickoff(
                **ref.model_dump(),
                brief=incident_brief(state, policy, kickoff=not announcement),
                announcement=announcement,
            ),
            f"update the {'announcement' if announcement else 'kickoff'}",
        )
        for ref, announcement in ((state.kickoff, False), (state.announcement, True))
        if ref is not None
    ]

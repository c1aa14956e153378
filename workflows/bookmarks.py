"""Which links the incident channel bookmarks: pure, from the state and the policy."""

from __future__ import annotations

from workflows.alerting import AlertBatch
from workflows.effects import BookmarkLinks, Effect
from workflows.models import IncidentState, Link
from workflows.policy import Policy

# Well under Slack's per-channel limit (bookmarks.add answers too_many_bookmarks past it),
# leaving room for people's own; later alerts' links count against it too.
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

"""Which links the incident channel bookmarks: pure, from the state and the policy."""

from __future__ import annotations

from workflows.models import IncidentState, Link
from workflows.policy import Policy

MAX_BOOKMARKS = 40  # well under Slack's per-channel limit, leaving room for people's own


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

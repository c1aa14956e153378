"""Which links the incident channel bookmarks: pure, from the state and the policy."""

from __future__ import annotations

from workflows.models import IncidentState, Link
from workflows.policy import Policy

MAX_BOOKMARKS = 40  # well under Slack's per-channel limit, leaving room for people's own


def channel_bookmarks(state: IncidentState, policy: Policy) -> list[Link]:
    """The conference room, the runbooks of the affected components, the declared links."""
    links: list[Link] = []
    template = policy.channel.conference_url
    if template and state.channel:
        url = template.replace("{channel}", state.channel.name).replace(
            "{number}", str(state.number)
        )
        links.append(Link(title="Conference", url=url))
    for component in state.components:
        known = policy.components.get(component)
        if known and known.runbook:
            links.append(Link(title=f"Runbook: {component}"[:100], url=known.runbook))
    links += state.links
    unique: dict[str, Link] = {}
    for link in links:
        unique.setdefault(link.url, link)  # one bookmark per address, the first title wins
    return list(unique.values())[:MAX_BOOKMARKS]

"""The status page as HTML (server-rendered, no script), JSON and an Atom feed; the small
pages of subscribing (the form's answer, the confirm and unsubscribe buttons)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from feedgen.feed import FeedGenerator
from jinja2 import Environment, PackageLoader, select_autoescape

from workflows.statuspage import PublicIncident, StatusPage

# Autoescape: titles and public updates are people's text.
_templates = Environment(
    loader=PackageLoader("starter.status", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class SubscribeForm:
    """The subscribe form as shown: where it posts, the components to tick, what was sent."""

    action: str
    groups: dict[str, list[str]]
    email: str = ""
    chosen: frozenset[str] = frozenset()
    errors: dict[str, str] = field(default_factory=dict)  # field -> what is wrong with it


@dataclass(frozen=True)
class Button:
    """The one button of a page that acts: a form POST to ``action``."""

    action: str
    label: str


def component_groups(page: StatusPage) -> dict[str, list[str]]:
    return {group: [name for name, _ in listed] for group, listed in page.groups.items()}


def html(page: StatusPage, feed_url: str, json_url: str, form: SubscribeForm) -> str:
    template = _templates.get_template("status.html")
    return template.render(page=page, feed_url=feed_url, json_url=json_url, form=form)


def message(
    title: str,
    text: str,
    status_url: str,
    *,
    problem: bool = False,
    button: Button | None = None,
    form: SubscribeForm | None = None,
) -> str:
    template = _templates.get_template("message.html")
    return template.render(
        title=title, text=text, status_url=status_url, problem=problem, button=button, form=form
    )


def as_json(page: StatusPage) -> dict[str, Any]:
    return {
        "title": page.title,
        "generated_at": page.generated_at.isoformat(),
        "status": page.overall.value,
        "components": [
            {"name": name, "group": group, "status": state.value}
            for group, components in page.groups.items()
            for name, state in components
        ],
        "active_incidents": [i.model_dump(mode="json") for i in page.active],
        "past_incidents": [i.model_dump(mode="json") for day in page.history.values() for i in day],
    }


def _updated(incident: PublicIncident) -> datetime:
    return incident.updates[-1].at if incident.updates else incident.declared_at


def atom(page: StatusPage, page_url: str, feed_url: str) -> bytes:
    """One entry per public incident, updated with its newest public update."""
    feed = FeedGenerator()
    feed.id(page_url)
    feed.title(f"{page.title} status")
    feed.link(href=page_url, rel="alternate")
    feed.link(href=feed_url, rel="self")
    feed.updated(page.generated_at)
    incidents = [*page.active, *(i for day in page.history.values() for i in day)]
    for incident in sorted(incidents, key=_updated, reverse=True):
        entry = feed.add_entry(order="append")
        entry.id(f"{page_url}#{incident.id}")
        entry.title(incident.title)
        entry.link(href=f"{page_url}#{incident.id}")
        entry.updated(_updated(incident))
        entry.published(incident.declared_at)
        lines = [
            f"{u.at:%Y-%m-%d %H:%M} UTC {u.status.value}: {u.message}" for u in incident.updates
        ]
        entry.content("\n".join(lines) or incident.status.value, type="text")
    feed_bytes: bytes = feed.atom_str(pretty=True)
    return feed_bytes

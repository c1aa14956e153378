"""The public status page (no auth): HTML, JSON and Atom from the status page's database.

Components come from the policy (with their groups) and their maintenance flags from the
database; public incidents are what the workflows published. Operators set maintenance with a
bearer token; a public update is a command like every other (``routes.incidents``). The HTML is
rendered on the server, with no script, from the templates beside this module, as are the
small pages of subscribing (the form's answer, the confirm and unsubscribe buttons).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response, status
from fastapi.responses import HTMLResponse, JSONResponse
from feedgen.feed import FeedGenerator
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import BaseModel, StrictBool

from clients.statuspage_store import StatusPageStore
from starter.api.dependencies import UNAUTHORIZED, AppSettings, require_token
from starter.api.routes.reports import Archive
from workflows.policy import Policy
from workflows.statuspage import HISTORY_DAYS, Component, PublicIncident, StatusPage, status_page

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


public = APIRouter(tags=["status page"])
operate = APIRouter(
    prefix="/status",
    tags=["status page"],
    dependencies=[Depends(require_token)],
    responses=UNAUTHORIZED,
)
# Short: a page read by many during an incident is served from caches, yet stays current.
CACHE = {"Cache-Control": "public, max-age=10"}


async def store_of(archive: Archive) -> StatusPageStore:
    return StatusPageStore(archive.engine)


Store = Annotated[StatusPageStore, Depends(store_of)]


def components(
    policy: Policy, maintenance: set[str], incidents: list[PublicIncident]
) -> list[Component]:
    """The policy's components; without any, those the public incidents name."""
    if policy.components:
        return [
            Component(name=name, group=c.group, maintenance=name in maintenance)
            for name, c in policy.components.items()
        ]
    names = sorted({n for i in incidents for n in i.components})
    return [Component(name=n, maintenance=n in maintenance) for n in names]


async def current(store: StatusPageStore, settings: AppSettings) -> StatusPage:
    now = datetime.now(UTC)
    incidents = await asyncio.to_thread(store.incidents, now - timedelta(days=HISTORY_DAYS))
    maintenance = await asyncio.to_thread(store.maintenance)
    listed = components(settings.policy, maintenance, incidents)
    return status_page(settings.status_page_title, listed, incidents, now)


def links(request: Request) -> tuple[str, str, str]:
    base = str(request.base_url).rstrip("/")
    return f"{base}/status", f"{base}/status/feed.atom", f"{base}/status.json"


@public.get(
    "/status",
    summary="The status page (HTML), with its subscribe form",
    response_class=HTMLResponse,
)
async def status_html(request: Request, store: Store, settings: AppSettings) -> HTMLResponse:
    _, feed_url, json_url = links(request)
    shown = await current(store, settings)
    action = request.url_for("subscribe_by_form").path
    form = SubscribeForm(action=action, groups=component_groups(shown))
    return HTMLResponse(html(shown, feed_url, json_url, form), headers=CACHE)


@public.get("/status.json", summary="The status page as JSON")
async def status_json(store: Store, settings: AppSettings) -> JSONResponse:
    return JSONResponse(as_json(await current(store, settings)), headers=CACHE)


@public.get(
    "/status/feed.atom",
    summary="Public incidents as an Atom feed",
    response_class=Response,
    responses={200: {"content": {"application/atom+xml": {}}, "description": "Atom 1.0"}},
)
async def status_feed(request: Request, store: Store, settings: AppSettings) -> Response:
    page_url, feed_url, _ = links(request)
    body = atom(await current(store, settings), page_url, feed_url)
    return Response(body, media_type="application/atom+xml", headers=CACHE)


class Maintenance(BaseModel):
    maintenance: StrictBool  # true or false; 0 or "yes" would be a guess


@operate.put("/components/{name}", summary="Put a component under maintenance, or take it out")
async def set_maintenance(
    name: Annotated[str, Path(max_length=100)],
    body: Maintenance,
    store: Store,
    settings: AppSettings,
) -> Maintenance:
    known = settings.policy.components
    if known and name not in known:
        detail = f"unknown component {name!r} (known: {', '.join(sorted(known))})"
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=detail)
    await asyncio.to_thread(store.set_maintenance, name, body.maintenance)
    return body

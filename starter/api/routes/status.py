"""The public status page (no auth): HTML, JSON and Atom from the status page's database.

Components come from the policy (with their groups) and their maintenance flags from the
database; public incidents are what the workflows published. Operators set maintenance with a
bearer token; a public update is a command like every other (``commands``).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response, status
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, StrictBool

from clients.statuspage_store import StatusPageStore
from starter.api.dependencies import UNAUTHORIZED, AppSettings, require_token
from starter.api.routes.followup import Archive
from starter.status import render
from workflows.policy import Policy
from workflows.statuspage import HISTORY_DAYS, Component, PublicIncident, StatusPage, status_page

page = APIRouter(tags=["status page"])
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


@page.get(
    "/status",
    summary="The status page (HTML), with its subscribe form",
    response_class=HTMLResponse,
)
async def status_html(request: Request, store: Store, settings: AppSettings) -> HTMLResponse:
    _, feed_url, json_url = links(request)
    shown = await current(store, settings)
    action = request.url_for("subscribe_by_form").path
    form = render.SubscribeForm(action=action, groups=render.component_groups(shown))
    return HTMLResponse(render.html(shown, feed_url, json_url, form), headers=CACHE)


@page.get("/status.json", summary="The status page as JSON")
async def status_json(store: Store, settings: AppSettings) -> JSONResponse:
    return JSONResponse(render.as_json(await current(store, settings)), headers=CACHE)


@page.get(
    "/status/feed.atom",
    summary="Public incidents as an Atom feed",
    response_class=Response,
    responses={200: {"content": {"application/atom+xml": {}}, "description": "Atom 1.0"}},
)
async def status_feed(request: Request, store: Store, settings: AppSettings) -> Response:
    page_url, feed_url, _ = links(request)
    body = render.atom(await current(store, settings), page_url, feed_url)
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

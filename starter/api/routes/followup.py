"""After resolution: the situation report and the incident figures.

The report and the figures also come from the incident archive, which outlives Temporal's
retention of finished workflows. The commands after resolution (the retrospective, action
items) are rows of the command table, routed in ``commands`` like every other.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel

from clients.archive import IncidentArchive
from starter.api.dependencies import (
    UNAUTHORIZED,
    AppSettings,
    Desk,
    IncidentRef,
    KnownSeverity,
    require_token,
)
from starter.api.errors import invalid
from starter.api.routes.commands import incident_router
from starter.desk import IncidentNotFound
from workflows.models import Status
from workflows.resolution.metrics import IncidentMetrics, IncidentRecord

one = incident_router(["incidents"])
archived = APIRouter(
    prefix="/archive",
    tags=["metrics"],
    dependencies=[Depends(require_token)],
    responses=UNAUTHORIZED,
)
metrics = APIRouter(
    prefix="/metrics",
    tags=["metrics"],
    dependencies=[Depends(require_token)],
    responses=UNAUTHORIZED,
)


async def archive_of(request: Request, settings: AppSettings) -> IncidentArchive:
    """The archive, opened on first use (its schema is `incident db upgrade`'s to apply)."""
    archive: IncidentArchive | None = getattr(request.app.state, "archive", None)
    if archive is None:
        archive = IncidentArchive(settings.database_url.get_secret_value())
        request.app.state.archive = archive
    return archive


Archive = Annotated[IncidentArchive, Depends(archive_of)]
# What ``since`` takes: a date and time with a zone (a bare number is no time here).
ISO_WITH_ZONE = (
    r"^[1-9]\d{3}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d"
    r"(:[0-5]\d(\.\d{1,6})?)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$"
)


@one.get(
    "/report",
    summary="The situation report (Markdown), written when the incident was resolved",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/markdown": {}}}},
)
async def get_report(ref: IncidentRef, desk: Desk, archive: Archive) -> PlainTextResponse:
    try:
        report = (await desk.get(ref)).report
    except IncidentNotFound:
        record = await asyncio.to_thread(archive.get, ref)
        if record is None:
            raise
        report = record.report
    if report is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"{ref} has no report until resolved")
    return PlainTextResponse(report, media_type="text/markdown; charset=utf-8")


@metrics.get("/incidents", summary="Incident figures from the archive")
async def incident_metrics(
    archive: Archive,
    severity: KnownSeverity,
    since: Annotated[
        str | None,
        Query(pattern=ISO_WITH_ZONE, description="ISO timestamp with a zone", max_length=40),
    ] = None,
) -> IncidentMetrics:
    try:
        when = datetime.fromisoformat(since.replace("Z", "+00:00")) if since else None
    except ValueError:
        raise invalid("since", "not a timestamp with a zone", "query") from None
    return await asyncio.to_thread(archive.metrics, when, severity)


class ArchivedIncidents(BaseModel):
    incidents: list[IncidentRecord]


@archived.get("/incidents", summary="Search the incident archive (kept past Temporal's retention)")
async def search_archive(
    archive: Archive,
    severity: KnownSeverity,
    q: Annotated[str | None, Query(max_length=200, description="Words of the title")] = None,
    status: Annotated[Status | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ArchivedIncidents:
    found = await asyncio.to_thread(
        archive.search, q, severity, status.value if status else None, limit
    )
    return ArchivedIncidents(incidents=found)


# One router for the application to include.
router = APIRouter()
router.include_router(one)
router.include_router(metrics)
router.include_router(archived)

"""What the API reads besides live incidents: the situation report, the archive's figures, and
the policy in force with a preview of what it would do.

The report and the figures also come from the incident archive, which outlives Temporal's
retention of finished workflows. The commands after resolution (the retrospective, action
items) are rows of the command table, routed in ``incidents`` like every other. The policy's
severities come most severe first; its preview runs the workflow's own deadline functions on
a simulated clock, declaring nothing. (The CLI's ``report``, ``stats`` and ``preview`` read
these, in ``starter.cli_reports``.)
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field, ValidationError

from clients.archive import IncidentArchive
from starter.api.dependencies import (
    UNAUTHORIZED,
    AppSettings,
    Desk,
    IncidentRef,
    KnownSeverity,
    Readings,
    incident_router,
    require_token,
)
from starter.api.errors import invalid
from starter.api.identity import Reading
from starter.desk import IncidentDesk, IncidentNotFound
from starter.oncall import OnCallDesk
from workflows.models import IncidentState, Status
from workflows.oncall.schedules import coverage_warnings
from workflows.policy import PagingSeverity
from workflows.preview import Scenario, Step, preview
from workflows.requests import Recurrences
from workflows.resolution.metrics import IncidentMetrics, IncidentRecord

# -- after resolution ------------------------------------------------------------------------

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


async def readable(
    ref: str, desk: IncidentDesk, archive: IncidentArchive, reading: Reading
) -> IncidentState | IncidentRecord:
    """Live from its workflow, else from the archive; only to a caller who may read it."""
    incident: IncidentState | IncidentRecord | None
    try:
        incident = await desk.get(ref)
    except IncidentNotFound:
        if (incident := await asyncio.to_thread(archive.get, ref)) is None:
            raise
    return reading.shown(incident, ref)


@one.get(
    "/report",
    summary="The situation report (Markdown), written when the incident was resolved",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/markdown": {}}}},
)
async def get_report(
    ref: IncidentRef, desk: Desk, archive: Archive, reading: Readings
) -> PlainTextResponse:
    incident = await readable(ref, desk, archive, reading)
    if (report := incident.report) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"{ref} has no report until resolved")
    return PlainTextResponse(report, media_type="text/markdown; charset=utf-8")


@one.get(
    "/similar",
    summary="Similar earlier incidents: up to three, best first, and how many",
    responses={503: {"description": "No worker answered; retry after `Retry-After` seconds."}},
)
async def get_similar(
    ref: IncidentRef, desk: Desk, archive: Archive, reading: Readings
) -> Recurrences:
    """Full-text search of the archive with the incident's title and components, as its kickoff
    lists them: any shared word counts; never the incident itself, a private one or a drill."""
    incident = await readable(ref, desk, archive, reading)
    found = (incident.id, incident.title, incident.components, incident.declared_at)
    return await asyncio.to_thread(archive.similar, *found)


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
    reading: Readings,
    severity: KnownSeverity,
    q: Annotated[str | None, Query(max_length=200, description="Words of the title")] = None,
    status: Annotated[Status | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ArchivedIncidents:
    found = await asyncio.to_thread(
        archive.search, q, severity, status.value if status else None, limit
    )
    return ArchivedIncidents(incidents=[record for record in found if reading.admits(record)])


# -- the policy in force ---------------------------------------------------------------------

policy = APIRouter(prefix="/policy", tags=["policy"], dependencies=[Depends(require_token)])

DURATION = "seconds, or like 90s, 15m, 2h, 3d; leave out: never"
# What ``parse_duration`` reads, without the spaces it forgives: seconds, or a number and a unit.
LENGTH = r"^\d{1,6}(\.\d{1,3})?(ms|s|m|h|d|w)?$"
# Updates every zero seconds would be no cadence: at least one digit that is not zero.
POSITIVE_LENGTH = (
    r"^(0{0,5}[1-9]\d{0,5}(\.\d{1,3})?|0{1,6}\.([1-9]\d{0,2}|0[1-9]\d?|00[1-9]))(ms|s|m|h|d|w)?$"
)


class SeverityOut(BaseModel):
    name: str = Field(examples=["sev1"])
    description: str
    paging_severity: PagingSeverity = Field(description="What a page of this severity says.")


class Severities(BaseModel):
    severities: list[SeverityOut] = Field(
        description="Most severe first, as the policy lists them."
    )


@policy.get("/severities", summary="The severities of the policy in force, most severe first")
async def policy_severities(desk: Desk) -> Severities:
    listed = [
        SeverityOut(name=name, description=s.description, paging_severity=s.paging_severity)
        for name, s in desk.policy.severities.items()
    ]
    return Severities(severities=listed)


class Preview(BaseModel):
    scenario: Scenario
    steps: list[Step]
    warnings: list[str] = Field(
        default_factory=list,
        description="schedules leaving nobody on call in the next 4 weeks (overrides aside), "
        "with the windows in their time zones",
    )


@policy.get("/preview", summary="What the policy would do to an incident, declaring nothing")
async def policy_preview(
    desk: Desk,
    severity: Annotated[str, Query(max_length=50, description="like sev1")],
    ack_after: Annotated[str | None, Query(pattern=LENGTH, description=DURATION)] = None,
    updates_every: Annotated[
        str | None, Query(pattern=POSITIVE_LENGTH, description=DURATION)
    ] = None,
    resolve_after: Annotated[str | None, Query(pattern=LENGTH, description=DURATION)] = None,
    horizon: Annotated[str, Query(pattern=LENGTH, description="how far to look")] = "1d",
) -> Preview:
    """Runs the workflow's own deadline and command functions on a simulated clock: who is
    notified and paged when, which reminders fire, when the retrospective and archive come.
    The incident is declared now: a tier naming ``oncall:`` reaches who the schedule says then,
    overrides included when every schedule answered (each answer says which)."""
    given = {
        "severity": severity,
        "ack_after": ack_after,
        "updates_every": updates_every,
        "resolve_after": resolve_after,
        "horizon": horizon,
    }
    try:
        scenario = Scenario.model_validate({k: v for k, v in given.items() if v is not None})
    except ValidationError as error:
        detail = [
            {"loc": ["query", *e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in error.errors()
        ]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=detail) from None
    now = datetime.now(UTC)
    rosters = await OnCallDesk(desk.client, desk.policy).rosters(now)
    warnings = coverage_warnings(desk.policy.schedules, now)
    try:
        steps = preview(desk.policy, scenario, rosters)
        return Preview(scenario=scenario, steps=steps, warnings=warnings)
    except ValueError as error:  # a severity this policy does not know
        detail = [{"loc": ["query", "severity"], "msg": str(error), "type": "value_error"}]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=detail) from None


# One router for the application to include.
router = APIRouter()
router.include_router(one)
router.include_router(metrics)
router.include_router(archived)
router.include_router(policy)

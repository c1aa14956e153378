"""What routes receive from the application: its settings and the incident desk."""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import Depends, HTTPException, Path, Query, Request, status

from config import Settings
from starter.api.errors import invalid
from starter.desk import IncidentDesk
from workflows.models import parse_incident_ref


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_desk(request: Request) -> IncidentDesk:
    desk: IncidentDesk = request.app.state.desk
    return desk


async def incident_ref(
    incident_id: Annotated[
        str, Path(description="incident-42, INC-42 or 42", examples=["incident-42"])
    ],
) -> str:
    """The canonical incident id; a malformed one can name no incident, hence 404.

    Async on purpose: a sync dependency runs in a thread, and the log context bound here
    would not reach the route or the request log.
    """
    try:
        ref = parse_incident_ref(incident_id)
    except ValueError as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(error)) from None
    structlog.contextvars.bind_contextvars(incident_id=ref)
    return ref


async def known_severity(
    desk: Annotated[IncidentDesk, Depends(get_desk)],
    severity: Annotated[str | None, Query(max_length=50, description="like sev1")] = None,
) -> str | None:
    """A severity the policy knows, or none: another could match nothing, so it is refused."""
    if severity is not None:
        try:
            desk.policy.severity(severity)
        except ValueError as error:
            raise invalid("severity", str(error), "query") from None
    return severity


AppSettings = Annotated[Settings, Depends(get_settings)]
Desk = Annotated[IncidentDesk, Depends(get_desk)]
IncidentRef = Annotated[str, Depends(incident_ref)]
KnownSeverity = Annotated[str | None, Depends(known_severity)]

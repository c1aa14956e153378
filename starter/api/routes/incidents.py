"""/incidents: declare, list and read incidents, and each command on one.

A request body is the domain's own model, one definition validated once: the declaration
(``workflows.models.DeclarationRequest``), or the command itself (``workflows.lifecycle.
commands``), one route per row of the command table, an item's number from the path. People
in it may be given by id, mention, @handle or email; ``PeopleRoute`` turns them into ids
before validation. Refusals (409) and unknown incidents (404) come from the desk's
exceptions, mapped to HTTP in one place (``starter.api.errors``), so every route answers them
the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from inspect import Parameter, Signature
from typing import Annotated, Any

import structlog
from fastapi import (
    APIRouter,
    Body,
    Depends,
    HTTPException,
    Path,
    Query,
    Request,
    Response,
    status,
)
from temporalio.service import RPCError, RPCStatusCode

from config import Settings
from starter.api.dependencies import (
    COMMAND_KEY,
    UNAUTHORIZED,
    AppSettings,
    Desk,
    IncidentRef,
    KnownSeverity,
    KnownType,
    PeopleRoute,
    Readings,
    Verified,
    incident_router,
    known_to_policy,
    require_token,
)
from starter.api.errors import ONE_INCIDENT, invalid
from starter.api.identity import Caller, acting_for, entry_point
from starter.api.schemas import (
    PAGE_TOKEN,
    IncidentList,
    IncidentOut,
    IncidentSummaryOut,
    packed,
    unpacked,
)
from starter.command_table import COMMANDS, CommandRow
from starter.desk import IncidentDesk
from starter.intake import DeclarationTooLarge
from starter.reading import ListFilter
from workflows.lifecycle import commands as cmd
from workflows.lifecycle.notices import CommandRefused
from workflows.models import DeclarationRequest, Status
from workflows.text import SLACK_USER_ID

log = structlog.get_logger()

MAX_ITEM = 10_000  # far more action items than an incident holds: bounds the path's number


async def run(
    request: Request, desk: IncidentDesk, settings: Settings, ref: str, command: cmd.Command
) -> IncidentOut:
    """The command carried out, and counted as applied or refused (``/metrics``)."""
    name, counted = type(command).__name__, request.app.state.metrics.commands
    try:
        state = await desk.command(ref, command, request_key=COMMAND_KEY.get())
    except CommandRefused:
        counted.labels(name, "refused").inc()
        raise
    counted.labels(name, "applied").inc()
    log.info("incident_command", command=name, status=state.status.value)
    return IncidentOut.of(state, settings.incident_url(state.id))


def carrying_out(row: CommandRow[Any]) -> Callable[..., Awaitable[IncidentOut]]:
    """The route function of one row: its signature is built from the row, for FastAPI."""
    model = row.model
    everything_optional = not any(f.is_required() for f in model.model_fields.values())
    # A command with nothing required may be sent with no body at all.
    body: Any = Annotated[model, Body(default_factory=model)] if everything_optional else model
    parameters = [
        Parameter("request", Parameter.KEYWORD_ONLY, annotation=Request),
        Parameter("ref", Parameter.KEYWORD_ONLY, annotation=IncidentRef),
        Parameter("desk", Parameter.KEYWORD_ONLY, annotation=Desk),
        Parameter("settings", Parameter.KEYWORD_ONLY, annotation=AppSettings),
        Parameter("caller", Parameter.KEYWORD_ONLY, annotation=Verified),
        Parameter("body", Parameter.KEYWORD_ONLY, annotation=body),
    ]
    if "{item_id}" in row.path:
        item = Annotated[int, Path(ge=0, le=MAX_ITEM, description="The action item's number.")]
        parameters.append(Parameter("item_id", Parameter.KEYWORD_ONLY, annotation=item))

    async def carry_out(
        request: Request,
        ref: str,
        desk: IncidentDesk,
        settings: Settings,
        caller: Caller,
        body: Any,
        **path: Any,
    ) -> IncidentOut:
        # Every command goes through here: who acts is the verified caller's to say, and the
        # token that asked and where it came in go on the timeline with it.
        acting = {"by": acting_for(caller, body.by), "via": caller.name}
        acting["source"] = entry_point(request)
        command = body.model_copy(update={**path, **acting})
        known_to_policy(desk, getattr(command, "severity", None))
        return await run(request, desk, settings, ref, command)

    carry_out.__signature__ = Signature(parameters, return_annotation=IncidentOut)  # type: ignore[attr-defined]
    carry_out.__name__ = row.name  # the operation's id, as it was when routes were hand-written
    carry_out.__doc__ = f"`{row.usage}` in Slack and the CLI."
    return carry_out


# POST /incidents/{incident_id}/<path>, one route per row of the command table.
commanding = incident_router(["incidents"])
for row in COMMANDS:
    commanding.add_api_route(
        f"/{row.path}",
        carrying_out(row),
        methods=["POST"],
        summary=row.help[0].upper() + row.help[1:],
        response_model=IncidentOut,
    )


# Page tokens this API hands out: "p1." and Temporal's token in URL-safe base64. One of that
# shape that names no page (made up, or from another server) is answered 404: no such page.
NO_SUCH_PAGE = "no such page: send a next_page_token from a previous answer, as it was"

# Two routers: the collection, and one incident (which can answer 404).
router = APIRouter(
    prefix="/incidents",
    tags=["incidents"],
    dependencies=[Depends(require_token)],
    responses=UNAUTHORIZED,
    route_class=PeopleRoute,
)
one = APIRouter(prefix="/{incident_id}", responses=ONE_INCIDENT)


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Declare an incident",
    responses={
        200: {"model": IncidentOut, "description": "An open incident has this idempotency_key."},
        201: {"model": IncidentOut, "description": "Declared, and its channel exists (`wait`)."},
        202: {
            "model": IncidentOut,
            "description": "Declared: durable in Temporal, channel still to come (`channel` is "
            "null); poll `Location`.",
        },
        403: {
            "description": "A personal token's `by` names someone else, or it lacks `write`, "
            "or the policy's `[permissions] declare` does not name who declares."
        },
        422: {
            "description": "Invalid, or incomplete after the template: `detail` names the "
            "field (`title` or `severity` still missing, an unknown `template`, `type` or "
            "severity, a severity the type does not allow, `public` on a drill, unknown "
            "`public.components`). Nothing is declared."
        },
        503: {"description": "Transient: retry after `Retry-After` seconds; `detail` says why."},
    },
)
async def declare(
    body: DeclarationRequest,
    request: Request,
    response: Response,
    desk: Desk,
    settings: AppSettings,
    caller: Verified,
    wait: Annotated[
        bool,
        Query(
            description="Also wait (up to 10 s) for the channel: 201 once it exists, still "
            "202 if no worker made it in time."
        ),
    ] = False,
) -> IncidentOut:
    """Answer as soon as Temporal holds the declaration, with or without a running worker.

    `title` and `severity` are required unless `template` names a policy template that gives
    them: the template fills every field the body leaves out (title, severity, impact,
    summary, components, and `public`, which starts the incident on the status page with a
    first public update); what the body says wins. `by` (or `declared_by`) names who declares.
    """
    # model_copy keeps what the caller left unset unset, so the desk's completion from the
    # template fills the rest (``InvalidDeclaration`` is a 422 naming the field, see errors).
    declared_by = acting_for(caller, body.declared_by)
    acting = {"declared_by": declared_by, "via": caller.name, "source": entry_point(request)}
    asked = body.model_copy(update=acting)
    try:
        accepted = await desk.accept(asked, wait=desk.wait_for_channel if wait else None)
    except DeclarationTooLarge as error:
        raise invalid("body", str(error)) from None
    state = accepted.state
    structlog.contextvars.bind_contextvars(incident_id=state.id)
    log.info("incident_declared", number=state.number, created=accepted.created)
    created = str(accepted.created).lower()
    request.app.state.metrics.declared.labels(state.severity, created).inc()
    if not accepted.created:
        response.status_code = status.HTTP_200_OK
    elif accepted.opened:
        response.status_code = status.HTTP_201_CREATED
    response.headers["Location"] = str(request.url_for("get_incident", incident_id=state.id))
    return IncidentOut.of(state, settings.incident_url(state.id))


@router.get(
    "",
    summary="List incidents, a page at a time",
    responses={404: {"description": "No such page: a `next_page_token` this API never gave."}},
)
async def list_incidents(
    desk: Desk,
    settings: AppSettings,
    reading: Readings,
    severity: KnownSeverity,
    kind: KnownType,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    commander: Annotated[
        str | None, Query(description="Slack user id", pattern=SLACK_USER_ID.pattern)
    ] = None,
    text: Annotated[
        str | None, Query(description="Words in the title (any case).", max_length=200)
    ] = None,
    open_: Annotated[
        bool | None, Query(alias="open", description="true: not resolved; false: resolved")
    ] = None,
    page_size: Annotated[int | None, Query(ge=1, le=1000)] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Same as page_size.")] = 100,
    next_page_token: Annotated[
        str | None,
        Query(description="From the previous page's answer.", max_length=4000, pattern=PAGE_TOKEN),
    ] = None,
) -> IncidentList:
    """Read from Temporal visibility (each incident keeps its list view in its memo), so the
    cost does not grow with a query per incident. Newest first within a page; a page with
    `text` may hold fewer than `page_size`: only a missing `next_page_token` means the end."""
    no_such_page = HTTPException(status.HTTP_404_NOT_FOUND, detail=NO_SUCH_PAGE)
    try:
        token = unpacked(next_page_token) if next_page_token else None
    except ValueError:
        raise no_such_page from None
    filters = ListFilter(
        status=status_, severity=severity, commander=commander, text=text, open=open_, type=kind
    )
    try:
        page = await desk.page(
            filters,
            page_size=page_size or limit,
            token=token,
            sees=reading.admits,
        )
    except RPCError as error:
        # Temporal cannot parse a made-up token (it says INVALID_ARGUMENT, or UNKNOWN).
        if token and error.status in (RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.UNKNOWN):
            raise no_such_page from None
        raise
    return IncidentList(
        incidents=[IncidentSummaryOut.of(s, settings.incident_url(s.id)) for s in page.incidents],
        next_page_token=packed(page.next_page_token) if page.next_page_token else None,
    )


@one.get(
    "",
    summary="One incident, as its workflow has it now",
    responses={503: {"description": "No worker answered; retry after `Retry-After` seconds."}},
)
async def get_incident(
    ref: IncidentRef, desk: Desk, settings: AppSettings, reading: Readings
) -> IncidentOut:
    """Answers even before a worker has run the incident: then as declared, `channel` null.
    A private incident only to its members and admins (an admin's read audited): to anyone
    else, 404."""
    state = reading.shown(await desk.get(ref), ref)
    return IncidentOut.of(state, settings.incident_url(state.id))


router.include_router(one)

"""/incidents: declare, find and drive incidents. Each command is one workflow Update.

Request bodies are the commands themselves (``workflows.commands``) and the declaration
(``workflows.models.Declaration``): one definition, validated once. People in them may be given
by id, mention, @handle or email; ``PeopleRoute`` turns them into ids before validation.

Refusals (409) and unknown incidents (404) come from the desk's exceptions, mapped to HTTP in
one place (``starter.api.errors``), so every route answers them the same way.
"""

from __future__ import annotations

import base64
from contextvars import ContextVar
from enum import Enum
from typing import Annotated, Any

import structlog
from fastapi import (
    APIRouter,
    Body,
    Depends,
    Header,
    HTTPException,
    Query,
    Request,
    Response,
    status,
)
from temporalio.service import RPCError, RPCStatusCode

from config import Settings
from starter.api.auth import require_token
from starter.api.dependencies import AppSettings, Desk, IncidentRef
from starter.api.people import PeopleRoute
from starter.api.schemas import IncidentList, IncidentOut, IncidentSummaryOut
from starter.desk import IncidentDesk
from starter.intake import DeclarationTooLarge
from starter.listing import ListFilter
from workflows import commands as cmd
from workflows.models import Declaration, DeclarationRequest, Status
from workflows.policy import Policy
from workflows.templates import InvalidDeclaration, complete

log = structlog.get_logger()

UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid bearer token."}
}
ONE_INCIDENT: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such incident (or not an incident id)."},
    409: {"description": "The incident refused the command; `detail` says why."},
}

# Set per request by ``command_key``: the client's name for a command it may send again.
COMMAND_KEY: ContextVar[str | None] = ContextVar("command_key", default=None)


async def command_key(
    idempotency_key: Annotated[
        str | None,
        Header(
            max_length=200,
            pattern=r"^[\x21-\x7e]+$",
            description="Retrying with the same key applies the command once, whatever happens.",
        ),
    ] = None,
) -> None:
    """Async, so the key set here is seen by the route (same task, same context)."""
    COMMAND_KEY.set(idempotency_key)


# Two routers: the collection, and one incident (whose routes can answer 404 and 409).
router = APIRouter(
    prefix="/incidents",
    tags=["incidents"],
    dependencies=[Depends(require_token)],
    responses=UNAUTHORIZED,
    route_class=PeopleRoute,
)
one = APIRouter(
    prefix="/{incident_id}",
    responses=ONE_INCIDENT,
    route_class=PeopleRoute,
    dependencies=[Depends(command_key)],
)


def invalid(field: str, message: str) -> HTTPException:
    """A 422 shaped like FastAPI's own validation errors, so clients read one format."""
    detail = [{"loc": ["body", field], "msg": message, "type": "value_error"}]
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=detail)


def completed(request: DeclarationRequest, policy: Policy) -> Declaration:
    """Complete from the template and name the offending field before any incident number is
    spent on the declaration."""
    try:
        return complete(request, policy)
    except InvalidDeclaration as error:
        detail = [{"loc": ["body", *error.loc], "msg": error.message, "type": error.kind}]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=detail) from None


def invalid_query(field: str, message: str) -> HTTPException:
    detail = [{"loc": ["query", field], "msg": message, "type": "value_error"}]
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=detail)


def incident_router(tags: list[str | Enum]) -> APIRouter:
    """Routes on one incident, kept in other modules (follow-up, status page): the same token,
    people by name and Idempotency-Key handling as the routes here."""
    return APIRouter(
        prefix="/incidents/{incident_id}",
        tags=tags,
        dependencies=[Depends(require_token), Depends(command_key)],
        responses={**UNAUTHORIZED, **ONE_INCIDENT},
        route_class=PeopleRoute,
    )


async def run(
    desk: IncidentDesk, settings: Settings, ref: str, command: cmd.Command
) -> IncidentOut:
    state = await desk.command(ref, command, request_key=COMMAND_KEY.get())
    log.info("incident_command", command=type(command).__name__, status=state.status.value)
    return IncidentOut.of(state, settings.incident_url(state.id))


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
        422: {
            "description": "Invalid, or incomplete after the template: `detail` names the "
            "field (`title` or `severity` still missing, an unknown `template` or severity, "
            "`public` on a drill, unknown `public.components`). Nothing is declared."
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
    # model_copy keeps what the caller left unset unset, so a template can fill the rest.
    declaration = completed(body.model_copy(update={"source": "api"}), desk.policy)
    try:
        accepted = await desk.accept(declaration, wait=desk.wait_for_channel if wait else None)
    except DeclarationTooLarge as error:
        raise invalid("body", str(error)) from None
    state = accepted.state
    structlog.contextvars.bind_contextvars(incident_id=state.id)
    log.info("incident_declared", number=state.number, created=accepted.created)
    if not accepted.created:
        response.status_code = status.HTTP_200_OK
    elif accepted.opened:
        response.status_code = status.HTTP_201_CREATED
    response.headers["Location"] = str(request.url_for("get_incident", incident_id=state.id))
    return IncidentOut.of(state, settings.incident_url(state.id))


@router.get("", summary="List incidents, a page at a time")
async def list_incidents(
    desk: Desk,
    settings: AppSettings,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    severity: Annotated[
        str | None, Query(description="like sev1", pattern=r"^[A-Za-z0-9_.-]{1,50}$")
    ] = None,
    commander: Annotated[
        str | None, Query(description="Slack user id", pattern=r"^[UW][A-Z0-9]{2,20}$")
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
        str | None, Query(description="From the previous page's answer.", max_length=4000)
    ] = None,
) -> IncidentList:
    """Read from Temporal visibility (each incident keeps its list view in its memo), so the
    cost does not grow with a query per incident. Newest first within a page; a page with
    `text` may hold fewer than `page_size`: only a missing `next_page_token` means the end."""
    not_a_token = invalid_query("next_page_token", "not a token from a previous page")
    try:
        token = base64.b64decode(next_page_token, b"-_", validate=True) if next_page_token else None
    except ValueError:
        raise not_a_token from None
    filters = ListFilter(
        status=status_, severity=severity, commander=commander, text=text, open=open_
    )
    try:
        page = await desk.page(filters, page_size=page_size or limit, token=token)
    except RPCError as error:
        # Temporal cannot parse a made-up token (it says INVALID_ARGUMENT, or UNKNOWN).
        if token and error.status in (RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.UNKNOWN):
            raise not_a_token from None
        raise
    return IncidentList(
        incidents=[IncidentSummaryOut.of(s, settings.incident_url(s.id)) for s in page.incidents],
        next_page_token=base64.urlsafe_b64encode(page.next_page_token).decode()
        if page.next_page_token
        else None,
    )


@one.get(
    "",
    summary="One incident, as its workflow has it now",
    responses={503: {"description": "No worker answered; retry after `Retry-After` seconds."}},
)
async def get_incident(ref: IncidentRef, desk: Desk, settings: AppSettings) -> IncidentOut:
    """Answers even before a worker has run the incident: then as declared, `channel` null."""
    state = await desk.get(ref)
    return IncidentOut.of(state, settings.incident_url(state.id))


@one.post("/acknowledge", summary="Acknowledge: escalation stops")
async def acknowledge(
    ref: IncidentRef,
    desk: Desk,
    settings: AppSettings,
    body: Annotated[cmd.Acknowledge, Body(default_factory=cmd.Acknowledge)],
) -> IncidentOut:
    return await run(desk, settings, ref, body)


@one.post("/status", summary="Move the status forward")
async def set_status(
    ref: IncidentRef, desk: Desk, settings: AppSettings, body: cmd.SetStatus
) -> IncidentOut:
    """investigating → identified → monitoring → resolved; forward only (skipping is fine)."""
    return await run(desk, settings, ref, body)


@one.post("/updates", summary="Post a status update")
async def post_update(
    ref: IncidentRef, desk: Desk, settings: AppSettings, body: cmd.PostUpdate
) -> IncidentOut:
    """Goes on the timeline and to Slack, and resets the update cadence."""
    return await run(desk, settings, ref, body)


@one.post("/severity", summary="Change the severity")
async def set_severity(
    ref: IncidentRef, desk: Desk, settings: AppSettings, body: cmd.SetSeverity
) -> IncidentOut:
    try:
        desk.policy.severity(body.severity)
    except ValueError as error:
        raise invalid("severity", str(error)) from None
    return await run(desk, settings, ref, body)


@one.post("/roles", summary="Assign a role")
async def assign_role(
    ref: IncidentRef, desk: Desk, settings: AppSettings, body: cmd.AssignRole
) -> IncidentOut:
    return await run(desk, settings, ref, body)


@one.post("/responders", summary="Add responders (invited to the channel)")
async def add_responders(
    ref: IncidentRef, desk: Desk, settings: AppSettings, body: cmd.AddResponders
) -> IncidentOut:
    return await run(desk, settings, ref, body)


@one.post("/escalate", summary="Escalate to the next tier by hand")
async def escalate(
    ref: IncidentRef,
    desk: Desk,
    settings: AppSettings,
    body: Annotated[cmd.Escalate, Body(default_factory=cmd.Escalate)],
) -> IncidentOut:
    return await run(desk, settings, ref, body)


@one.post("/resolve", summary="Resolve")
async def resolve(
    ref: IncidentRef,
    desk: Desk,
    settings: AppSettings,
    body: Annotated[cmd.Resolve, Body(default_factory=cmd.Resolve)],
) -> IncidentOut:
    return await run(desk, settings, ref, body)


@one.post("/reopen", summary="Reopen a resolved incident")
async def reopen(
    ref: IncidentRef,
    desk: Desk,
    settings: AppSettings,
    body: Annotated[cmd.Reopen, Body(default_factory=cmd.Reopen)],
) -> IncidentOut:
    return await run(desk, settings, ref, body)


@one.post("/action-items", summary="Add an action item")
async def add_action_item(
    ref: IncidentRef, desk: Desk, settings: AppSettings, body: cmd.AddActionItem
) -> IncidentOut:
    return await run(desk, settings, ref, body)


@one.post("/action-items/{item_id}/complete", summary="Mark an action item done")
async def complete_action_item(
    ref: IncidentRef,
    item_id: int,
    desk: Desk,
    settings: AppSettings,
    body: Annotated[cmd.Command, Body(default_factory=cmd.Command)],
) -> IncidentOut:
    """The body names who acts (`by`); the item is the one in the path."""
    command = cmd.CompleteActionItem(item_id=item_id, by=body.by)
    return await run(desk, settings, ref, command)


router.include_router(one)

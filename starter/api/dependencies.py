"""What routes receive from a request, read and checked before the route runs.

The application's settings and incident desk, the bearer token, the incident named in the
path, a severity the policy knows; and bodies read strictly as their schema says, with the
people named in them resolved to Slack user ids first (``PeopleRoute``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Coroutine
from contextvars import ContextVar
from enum import Enum
from typing import Annotated, Any, TypeVar

import structlog
from fastapi import (
    APIRouter,
    Depends,
    Header,
    HTTPException,
    Path,
    Query,
    Request,
    Response,
    status,
)
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError

from clients.slack_people import SlackPeople, UnknownPerson
from config import Settings
from starter.api.errors import ONE_INCIDENT, invalid
from starter.api.identity import FORBIDDEN, Caller, Reading, caller_of, lacking, needed
from starter.api.identity import same_secret as same_secret  # the alert sources' check too
from starter.command_words import resolve_fields
from starter.desk import IncidentDesk
from workflows.text import parse_incident_ref


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
    known_to_policy(desk, severity, "query")
    return severity


async def known_type(
    desk: Annotated[IncidentDesk, Depends(get_desk)],
    kind: Annotated[
        str | None, Query(alias="type", max_length=63, description="like security")
    ] = None,
) -> str | None:
    """A type the policy knows, or none: another could match nothing, so it is refused."""
    if kind is not None and kind not in desk.policy.types:
        known = ", ".join(desk.policy.types) or "none"
        raise invalid("type", f"unknown type {kind!r}; this policy knows {known}", "query")
    return kind


def known_to_policy(desk: IncidentDesk, severity: str | None, where: str = "body") -> None:
    """A severity the policy lacks is a 422 naming the field, like FastAPI's own."""
    if severity is not None:
        try:
            desk.policy.severity(severity)
        except ValueError as error:
            raise invalid("severity", str(error), where) from None


AppSettings = Annotated[Settings, Depends(get_settings)]
Desk = Annotated[IncidentDesk, Depends(get_desk)]
IncidentRef = Annotated[str, Depends(incident_ref)]
KnownSeverity = Annotated[str | None, Depends(known_severity)]
KnownType = Annotated[str | None, Depends(known_type)]


# Bearer-token auth, for every route but /healthz, the status page, /slack/events (Slack signs
# it) and /alerts (a source may prove itself with its own token or signature instead).
# auto_error=False: HTTPBearer's own error is a 403 without a challenge; the contract wants 401
# with WWW-Authenticate, raised below. The scheme still documents the auth in OpenAPI.
UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid bearer token."},
    **FORBIDDEN,
}
bearer = HTTPBearer(
    auto_error=False,
    description="A service token from INCIDENT_API_TOKENS, or a person's own (`POST /tokens`).",
)


def _challenge(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


def known_token(given: str, tokens: frozenset[str]) -> bool:
    """Compare against every token in constant time, so timing says nothing about which matched."""
    matched = False
    for token in tokens:
        matched |= same_secret(token, given)
    return matched


async def identified(request: Request, given: str | None) -> Caller | str:
    """The caller, found once per request (the people resolver asks before the route does)."""
    if given is None:
        return "missing bearer token: send Authorization: Bearer <token>"
    found: Caller | str | None = getattr(request.state, "caller", None)
    if found is None:
        found = request.state.caller = await caller_of(request, given)
    return found


async def authorized(request: Request) -> bool:
    """What ``require_token`` decides, for code that runs before the route's dependencies."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    caller = await identified(request, given.strip())
    return isinstance(caller, Caller) and caller.may(needed(request.method))


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    """The verified caller, holding the scope the method needs (reading: read; else write)."""
    caller = await identified(request, credentials.credentials if credentials else None)
    if not isinstance(caller, Caller):
        raise _challenge(caller)
    scope = needed(request.method)
    if not caller.may(scope):
        raise lacking(caller, scope)
    return caller


Verified = Annotated[Caller, Depends(require_token)]


async def reading(request: Request, caller: Verified) -> AsyncIterator[Reading]:
    """The route's reads of private incidents; an admin's, none of their members, audited."""
    shown = Reading(caller)
    yield shown
    await shown.audit(request)


Readings = Annotated[Reading, Depends(reading)]


# Bodies read as their JSON schema says, with no guessing.
#
# FastAPI validates the parsed JSON as Python data, which takes ``false`` for the number 0 and
# ``0`` for a time in 1970; the OpenAPI document promises neither. Reading the body strictly as
# JSON first refuses those with the same 422 FastAPI gives for anything else.
M = TypeVar("M", bound=BaseModel)


def integral(data: Any) -> Any:
    """``2.0`` as ``2``: JSON Schema counts it an integer, strict validation would not."""
    if isinstance(data, float) and data.is_integer():
        return int(data)
    if isinstance(data, dict):
        return {key: integral(value) for key, value in data.items()}
    if isinstance(data, list):
        return [integral(value) for value in data]
    return data


def strictly(model: type[M], data: Any) -> M:
    """The model from parsed JSON data; ``RequestValidationError`` (422) naming the fields."""
    try:
        return model.model_validate_json(json.dumps(integral(data)), strict=True)
    except ValidationError as error:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in error.errors(include_url=False)]
        ) from None


# People in request bodies: named as ids, mentions, @handles or emails, resolved to ids.
#
# A route class, so the body is turned into ids *before* FastAPI validates it into the command
# model: the OpenAPI document keeps the command models as the request bodies, and the command
# that reaches the desk already holds ids only.
def _body_model(route: APIRoute) -> type[BaseModel] | None:
    field = route.body_field
    model = field.field_info.annotation if field is not None else None
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


class PeopleRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def resolving(request: Request) -> Response:
            model = _body_model(self)
            # Without a good token (or its scope) the route answers 401 (403) whatever the body
            # says, so nobody is looked up in Slack for a request that will be refused.
            if model is None or not await authorized(request):
                return await handle(request)
            raw = await request.body()
            try:
                data = json.loads(raw) if raw else None
            except ValueError:
                data = None  # FastAPI answers malformed JSON with its own 422
            if isinstance(data, dict):
                people: SlackPeople = request.app.state.people
                try:
                    resolved = await resolve_fields(people, model, data)
                except UnknownPerson as error:
                    detail = [
                        {
                            "loc": ["body", error.field or "user"],
                            "msg": str(error),
                            "type": "value_error",
                            "input": error.given,
                        }
                    ]
                    raise HTTPException(
                        status.HTTP_422_UNPROCESSABLE_CONTENT, detail=detail
                    ) from None
                # Starlette keeps the body it read here; FastAPI validates this one.
                request._body = json.dumps(resolved).encode()
                strictly(model, resolved)
            return await handle(request)

        return resolving


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


def incident_router(tags: list[str | Enum]) -> APIRouter:
    """Routes on one incident: the same token, people by name and Idempotency-Key handling."""
    return APIRouter(
        prefix="/incidents/{incident_id}",
        tags=tags,
        dependencies=[Depends(require_token), Depends(command_key)],
        responses={**UNAUTHORIZED, **ONE_INCIDENT},
        route_class=PeopleRoute,
    )

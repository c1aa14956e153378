"""/tokens: personal API tokens, made and listed by admins, revoked by admins or their person.

A token is answered once, when made; the database keeps only its hash (``clients.tokens``).
Who the caller is and what a token may do is ``starter.api.identity``'s.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from pydantic import BaseModel, Field

from clients.tokens import (
    DEFAULT_LIFETIME,
    MAX_LIFETIME,
    PERSONAL,
    AuditKind,
    PersonalToken,
    Scope,
    TooManyTokens,
    made_event,
    ordered,
)
from starter.api.dependencies import UNAUTHORIZED, PeopleRoute, Verified
from starter.api.errors import invalid
from starter.api.identity import (
    Caller,
    audit_event,
    audit_log,
    audited,
    entry_point,
    lacking,
    token_store,
)
from starter.api.openapi import PERSON
from starter.command_words import ISO_WITH_ZONE
from starter.desk import IncidentDesk, permit
from workflows.models import UserId
from workflows.text import SLACK_USER_ID

TOKEN_ID = r"^[A-Za-z0-9_]{1,32}$"


class TokenRequest(BaseModel):
    user: UserId = Field(
        description="Whose token: U024BE7LH, @handle or email.",
        json_schema_extra={"pattern": PERSON},
    )
    scopes: list[Scope] = Field(
        default_factory=lambda: ordered(PERSONAL),
        min_length=1,
        max_length=3,
        description="read, write (includes read), admin (includes both).",
    )
    expires_in: int = Field(
        default=int(DEFAULT_LIFETIME.total_seconds()),
        gt=0,
        le=int(MAX_LIFETIME.total_seconds()),
        description="Seconds from now (at most a year).",
    )


class TokenOut(BaseModel):
    """A token as listed: never its secret."""

    id: str
    user: str
    scopes: list[Scope]
    created_by: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, token: PersonalToken) -> TokenOut:
        fields = {f: getattr(token, f) for f in cls.model_fields if f != "scopes"}
        return cls(scopes=ordered(token.scopes), **fields)


class IssuedToken(BaseModel):
    """The new token, with its secret: shown this once."""

    id: str
    token: str
    user: str
    scopes: list[Scope]
    expires_at: datetime


class TokenList(BaseModel):
    tokens: list[TokenOut]


class Current(BaseModel):
    """The caller: a service token (``user`` null) or a person's."""

    token: str = Field(description="service-1 (its place in INCIDENT_API_TOKENS) or tok_...")
    user: str | None
    scopes: list[Scope]


async def admin(caller: Verified) -> Caller:
    if not caller.may(Scope.ADMIN):
        raise lacking(caller, Scope.ADMIN)
    return caller


async def others_tokens(request: Request, caller: Caller, owner: str | None) -> None:
    """A person managing someone else's tokens (or everyone's) needs ``[permissions] tokens``
    as well as ``admin``; their own stay theirs, and a service token is the product's."""
    if caller.user is not None and owner != caller.user:
        desk: IncidentDesk = request.app.state.desk
        await permit(desk.policy, desk.people, "tokens", caller.user)


Admin = Annotated[Caller, Depends(admin)]
router = APIRouter(
    prefix="/tokens", tags=["tokens"], responses=UNAUTHORIZED, route_class=PeopleRoute
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Make a personal token for someone (admin); its secret is answered this once",
    responses={
        409: {"description": "The person holds too many live tokens already; `detail` says."},
        422: {"description": "An unknown person, scope or lifetime; `detail` says."},
    },
)
async def create_token(body: TokenRequest, request: Request, caller: Admin) -> IssuedToken:
    await others_tokens(request, caller, body.user)
    lifetime = timedelta(seconds=body.expires_in)
    store, by = token_store(request.app), caller.user or caller.name
    scopes = frozenset(body.scopes)
    try:
        made, secret = await asyncio.to_thread(store.issue, body.user, scopes, lifetime, by)
    except TooManyTokens as error:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(error)) from None
    await audited(request, [made_event(made, caller.user, caller.name, entry_point(request))])
    return IssuedToken(
        id=made.id,
        token=secret,
        user=made.user,
        scopes=ordered(made.scopes),
        expires_at=made.expires_at,
    )


@router.get("", summary="Personal tokens, newest first, without their secrets (admin)")
async def list_tokens(
    request: Request,
    caller: Admin,
    user: Annotated[
        str | None,
        Query(description="Only this person's (Slack user id).", pattern=SLACK_USER_ID.pattern),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> TokenList:
    await others_tokens(request, caller, user)
    found = await asyncio.to_thread(token_store(request.app).listed, user, limit)
    return TokenList(tokens=[TokenOut.of(token) for token in found])


@router.get("/current", summary="The caller: which token, acting as whom, with which scopes")
async def current_token(caller: Verified) -> Current:
    return Current(token=caller.name, user=caller.user, scopes=ordered(caller.scopes))


@router.delete(
    "/{token_id}",
    summary="Revoke a token at once (admin, or the token's own person); answers it revoked",
    responses={404: {"description": "No such token."}},
)
async def revoke_token(
    token_id: Annotated[str, Path(pattern=TOKEN_ID)], request: Request, caller: Verified
) -> TokenOut:
    store = token_store(request.app)
    found = await asyncio.to_thread(store.get, token_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no token {token_id}")
    if found.user != caller.user and not caller.may(Scope.ADMIN):
        raise lacking(caller, Scope.ADMIN)
    await others_tokens(request, caller, found.user)
    revoked = await asyncio.to_thread(store.revoke, token_id)
    assert revoked is not None  # tokens are revoked, never deleted
    kind, detail = AuditKind.TOKEN_REVOKED, f"{revoked.user}'s"
    await audited(request, [audit_event(request, caller, kind, token_id, detail)])
    return TokenOut.of(revoked)


# -- the audit log ------------------------------------------------------------------------------

CURSOR = r"^[1-9][0-9]{0,17}$"  # an event's id, as an answer's next_cursor gives it


class AuditEventOut(BaseModel):
    id: int
    at: datetime
    kind: AuditKind
    person: str | None = Field(description="Who acted: a Slack user id; null for a service token.")
    via: str | None = Field(description="The API token: service-1 or tok_...; null from Slack.")
    source: str = Field(description="Where it came in: api, cli or slack.")
    subject: str = Field(
        description="The token made or revoked, the private incident read, or the refused "
        "request's method and path."
    )
    detail: str = Field(description="The token's person and scopes, or the rule that refused.")


class AuditPage(BaseModel):
    events: list[AuditEventOut] = Field(description="Newest first.")
    next_cursor: str | None = Field(
        default=None, description="Pass it back as `cursor` for older events; null at the end."
    )


audit = APIRouter(prefix="/audit", tags=["tokens"], responses=UNAUTHORIZED)


@audit.get(
    "",
    summary="The audit log, newest first (admin): tokens made and revoked, refusals (403), "
    "admins reading private incidents",
)
async def list_audit(
    request: Request,
    caller: Admin,
    kind: AuditKind | None = None,
    since: Annotated[
        str | None,
        Query(pattern=ISO_WITH_ZONE, description="ISO timestamp with a zone", max_length=40),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[
        str | None, Query(pattern=CURSOR, description="From the previous page's next_cursor.")
    ] = None,
) -> AuditPage:
    """Kept in the archive database. A page holds `limit` events at most: only a null
    `next_cursor` means the end."""
    try:
        when = datetime.fromisoformat(since.replace("Z", "+00:00")) if since else None
    except ValueError:
        raise invalid("since", "not a timestamp with a zone", "query") from None
    before = int(cursor) if cursor else None
    found = await asyncio.to_thread(audit_log(request.app).listed, kind, when, before, limit)
    events = [AuditEventOut.model_validate(event, from_attributes=True) for event in found]
    more = str(found[-1].id) if len(found) == limit else None
    return AuditPage(events=events, next_cursor=more)

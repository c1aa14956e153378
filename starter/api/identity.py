"""Who is calling the API: a service token or a person's token, and what each may do.

The tokens in ``INCIDENT_API_TOKENS`` are service tokens: integrations and the CLI's first
run. They hold every scope and may act for anyone; a command one sends without ``by`` is
recorded as the token itself (``service-1``: its place in the list, which says which
integration acted without saying anything of its secret). A personal token
(``clients.tokens``) is bound to one person and acts as that person only: a command naming
someone else is refused, one naming nobody is that person's. Either way the token's name goes
on the timeline as ``via``, beside whom it acted for.

Reading needs ``read``; anything else (POST, PUT, DELETE) needs ``write``; the token routes
need ``admin``. Refusals are 403 naming the rule, so the caller knows what to ask for.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TypeVar

from fastapi import FastAPI, HTTPException, Request, status
from sqlalchemy import Engine

from clients.archive import IncidentArchive
from clients.tokens import AuditEvent, AuditKind, AuditLog, Scope, TokenStore, ordered
from config import Settings
from starter.desk import IncidentNotFound
from workflows.incident_types import members
from workflows.models import IncidentState
from workflows.resolution.metrics import IncidentRecord
from workflows.text import CLIENT_HEADER

Readable = TypeVar("Readable", bound=IncidentState | IncidentRecord)

EVERY_SCOPE = frozenset(Scope)
READING = frozenset({"GET", "HEAD", "OPTIONS"})
FORBIDDEN: dict[int | str, dict[str, str]] = {
    403: {
        "description": "The token lacks the scope this needs, or acts for someone else, or "
        "the policy's [permissions] do not let who acts do this; `detail` names the rule."
    }
}


@dataclass(frozen=True)
class Caller:
    """A verified caller: ``name`` is what the timeline records (``via``)."""

    name: str
    scopes: frozenset[Scope]
    user: str | None = None  # the person a personal token acts as; None: a service token

    def may(self, scope: Scope) -> bool:
        return scope.within(self.scopes)


def same_secret(expected: str, given: str) -> bool:
    """Constant-time, and as bytes: compare_digest refuses non-ASCII text, which anyone may send."""
    return hmac.compare_digest(expected.encode(), given.encode())


def service_caller(given: str, tokens: list[str]) -> Caller | None:
    """The service token ``given`` is, compared with every one in constant time, so timing
    says nothing about which matched."""
    matched = 0
    for place, token in enumerate(tokens, start=1):
        if same_secret(token, given):
            matched = matched or place
    return Caller(f"service-{matched}", EVERY_SCOPE) if matched else None


def archive_engine(app: FastAPI) -> Engine:
    """The archive's engine, for the token store and the audit log (opened on first use,
    shared with the archive's routes: ``app.state.archive``)."""
    archive: IncidentArchive | None = getattr(app.state, "archive", None)
    if archive is None:
        settings: Settings = app.state.settings
        archive = IncidentArchive(settings.database_url.get_secret_value())
        app.state.archive = archive
    return archive.engine


def token_store(app: FastAPI) -> TokenStore:
    return TokenStore(archive_engine(app))


def audit_log(app: FastAPI) -> AuditLog:
    return AuditLog(functools.partial(archive_engine, app))


async def caller_of(request: Request, given: str) -> Caller | str:
    """The caller a bearer token names, or why it names none (said in the 401)."""
    settings: Settings = request.app.state.settings
    service = service_caller(given, settings.api_token_list)
    if service is not None:
        return service
    found = await asyncio.to_thread(token_store(request.app).holder, given)
    if found is None:
        return "invalid bearer token (or one expired or revoked)"
    return Caller(found.id, found.scopes, found.user)


def entry_point(request: Request) -> str:
    """Where a request came in, for the timeline (``workflows.text.EntryPoint``): cli or api."""
    return "cli" if request.headers.get(CLIENT_HEADER) == "cli" else "api"


def audit_event(
    request: Request, caller: Caller, kind: AuditKind, subject: str, detail: str = ""
) -> AuditEvent:
    """What ``caller`` did or tried in this request, for the audit log."""
    return AuditEvent(kind, caller.user, caller.name, entry_point(request), subject, detail)


async def audited(request: Request, events: list[AuditEvent]) -> None:
    """Kept in the audit log (``GET /audit``); never fails the request it records."""
    if events:
        await asyncio.to_thread(audit_log(request.app).record, events)


def needed(method: str) -> Scope:
    return Scope.READ if method in READING else Scope.WRITE


def forbidden(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_403_FORBIDDEN, detail=detail)


def lacking(caller: Caller, scope: Scope) -> HTTPException:
    held = ", ".join(ordered(caller.scopes))
    return forbidden(f"this needs the {scope.value} scope; this token has {held}")


def acting_for(caller: Caller, named: str | None) -> str | None:
    """Who a command acts for: whom it names, or the caller's person when it names nobody.

    A personal token acts as its person only; a service token may name anyone, or nobody (the
    command is then the token's own, recorded as ``via``)."""
    if caller.user is None or named is None:
        return named or caller.user
    if named != caller.user:
        raise forbidden(
            f"a personal token acts as its person only: this token is {caller.user}'s, "
            f"and the body names {named} (leave out `by`, or use a service token)"
        )
    return named


def sees(caller: Caller, private: bool, members: Collection[str]) -> bool:
    """Whether ``caller`` may read an incident: a private one only its members and admins
    (service tokens are admins); to anyone else it does not exist (404, not 403)."""
    return not private or caller.may(Scope.ADMIN) or caller.user in members


@dataclass
class Reading:
    """What one request shows its caller of private incidents. ``admits`` decides each, as
    ``sees`` does; those an admin sees without being one of their members are noted, for the
    audit log (``dependencies.reading`` records them once the route has answered)."""

    caller: Caller
    by_admin: list[str] = field(default_factory=list)

    def admits(self, incident: IncidentState | IncidentRecord) -> bool:
        if isinstance(incident, IncidentState):
            people = members(incident)
        else:
            people = {p for p in [incident.commander, *incident.people] if p}
        shown = sees(self.caller, incident.private, people)
        if shown and incident.private and self.caller.user not in people:
            self.by_admin.append(incident.id)
        return shown

    def shown(self, incident: Readable, ref: str) -> Readable:
        """The incident, if this caller may read it; else 404, as if it did not exist."""
        if not self.admits(incident):
            raise IncidentNotFound(f"no incident {ref}")
        return incident

    async def audit(self, request: Request) -> None:
        subject = f"{request.method} {request.url.path}"
        kind = AuditKind.PRIVATE_READ
        events = [audit_event(request, self.caller, kind, i, subject) for i in self.by_admin]
        await audited(request, events)

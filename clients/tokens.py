"""Personal API tokens: each bound to one person, with scopes, an expiry and a revocation;
and the audit log of who made and revoked them, was refused, or read a private incident.

Synchronous SQLAlchemy on the incident archive's engine, in the archive's migration chain
(``api_tokens``, ``audit_events``), like the status page's store; the API calls it in a thread.

A token is ``inc_`` and 32 random bytes (256 bits, URL-safe base64). Only its SHA-256 is
stored. A password needs a slow hash (bcrypt, argon2) because people choose guessable ones and
a stolen table could be tried word by word; a token is random, so no guess is better than
another and 2^256 tries are out of reach however fast each is. A fast hash also lets every
request find its token with one indexed lookup, where a salted slow hash would need the id in
the token and a deliberately slow check on every call. The prefix lets secret scanners and the
API tell a personal token at a glance (the API skips the database for anything else).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import structlog
from sqlalchemy import JSON, DateTime, Engine, Integer, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from clients.archive import Base

log = structlog.get_logger()


class ApiTokenRow(Base):
    """A personal API token: only the SHA-256 of its secret is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    person: Mapped[str] = mapped_column(String(32), index=True)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


PREFIX = "inc_"
# Longer than any token this store makes: a longer one is refused before it is hashed.
MAX_TOKEN = 100


class Scope(StrEnum):
    """Each includes the ones before it: ``write`` reads, ``admin`` writes."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"

    def within(self, held: frozenset[Scope]) -> bool:
        """Whether a holder of ``held`` may do what needs this scope."""
        order = list(Scope)
        return any(order.index(scope) >= order.index(self) for scope in held)


def ordered(scopes: frozenset[Scope]) -> list[Scope]:
    """As people read them: read, write, admin."""
    return [scope for scope in Scope if scope in scopes]


# What a person's own token holds unless an admin says otherwise (`/incident token`).
PERSONAL = frozenset({Scope.READ, Scope.WRITE})
DEFAULT_LIFETIME = timedelta(days=30)
MAX_LIFETIME = timedelta(days=366)  # a token outliving a year is one nobody remembers making
# Live tokens one person may hold: a laptop or two, scripts; more is tokens nobody tracks, and
# bounds the table whoever asks (`/incident token` needs no admin).
MAX_LIVE = 25


class TooManyTokens(ValueError):
    """The person holds MAX_LIVE live tokens already; the message says what to do."""


@dataclass(frozen=True)
class PersonalToken:
    """What is known of a token, never its secret."""

    id: str
    user: str
    scopes: frozenset[Scope]
    created_by: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None

    def live(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)  # SQLite keeps no zone; we wrote UTC


def _token(row: ApiTokenRow) -> PersonalToken:
    return PersonalToken(
        id=row.id,
        user=row.person,
        scopes=frozenset(Scope(s) for s in row.scopes),
        created_by=row.created_by,
        created_at=_aware(row.created_at),
        expires_at=_aware(row.expires_at),
        revoked_at=_aware(row.revoked_at) if row.revoked_at else None,
    )


class TokenStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def issue(
        self, user: str, scopes: frozenset[Scope], lifetime: timedelta, created_by: str
    ) -> tuple[PersonalToken, str]:
        """A new token and its secret: the secret is answered once and kept nowhere;
        ``TooManyTokens`` when the person holds ``MAX_LIVE`` live ones already."""
        secret = PREFIX + secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        live = select(func.count()).where(
            ApiTokenRow.person == user,
            ApiTokenRow.revoked_at.is_(None),
            ApiTokenRow.expires_at > now,
        )
        row = ApiTokenRow(
            id="tok_" + secrets.token_hex(8),
            digest=digest(secret),
            person=user,
            scopes=[scope.value for scope in ordered(scopes)],
            created_by=created_by,
            created_at=now,
            expires_at=now + lifetime,
            revoked_at=None,
        )
        with Session(self.engine) as session, session.begin():
            if (session.scalar(live) or 0) >= MAX_LIVE:
                raise TooManyTokens(
                    f"{user} holds {MAX_LIVE} live tokens already: revoke one first "
                    "(`incident logout`, or DELETE /tokens/{id})"
                )
            session.add(row)
            issued = _token(row)
        log.info("api_token_issued", token_id=issued.id, user=user, by=created_by)
        return issued, secret

    def holder(self, secret: str) -> PersonalToken | None:
        """The live token with this secret; None if there is none, or it expired or was revoked.

        Read from the database on every request, with no cache: a revocation holds from the
        next request on, in every API process."""
        if not secret.startswith(PREFIX) or len(secret) > MAX_TOKEN:
            return None
        query = select(ApiTokenRow).where(ApiTokenRow.digest == digest(secret))
        with Session(self.engine) as session:
            row = session.scalars(query).one_or_none()
            found = _token(row) if row is not None else None
        return found if found is not None and found.live(datetime.now(UTC)) else None

    def get(self, token_id: str) -> PersonalToken | None:
        with Session(self.engine) as session:
            row = session.get(ApiTokenRow, token_id)
            return _token(row) if row is not None else None

    def listed(self, user: str | None = None, limit: int = 100) -> list[PersonalToken]:
        """Newest first, expired and revoked ones included (they say so)."""
        query = select(ApiTokenRow).order_by(ApiTokenRow.created_at.desc()).limit(limit)
        if user:
            query = query.where(ApiTokenRow.person == user)
        with Session(self.engine) as session:
            return [_token(row) for row in session.scalars(query)]

    def revoke(self, token_id: str) -> PersonalToken | None:
        """Revoked from now on (revoking twice keeps the first time); None for no such token."""
        with Session(self.engine) as session, session.begin():
            row = session.get(ApiTokenRow, token_id)
            if row is None:
                return None
            row.revoked_at = row.revoked_at or datetime.now(UTC)
            revoked = _token(row)
        log.info("api_token_revoked", token_id=token_id)
        return revoked


class AuditKind(StrEnum):
    TOKEN_CREATED = "token_created"
    TOKEN_REVOKED = "token_revoked"
    REFUSED = "refused"  # a 403: a scope lacking, someone else's `by`, the policy's permissions
    PRIVATE_READ = "private_read"  # an admin, none of its members, read a private incident


class AuditRow(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    person: Mapped[str | None] = mapped_column(String(32))
    via: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(200))
    detail: Mapped[str] = mapped_column(String(500))


@dataclass(frozen=True)
class AuditEvent:
    """Who did or tried what (``kind``) to what (``subject``: a token id, an incident id, a
    method and path): the person (none for a service token), the API token it came through
    (``via``: none from Slack) and where it came in (``source``: api, cli, slack), as the
    timeline names them."""

    kind: AuditKind
    person: str | None
    via: str | None
    source: str
    subject: str
    detail: str = ""
    at: datetime | None = None  # when it was recorded
    id: int = 0


def made_event(
    token: PersonalToken, person: str | None, via: str | None, source: str
) -> AuditEvent:
    """A token made, for the audit log: whose, with what scopes, until when."""
    detail = (
        f"for {token.user}: {', '.join(ordered(token.scopes))}, until {token.expires_at:%Y-%m-%d}"
    )
    return AuditEvent(AuditKind.TOKEN_CREATED, person, via, source, token.id, detail)


class AuditLog:
    """Written as things happen, read by admins (``GET /audit``), newest first. ``engine``
    opens the archive's engine when needed, so that an archive that cannot even be opened
    fails no write either."""

    def __init__(self, engine: Callable[[], Engine]) -> None:
        self.engine = engine

    def record(self, events: list[AuditEvent]) -> None:
        """Kept, each cut to its columns' size. Never raises: what it records has happened (or
        been refused) already, and a database failing here must not fail that."""
        now = datetime.now(UTC)
        rows = [
            AuditRow(
                at=now,
                kind=event.kind.value,
                person=event.person[:32] if event.person else None,
                via=event.via[:64] if event.via else None,
                source=event.source[:64],
                subject=event.subject[:200],
                detail=event.detail[:500],
            )
            for event in events
        ]
        try:
            with Session(self.engine()) as session, session.begin():
                session.add_all(rows)
        except Exception as error:  # whatever opening or writing raised: logged, and on we go
            kinds = sorted({event.kind.value for event in events})
            log.warning("audit_not_recorded", kinds=kinds, error=type(error).__name__)

    def listed(
        self,
        kind: AuditKind | None = None,
        since: datetime | None = None,
        before: int | None = None,
        limit: int = 100,
    ) -> list[AuditEvent]:
        """Newest first; ``before`` an event's id, to go on from there (the cursor)."""
        query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
        if kind is not None:
            query = query.where(AuditRow.kind == kind.value)
        if since is not None:
            query = query.where(AuditRow.at >= since.astimezone(UTC))  # as written: UTC
        if before is not None:
            query = query.where(AuditRow.id < before)
        with Session(self.engine()) as session:
            return [_event(row) for row in session.scalars(query)]


def _event(row: AuditRow) -> AuditEvent:
    fields = ("person", "via", "source", "subject", "detail", "id")
    return AuditEvent(
        kind=AuditKind(row.kind), at=_aware(row.at), **{f: getattr(row, f) for f in fields}
    )

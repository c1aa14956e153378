"""The status page's database: public incidents, maintenance, subscribers, deliveries.

Synchronous SQLAlchemy on the incident archive's engine (the API and the activities call it
in a thread); `incident db upgrade` creates the tables, in the archive's migration chain.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import Engine, delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clients.archive import (
    ComponentRow,
    DeliveryRow,
    PublicIncidentRow,
    SubscriberRow,
)
from workflows.models import Status
from workflows.statuspage import PublicIncident

# A confirmation link older than this may be sent again; before, the address waits.
CONFIRMATION_PENDING = timedelta(hours=24)
# Subscribing needs no account, so unconfirmed addresses are capped as a whole, too.
MAX_PENDING = 1000


class Subscribed(StrEnum):
    NEW = "new"  # a confirmation link is to be sent
    PENDING = "pending"  # one was sent recently: nothing more until it expires
    CONFIRMED = "confirmed"  # subscribed already
    FULL = "full"  # too many unconfirmed addresses


@dataclass(frozen=True)
class Subscriber:
    id: int
    kind: str
    address: str
    components: list[str]
    token: str
    confirmed_at: datetime | None


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)  # SQLite keeps no zone; we wrote UTC


def _subscriber(row: SubscriberRow) -> Subscriber:
    confirmed = _aware(row.confirmed_at) if row.confirmed_at else None
    return Subscriber(row.id, row.kind, row.address, list(row.components), row.token, confirmed)


class StatusPageStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def publish(self, incident: PublicIncident) -> None:
        row = PublicIncidentRow(
            id=incident.id,
            status=incident.status.value,
            declared_at=incident.declared_at.astimezone(UTC),
            incident=incident.model_dump(mode="json"),
            updated_at=datetime.now(UTC),
        )
        with Session(self.engine) as session, session.begin():
            session.merge(row)

    def incidents(self, since: datetime) -> list[PublicIncident]:
        """Every open public incident, and the resolved ones declared since ``since``."""
        query = select(PublicIncidentRow.incident).where(
            or_(
                PublicIncidentRow.status != Status.RESOLVED.value,
                PublicIncidentRow.declared_at >= since.astimezone(UTC),
            )
        )
        with Session(self.engine) as session:
            return [PublicIncident.model_validate(i) for i in session.scalars(query)]

    def maintenance(self) -> set[str]:
        query = select(ComponentRow.name).where(ComponentRow.maintenance.is_(True))
        with Session(self.engine) as session:
            return set(session.scalars(query))

    def set_maintenance(self, name: str, maintenance: bool) -> None:
        row = ComponentRow(name=name, maintenance=maintenance, updated_at=datetime.now(UTC))
        try:
            with Session(self.engine) as session, session.begin():
                session.merge(row)
        except IntegrityError:  # a concurrent first write of the name inserted it: update it
            with Session(self.engine) as session, session.begin():
                session.merge(row)

    def subscribe(self, kind: str, address: str, components: list[str]) -> tuple[Subscribed, str]:
        """The outcome and the token to put in the confirmation link (for NEW only)."""
        now = datetime.now(UTC)
        with Session(self.engine) as session, session.begin():
            # Expired confirmations go: their links stop working and they stop counting.
            session.execute(
                delete(SubscriberRow).where(
                    SubscriberRow.confirmed_at.is_(None),
                    SubscriberRow.created_at <= now - CONFIRMATION_PENDING,
                )
            )
            row = session.scalars(
                select(SubscriberRow).where(SubscriberRow.address == address)
            ).one_or_none()
            if row is not None and row.confirmed_at is not None:
                return Subscribed.CONFIRMED, ""
            if row is not None:
                return Subscribed.PENDING, ""
            pending = session.scalar(
                select(func.count()).where(SubscriberRow.confirmed_at.is_(None))
            )
            if (pending or 0) >= MAX_PENDING:
                return Subscribed.FULL, ""
            token = secrets.token_urlsafe(32)
            row = SubscriberRow(kind=kind, address=address, components=components, token=token)
            row.created_at, row.confirmed_at = now, None
            session.add(row)
        return Subscribed.NEW, token

    def forget_pending(self, token: str) -> None:
        """The confirmation could not be sent: the address may try again at once."""
        with Session(self.engine) as session, session.begin():
            session.execute(
                delete(SubscriberRow).where(
                    SubscriberRow.token == token, SubscriberRow.confirmed_at.is_(None)
                )
            )

    def confirm(self, token: str) -> Subscriber | None:
        with Session(self.engine) as session, session.begin():
            row = session.scalars(
                select(SubscriberRow).where(SubscriberRow.token == token)
            ).one_or_none()
            now = datetime.now(UTC)
            if row is None or (
                row.confirmed_at is None and _aware(row.created_at) <= now - CONFIRMATION_PENDING
            ):
                return None
            row.confirmed_at = row.confirmed_at or now
            return _subscriber(row)

    def unsubscribe(self, token: str) -> bool:
        with Session(self.engine) as session, session.begin():
            row = session.scalars(
                select(SubscriberRow).where(SubscriberRow.token == token)
            ).one_or_none()
            if row is None:
                return False
            session.execute(delete(DeliveryRow).where(DeliveryRow.subscriber_id == row.id))
            session.delete(row)
            return True

    def confirmed(self) -> list[Subscriber]:
        query = select(SubscriberRow).where(SubscriberRow.confirmed_at.is_not(None))
        with Session(self.engine) as session:
            return [_subscriber(r) for r in session.scalars(query)]

    def delivered(self, incident_id: str) -> set[tuple[int, str]]:
        """(subscriber, update key) pairs already delivered for this incident."""
        query = select(DeliveryRow.subscriber_id, DeliveryRow.update_key).where(
            DeliveryRow.update_key.startswith(f"{incident_id}/")
        )
        with Session(self.engine) as session:
            return {(s, k) for s, k in session.execute(query)}

    def record_delivery(self, subscriber_id: int, update_key: str) -> None:
        row = DeliveryRow(
            subscriber_id=subscriber_id, update_key=update_key, delivered_at=datetime.now(UTC)
        )
        try:
            with Session(self.engine) as session, session.begin():
                session.add(row)
        except IntegrityError:
            pass  # recorded by an earlier attempt: the unique pair is the point

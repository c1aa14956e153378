"""The incident database's tables, for SQLAlchemy: the archive's incidents and the status
page's. One database, one migration chain (``clients/migrations``, ``incident db upgrade``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class IncidentRow(Base):
    __tablename__ = "incidents"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, index=True)
    title: Mapped[str] = mapped_column(String(200))
    severity: Mapped[str] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(32), index=True)
    impact: Mapped[str] = mapped_column(String(16))
    commander: Mapped[str | None] = mapped_column(String(32), nullable=True)
    declared_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    time_to_acknowledge: Mapped[float | None] = mapped_column(Float)
    time_to_resolve: Mapped[float | None] = mapped_column(Float)
    escalations: Mapped[int] = mapped_column(Integer, default=0)
    missed_updates: Mapped[int] = mapped_column(Integer, default=0)
    open_action_items: Mapped[int] = mapped_column(Integer, default=0)
    record: Mapped[dict[str, Any]] = mapped_column(JSON)  # the whole IncidentRecord
    report: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    drill: Mapped[bool] = mapped_column(Boolean, default=False)


# The status page's tables.


class PublicIncidentRow(Base):
    __tablename__ = "public_incidents"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(32), index=True)
    declared_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    incident: Mapped[dict[str, Any]] = mapped_column(JSON)  # the PublicIncident, updates and all
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ComponentRow(Base):
    __tablename__ = "status_components"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    maintenance: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SubscriberRow(Base):
    __tablename__ = "status_subscribers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # email | webhook
    address: Mapped[str] = mapped_column(String(2000), unique=True)
    components: Mapped[list[str]] = mapped_column(JSON)  # empty: every component
    token: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DeliveryRow(Base):
    """One public update delivered to one subscriber: a retried activity skips it."""

    __tablename__ = "status_deliveries"
    __table_args__ = (UniqueConstraint("subscriber_id", "update_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subscriber_id: Mapped[int] = mapped_column(Integer, index=True)
    update_key: Mapped[str] = mapped_column(String(100))  # incident id / update number
    delivered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

"""The status page's tables, next to the incident archive's (one database, one migration chain)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clients.archive_schema import Base


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

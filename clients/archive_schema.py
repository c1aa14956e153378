"""The incident archive's one table, for SQLAlchemy; Alembic migrations create and change it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, Integer, String, Text
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

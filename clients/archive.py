"""The incident archive: one row per incident in a SQL database, kept past Temporal's retention.

SQLAlchemy (synchronous, run in a thread so the worker's event loop stays free) over SQLite
by default (a file under ``.data/``) or PostgreSQL (``INCIDENT_DATABASE_URL``). The schema,
the status page's tables included, is Alembic's (``clients/migrations``): one command,
``incident db upgrade``, applies it; the worker and the API only check it is current.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Engine,
    Float,
    Integer,
    String,
    Text,
    UniqueConstraint,
    column,
    create_engine,
    event,
    func,
    insert,
    literal_column,
    select,
    table,
)
from sqlalchemy import text as sql
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from workflows.models import IncidentState
from workflows.requests import Recurrences
from workflows.resolution.metrics import IncidentMetrics, IncidentRecord, aggregate, record_of


# The incident database's tables, for SQLAlchemy: the archive's incidents and the status
# page's. One database, one migration chain (``clients/migrations``, ``incident db upgrade``).
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
    private: Mapped[bool] = mapped_column(Boolean, default=False)


# SQLite's full-text index of the incidents (migration 0004): rowid is the incident's number.
WORDS = table("incident_words", column("rowid", Integer), column("title"), column("components"))
CLOSEST = 3  # similar incidents on a kickoff
MAX_WORDS = 64  # of a title and its components, searched for


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


log = structlog.get_logger()
MIGRATIONS = Path(__file__).parent / "migrations"
UPGRADE_COMMAND = "incident db upgrade"


class SchemaBehind(Exception):
    """The database is not at the newest migration: the code would read tables it lacks."""


def _utc(at: datetime | None) -> datetime | None:
    return at.astimezone(UTC) if at else None


def _like(text: str) -> str:
    """People's search text, with LIKE's wildcards taken literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class IncidentArchive:
    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(url, pool_pre_ping=True)
        if parsed.get_backend_name() == "sqlite":
            event.listen(self.engine, "connect", _write_ahead)

    def upgrade(self) -> str:
        """Bring the schema to the newest migration (idempotent); the revision it is at."""
        config = _alembic()
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        return _head()

    def revision(self) -> str | None:
        """The migration the database is at; None for one never migrated."""
        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def check_current(self) -> None:
        """Raise SchemaBehind, naming the command that fixes it, unless the schema is current."""
        at, head = self.revision(), _head()
        if at != head:
            raise SchemaBehind(
                f"the incident database {self.engine.url.render_as_string()} is at revision "
                f"{at or 'none'}, this build needs {head}: run `{UPGRADE_COMMAND}`"
            )

    async def record(self, state: IncidentState) -> None:
        """Upsert the incident as it stands: the same state twice leaves one identical row."""
        await asyncio.to_thread(self.upsert, record_of(state, datetime.now(UTC)))
        log.info("incident_recorded", incident_id=state.id, status=state.status.value)

    def upsert(self, record: IncidentRecord) -> None:
        row = IncidentRow(
            id=record.id,
            number=record.number,
            title=record.title,
            severity=record.severity,
            status=record.status.value,
            impact=record.impact,
            commander=record.commander,
            declared_at=_utc(record.declared_at),
            acknowledged_at=_utc(record.acknowledged_at),
            resolved_at=_utc(record.resolved_at),
            archived_at=_utc(record.archived_at),
            time_to_acknowledge=record.time_to_acknowledge,
            time_to_resolve=record.time_to_resolve,
            escalations=record.escalations,
            missed_updates=record.missed_updates,
            open_action_items=record.open_action_items,
            record=record.model_dump(mode="json"),
            report=record.report,
            updated_at=datetime.now(UTC),
            drill=record.drill,
            private=record.private,
        )
        with Session(self.engine) as session, session.begin():
            session.merge(row)
            if self.engine.dialect.name == "sqlite":
                words = {"title": record.title, "components": " ".join(record.components)}
                replace = insert(WORDS).prefix_with("OR REPLACE")  # FTS5 replaces by rowid
                session.execute(replace.values(rowid=record.number, **words))

    def records(self, severity: str | None = None) -> list[IncidentRecord]:
        query = select(IncidentRow.record).order_by(IncidentRow.number)
        if severity:
            query = query.where(IncidentRow.severity == severity)
        with Session(self.engine) as session:
            return [IncidentRecord.model_validate(r) for r in session.scalars(query)]

    def search(
        self,
        text: str | None = None,
        severity: str | None = None,
        status: str | None = None,
        limit: int = 100,
    ) -> list[IncidentRecord]:
        """Newest first; ``text`` matches the title (case-insensitive)."""
        query = select(IncidentRow.record).order_by(IncidentRow.number.desc()).limit(limit)
        if text:
            query = query.where(IncidentRow.title.ilike(f"%{_like(text)}%", escape="\\"))
        if severity:
            query = query.where(IncidentRow.severity == severity)
        if status:
            query = query.where(IncidentRow.status == status)
        with Session(self.engine) as session:
            records = [IncidentRecord.model_validate(r) for r in session.scalars(query)]
        return [r.model_copy(update={"report": None}) for r in records]

    def get(self, incident_id: str) -> IncidentRecord | None:
        with Session(self.engine) as session:
            row = session.get(IncidentRow, incident_id)
            return IncidentRecord.model_validate(row.record) if row else None

    def metrics(self, since: datetime | None, severity: str | None) -> IncidentMetrics:
        return aggregate(self.records(severity), since=since, severity=severity)

    def similar(
        self, incident_id: str, title: str, components: list[str], before: datetime
    ) -> Recurrences:
        """Incidents declared before ``before`` that share any word of the title or components,
        best ranked first (the engine's stemming and stop words); never the incident itself, a
        private incident or a drill."""
        words = list(dict.fromkeys(re.findall(r"[^\W_]+", f"{title} {' '.join(components)}")))
        if not words:
            return Recurrences()
        query = select(IncidentRow.record).where(
            IncidentRow.id != incident_id,
            IncidentRow.private.is_(False),
            IncidentRow.drill.is_(False),
            IncidentRow.declared_at < before.astimezone(UTC),  # as stored: SQLite keeps no zone
        )
        if self.engine.dialect.name == "postgresql":
            found = func.to_tsquery("english", " | ".join(words[:MAX_WORDS]).lower())
            vector = literal_column("incidents.words", Text())  # generated: migration 0004
            query = query.where(vector.op("@@")(found)).order_by(func.ts_rank(vector, found).desc())
        else:
            match = " OR ".join(f'"{word}"' for word in words[:MAX_WORDS])
            query = query.join(WORDS, WORDS.c.rowid == IncidentRow.number)
            query = query.where(sql("incident_words MATCH :match").bindparams(match=match))
            query = query.order_by(sql("bm25(incident_words, 2.0, 1.0)"))
        query = query.order_by(IncidentRow.declared_at.desc())
        counted = select(func.count()).select_from(query.order_by(None).subquery())
        with Session(self.engine) as session:
            closest = session.scalars(query.limit(CLOSEST)).all()
            total = session.scalar(counted) or 0
        records = [IncidentRecord.model_validate(r) for r in closest]
        return Recurrences(closest=[r.similar() for r in records], total=total)


def _write_ahead(connection: Any, _: object) -> None:
    """SQLite's write-ahead log: searches for similar incidents and records never wait on each
    other (the opening does both at once, and so do other incidents)."""
    connection.execute("PRAGMA journal_mode=WAL")


def _alembic() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _head() -> str:
    head = ScriptDirectory.from_config(_alembic()).get_current_head()
    assert head is not None  # the package ships its migrations
    return head

"""The incident archive: one row per incident in a SQL database, kept past Temporal's retention.

SQLAlchemy (synchronous, run in a thread so the worker's event loop stays free) over SQLite
by default (a file under ``.data/``) or PostgreSQL (``INCIDENT_DATABASE_URL``). The schema is
Alembic's: the worker applies the migrations shipped in ``activities/migrations`` at start.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import structlog
from alembic import command
from alembic.config import Config
from pydantic import BaseModel
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from temporalio import activity

from activities.archive_schema import IncidentRow
from activities.mrkdwn import escape
from activities.slack_client import permanent_errors
from workflows.metrics import IncidentMetrics, IncidentRecord, aggregate, digest, record_of
from workflows.models import IncidentState

log = structlog.get_logger()
MIGRATIONS = Path(__file__).parent / "migrations"


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

    def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent)."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

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
        )
        with Session(self.engine) as session, session.begin():
            session.merge(row)

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


class MetricsQuery(BaseModel):
    since: datetime | None = None
    severity: str | None = None


class ArchiveActivities:
    def __init__(
        self, archive: IncidentArchive, client: AsyncWebClient, broadcast_channel: str
    ) -> None:
        self.archive = archive
        self.client = client
        self.broadcast_channel = broadcast_channel

    @activity.defn(name="archive_record_incident")
    async def record_incident(self, state: IncidentState) -> None:
        await self.archive.record(state)

    @activity.defn(name="archive_incident_metrics")
    async def incident_metrics(self, query: MetricsQuery) -> IncidentMetrics:
        return await asyncio.to_thread(self.archive.metrics, query.since, query.severity)

    @activity.defn(name="archive_post_digest")
    async def post_digest(self, metrics: IncidentMetrics) -> None:
        """Once per digest run: a retry finds the message by the run's id in its metadata."""
        channel = self.broadcast_channel.lstrip("#")
        key = activity.info().workflow_id or "digest"
        if activity.info().attempt > 1 and await self._digest_posted(channel, key):
            return
        async with permanent_errors("chat.postMessage"):
            await self.client.chat_postMessage(
                channel=channel,
                text=":bar_chart: *Incident digest*\n" + digest(metrics, escape),
                unfurl_links=False,
                metadata={"event_type": "incident_digest", "event_payload": {"key": key}},
            )

    async def _digest_posted(self, channel: str, key: str) -> bool:
        async with permanent_errors("conversations.list"):
            async for page in await self.client.conversations_list(limit=1000):
                channel = next(
                    (c["id"] for c in page["channels"] if channel in (c["name"], c["id"])), channel
                )
        async with permanent_errors("conversations.history"):
            response = await self.client.conversations_history(
                channel=channel, limit=50, include_all_metadata=True
            )
        return any(
            m.get("metadata", {}).get("event_payload", {}).get("key") == key
            for m in response["messages"]
        )

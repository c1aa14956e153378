"""The incident archive's activities, over ``clients.archive`` and ``clients.slack``."""

from __future__ import annotations

import asyncio
from datetime import datetime

from pydantic import BaseModel
from temporalio import activity

from activities import non_retryable
from clients.archive import IncidentArchive
from clients.slack import Slack
from workflows.models import IncidentState
from workflows.resolution.metrics import IncidentMetrics


class MetricsQuery(BaseModel):
    since: datetime | None = None
    severity: str | None = None


class ArchiveActivities:
    def __init__(self, archive: IncidentArchive, slack: Slack) -> None:
        self.archive = archive
        self.slack = slack

    @activity.defn(name="archive_record_incident")
    async def record_incident(self, state: IncidentState) -> None:
        await self.archive.record(state)

    @activity.defn(name="archive_incident_metrics")
    async def incident_metrics(self, query: MetricsQuery) -> IncidentMetrics:
        return await asyncio.to_thread(self.archive.metrics, query.since, query.severity)

    @activity.defn(name="archive_post_digest")
    async def post_digest(self, metrics: IncidentMetrics) -> None:
        """Once per digest run: a retry finds the message by the run's id in its metadata."""
        key = activity.info().workflow_id or "digest"
        with non_retryable():
            await self.slack.posts.post_digest(metrics, key, activity.info().attempt > 1)

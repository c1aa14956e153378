"""The incident digest: a small workflow a Temporal Schedule starts (weekly by default).

It reads the archive's figures for the period since the previous digest and posts them in
the broadcast channel. The schedule, not cron, keeps the cadence (see worker.py).
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.services import ArchiveActivities, MetricsQuery
    from workflows.resolution.metrics import IncidentMetrics

DIGEST_SCHEDULE_ID = "incident-digest"
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))


class DigestInput(BaseModel):
    period_seconds: float


@workflow.defn
class IncidentDigest:
    @workflow.run
    async def run(self, input: DigestInput) -> IncidentMetrics:
        since = workflow.now() - timedelta(seconds=input.period_seconds)
        metrics = await workflow.execute_activity_method(
            ArchiveActivities.incident_metrics,
            MetricsQuery(since=since),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RETRY,
        )
        await workflow.execute_activity_method(
            ArchiveActivities.post_digest,
            metrics,
            start_to_close_timeout=timedelta(seconds=30),
            schedule_to_close_timeout=timedelta(minutes=10),
            retry_policy=RETRY,
        )
        return metrics

"""The status page as Temporal activities, over ``clients.statuspage``.

Deliveries that failed make the attempt fail, so Temporal retries it (and the publisher sends
only what is still missing); refused webhooks too, but for good once nothing retryable is
left, so the refusal goes on the incident's timeline instead of being tried again and again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from clients.archive import IncidentArchive
from clients.mail import Mailer, smtp_server
from clients.statuspage import StatusPagePublisher
from clients.statuspage_store import StatusPageStore
from clients.statuspage_webhooks import status_webhooks
from config import Settings
from workflows.statuspage import PublicIncident


class StatusPageActivities:
    def __init__(self, publisher: StatusPagePublisher) -> None:
        self.publisher = publisher

    @activity.defn(name="status_page_publish")
    async def publish(self, incident: PublicIncident) -> int:
        """The number of public updates now on the page."""
        return await self.publisher.publish(incident)

    @activity.defn(name="status_page_notify_subscribers")
    async def notify_subscribers(self, incident: PublicIncident) -> int:
        """Deliveries made by this attempt."""
        outcome = await self.publisher.notify(incident)
        if outcome.failed:
            problems = [*outcome.failed, *outcome.refused.values()]
            raise ApplicationError(f"{len(problems)} deliveries failed: {', '.join(problems[:5])}")
        if outcome.refused:
            raise ApplicationError(
                f"refused {'; '.join(list(outcome.refused.values())[:5])}",
                type="WebhookRefused",
                non_retryable=True,
            )
        return outcome.sent


def status_page_activities(
    settings: Settings, archive: IncidentArchive
) -> list[Callable[..., Any]]:
    """The status page's tables live in the archive's database."""
    publisher = StatusPagePublisher(
        StatusPageStore(archive.engine),
        Mailer(smtp_server(settings)),
        status_webhooks(settings),
        settings.public_url,
    )
    status = StatusPageActivities(publisher)
    return [status.publish, status.notify_subscribers]

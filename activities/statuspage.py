"""Publishing public incidents: the status page's database and its subscribers.

``publish`` upserts the incident (the same incident twice leaves one row). ``notify_subscribers``
sends each public update once to each confirmed subscriber whose components it touches:
every delivery is recorded, so a retried attempt (a webhook that failed, a lost answer) only
sends what is still missing. Webhooks carry an ``Idempotency-Key`` per update for the rest.
"""

from __future__ import annotations

import asyncio

import httpx
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.mail import MailActivities
from activities.statuspage_store import StatusPageStore, Subscriber
from workflows.documents import Email
from workflows.statuspage import PublicIncident

log = structlog.get_logger()
WEBHOOK_TIMEOUT = 10.0


def status_url(public_url: str) -> str:
    return f"{public_url.rstrip('/')}/status"


def update_email(
    incident: PublicIncident, index: int, subscriber: Subscriber, public_url: str
) -> Email:
    update = incident.updates[index]
    page = status_url(public_url)
    body = "\n".join(
        [
            f"{incident.title}: {update.status.value}",
            "",
            update.message,
            "",
            f"{update.at:%Y-%m-%d %H:%M} UTC · {page}#{incident.id}",
            "",
            f"Unsubscribe: {page}/subscribers/unsubscribe?token={subscriber.token}",
        ]
    )
    return Email(
        key=f"status-{incident.id}-{index}-{subscriber.id}",
        to=[subscriber.address],
        subject=f"[{update.status.value}] {incident.title}",
        body=body,
    )


def update_payload(incident: PublicIncident, index: int) -> dict[str, object]:
    return {
        "type": "public_update",
        "incident": incident.model_dump(mode="json", exclude={"updates"}),
        "update": incident.updates[index].model_dump(mode="json"),
        "update_number": index + 1,
    }


class StatusPageActivities:
    def __init__(
        self,
        store: StatusPageStore,
        mail: MailActivities,
        http: httpx.AsyncClient,
        public_url: str,
    ) -> None:
        self.store = store
        self.mail = mail
        self.http = http
        self.public_url = public_url

    @activity.defn(name="status_page_publish")
    async def publish(self, incident: PublicIncident) -> int:
        """The number of public updates now on the page."""
        await asyncio.to_thread(self.store.publish, incident)
        log.info("public_incident_published", incident_id=incident.id, status=incident.status)
        return len(incident.updates)

    @activity.defn(name="status_page_notify_subscribers")
    async def notify_subscribers(self, incident: PublicIncident) -> int:
        """Deliveries made by this attempt; failed ones make the attempt fail (and retry)."""
        subscribers = await asyncio.to_thread(self.store.confirmed)
        done = await asyncio.to_thread(self.store.delivered, incident.id)
        sent, failed = 0, []
        for index, update in enumerate(incident.updates):
            key = f"{incident.id}/{index + 1}"
            for subscriber in subscribers:
                wanted = not subscriber.components or set(subscriber.components) & set(
                    incident.components
                )
                confirmed = subscriber.confirmed_at
                if not wanted or (subscriber.id, key) in done or confirmed is None:
                    continue
                if confirmed > update.at:
                    continue  # subscribed after this update: only news from then on
                try:
                    if not await self._deliver(subscriber, incident, index, key):
                        continue
                except (httpx.HTTPError, ApplicationError, OSError) as error:
                    failed.append(f"{subscriber.kind} {subscriber.id}: {type(error).__name__}")
                    continue
                await asyncio.to_thread(self.store.record_delivery, subscriber.id, key)
                sent += 1
        log.info("subscribers_notified", incident_id=incident.id, sent=sent, failed=len(failed))
        if failed:
            raise ApplicationError(f"{len(failed)} deliveries failed: {', '.join(failed[:5])}")
        return sent

    async def _deliver(
        self, subscriber: Subscriber, incident: PublicIncident, index: int, key: str
    ) -> bool:
        if subscriber.kind == "email":
            email = update_email(incident, index, subscriber, self.public_url)
            result = await self.mail.send(email)
            if not result.sent:
                log.warning("status_email_not_sent", reason=result.reason)
            return result.sent
        response = await self.http.post(
            subscriber.address,
            json=update_payload(incident, index),
            headers={"Idempotency-Key": key},
            timeout=WEBHOOK_TIMEOUT,
            follow_redirects=False,
        )
        response.raise_for_status()
        return True

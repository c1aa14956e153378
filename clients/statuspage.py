"""Publishing public incidents: the status page's database and its subscribers.

``publish`` upserts the incident (the same incident twice leaves one row). ``notify`` sends
each public update once to each confirmed subscriber whose components it touches: every
delivery is recorded, so a second call (after a webhook that failed, a lost answer) only sends
what is still missing. Webhooks carry an ``Idempotency-Key`` per update for the rest.

A webhook whose host now names an address it may not call (see ``statuspage_webhooks``) is
refused; the others still get theirs, and the outcome says which failed and which were
refused, so the caller can retry the one and give up on the other.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import aiohttp
import structlog

from clients import Permanent
from clients.outbound import Mailer
from clients.statuspage_store import StatusPageStore, Subscriber
from clients.statuspage_webhooks import StatusWebhooks, WebhookRefused
from workflows.requests import Email
from workflows.statuspage import PublicIncident

log = structlog.get_logger()


def status_url(public_url: str) -> str:
    return f"{public_url.rstrip('/')}/status"


def confirm_url(public_url: str, token: str) -> str:
    return f"{status_url(public_url)}/subscribers/confirm?token={token}"


def unsubscribe_url(public_url: str, token: str) -> str:
    """The link in every email; a GET shows a button, a POST (RFC 8058 one-click) acts."""
    return f"{status_url(public_url)}/subscribers/unsubscribe?token={token}"


def update_email(
    incident: PublicIncident, index: int, subscriber: Subscriber, public_url: str
) -> Email:
    update = incident.updates[index]
    page = status_url(public_url)
    unsubscribe = unsubscribe_url(public_url, subscriber.token)
    body = "\n".join(
        [
            f"{incident.title}: {update.status.value}",
            "",
            update.message,
            "",
            f"{update.at:%Y-%m-%d %H:%M} UTC · {page}#{incident.id}",
            "",
            f"Unsubscribe: {unsubscribe}",
        ]
    )
    return Email(
        key=f"status-{incident.id}-{index}-{subscriber.id}",
        to=[subscriber.address],
        subject=f"[{update.status.value}] {incident.title}",
        body=body,
        unsubscribe_url=unsubscribe,
    )


def update_payload(incident: PublicIncident, index: int) -> dict[str, object]:
    return {
        "type": "public_update",
        "incident": incident.model_dump(mode="json", exclude={"updates"}),
        "update": incident.updates[index].model_dump(mode="json"),
        "update_number": index + 1,
    }


@dataclass
class Deliveries:
    """What one round of notifications did: sent, failed (worth retrying), refused (not)."""

    sent: int = 0
    failed: list[str] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)  # subscriber -> why


class StatusPagePublisher:
    def __init__(
        self, store: StatusPageStore, mailer: Mailer, webhooks: StatusWebhooks, public_url: str
    ) -> None:
        self.store = store
        self.mailer = mailer
        self.webhooks = webhooks
        self.public_url = public_url

    async def publish(self, incident: PublicIncident) -> int:
        """The number of public updates now on the page."""
        await asyncio.to_thread(self.store.publish, incident)
        log.info("public_incident_published", incident_id=incident.id, status=incident.status)
        return len(incident.updates)

    async def notify(self, incident: PublicIncident) -> Deliveries:
        """Each update not yet delivered to each subscriber who wants it; a refused webhook is
        asked once per call."""
        subscribers = await asyncio.to_thread(self.store.confirmed)
        done = await asyncio.to_thread(self.store.delivered, incident.id)
        outcome = Deliveries()
        for index, update in enumerate(incident.updates):
            key = f"{incident.id}/{index + 1}"
            for subscriber in subscribers:
                wanted = not subscriber.components or set(subscriber.components) & set(
                    incident.components
                )
                confirmed = subscriber.confirmed_at
                if not wanted or (subscriber.id, key) in done or confirmed is None:
                    continue
                if subscriber.id in outcome.refused:
                    continue
                if confirmed > update.at:
                    continue  # subscribed after this update: only news from then on
                try:
                    if not await self._deliver(subscriber, incident, index, key):
                        continue
                except WebhookRefused as error:
                    # The URL stays out of logs and errors: it may carry the receiver's secret.
                    log.warning(
                        "status_webhook_refused", subscriber_id=subscriber.id, reason=str(error)
                    )
                    outcome.refused[subscriber.id] = f"webhook {subscriber.id}: {error}"
                    continue
                except (aiohttp.ClientError, Permanent, OSError) as error:
                    why = error.kind if isinstance(error, Permanent) else None
                    problem = f"{subscriber.kind} {subscriber.id}: {why or type(error).__name__}"
                    outcome.failed.append(problem)
                    continue
                await asyncio.to_thread(self.store.record_delivery, subscriber.id, key)
                outcome.sent += 1
        log.info(
            "subscribers_notified",
            incident_id=incident.id,
            sent=outcome.sent,
            failed=len(outcome.failed),
            refused=len(outcome.refused),
        )
        return outcome

    async def _deliver(
        self, subscriber: Subscriber, incident: PublicIncident, index: int, key: str
    ) -> bool:
        if subscriber.kind == "email":
            email = update_email(incident, index, subscriber, self.public_url)
            result = await self.mailer.send(email)
            if not result.sent:
                log.warning("status_email_not_sent", reason=result.reason)
            return result.sent
        payload = update_payload(incident, index)
        await self.webhooks.post(subscriber.address, payload, {"Idempotency-Key": key})
        return True

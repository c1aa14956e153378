"""The status page's parts built from the settings, for the worker and for the API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from activities.archive import IncidentArchive
from activities.mail import MailActivities, SmtpServer
from activities.statuspage import StatusPageActivities
from activities.statuspage_store import StatusPageStore
from activities.statuspage_webhooks import StatusWebhooks
from config import Settings, reveal


def smtp_server(settings: Settings) -> SmtpServer:
    return SmtpServer(
        host=settings.smtp_host,
        port=settings.smtp_port,
        user=settings.smtp_user,
        password=reveal(settings.smtp_password),
        sender=settings.smtp_from,
        starttls=settings.smtp_starttls,
    )


def status_webhooks(settings: Settings) -> StatusWebhooks:
    return StatusWebhooks(private_allowed=settings.status_private_webhooks)


def status_page_activities(settings: Settings) -> list[Callable[..., Any]]:
    """The archive's database (its migrations are applied by the worker before this)."""
    store = StatusPageStore(IncidentArchive(settings.database_url.get_secret_value()).engine)
    mail = MailActivities(smtp_server(settings))
    status = StatusPageActivities(store, mail, status_webhooks(settings), settings.public_url)
    return [status.publish, status.notify_subscribers]

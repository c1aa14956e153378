"""Email as a Temporal activity, over ``clients.mail``: a refused login or refused addresses
are not retried."""

from __future__ import annotations

from temporalio import activity

from activities import non_retryable
from clients.mail import Mailer
from workflows.requests import Email, Sent


class MailActivities:
    def __init__(self, mailer: Mailer) -> None:
        self.mailer = mailer

    @activity.defn(name="mail_send")
    async def send(self, email: Email) -> Sent:
        with non_retryable():
            return await self.mailer.send(email)

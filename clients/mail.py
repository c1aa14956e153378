"""Email: the situation report to stakeholders, the retrospective invitation to the people.

SMTP comes from the environment (``INCIDENT_SMTP_*``); without a host, email is off and the
mailer says so instead of failing. The Message-ID is derived from the incident and a key,
so a send retried after a lost answer is recognisably the same message to every mail client.
"""

from __future__ import annotations

import asyncio
import smtplib
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage

import structlog

from clients import Permanent
from config import Settings, reveal
from workflows.requests import Email, Sent

log = structlog.get_logger()
SMTP_TIMEOUT = 20.0
# RFC 5322's line limit, not the 78 it recommends: a header too long for 78 would otherwise
# become encoded words, and List-Unsubscribe's URL must reach mail clients as it is.
MAIL_POLICY = policy.default.clone(max_line_length=998)


@dataclass(frozen=True)
class SmtpServer:
    host: str | None
    port: int = 587
    user: str | None = None
    password: str | None = None
    sender: str = "incidents@localhost"
    starttls: bool = False


def smtp_server(settings: Settings) -> SmtpServer:
    return SmtpServer(
        host=settings.smtp_host,
        port=settings.smtp_port,
        user=settings.smtp_user,
        password=reveal(settings.smtp_password),
        sender=settings.smtp_from,
        starttls=settings.smtp_starttls,
    )


def message(email: Email, sender: str) -> EmailMessage:
    domain = sender.rpartition("@")[2] or "localhost"
    mail = EmailMessage(policy=MAIL_POLICY)
    mail["From"] = sender
    mail["To"] = ", ".join(email.to)
    mail["Subject"] = email.subject
    mail["Message-ID"] = f"<{email.key}@{domain}>"
    if email.unsubscribe_url:
        # Mail clients offer "unsubscribe" from these; one-click means they POST, never GET.
        mail["List-Unsubscribe"] = f"<{email.unsubscribe_url}>"
        mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    mail.set_content(email.body)
    for attachment in email.attachments:
        subtype = attachment.mime.partition("/")[2]
        params = {"method": "REQUEST"} if attachment.mime == "text/calendar" else {}
        mail.add_attachment(
            attachment.content,
            subtype=subtype or "plain",
            filename=attachment.filename,
            params=params,
        )
    return mail


class Mailer:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def send(self, email: Email) -> Sent:
        if not self.server.host:
            return Sent(sent=False, reason="email is off (INCIDENT_SMTP_HOST is not set)")
        if not email.to:
            return Sent(sent=False, reason="nobody to send it to")
        await asyncio.to_thread(self._send, message(email, self.server.sender))
        log.info("email_sent", key=email.key, recipients=len(email.to))
        return Sent(sent=True)

    def _send(self, mail: EmailMessage) -> None:
        server = self.server
        assert server.host is not None
        try:
            with smtplib.SMTP(server.host, server.port, timeout=SMTP_TIMEOUT) as smtp:
                if server.starttls:
                    smtp.starttls()
                if server.user:
                    smtp.login(server.user, server.password or "")
                smtp.send_message(mail)
        except (smtplib.SMTPAuthenticationError, smtplib.SMTPRecipientsRefused) as error:
            # Retrying cannot fix a refused login or refused addresses.
            raise Permanent(f"SMTP refused: {type(error).__name__}", "MailError") from error

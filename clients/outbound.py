"""What leaves for services other than Slack: email and pages.

Email: the situation report to stakeholders, the retrospective invitation to the people. SMTP
comes from the environment (``INCIDENT_SMTP_*``); without a host, email is off and the mailer
says so instead of failing. The Message-ID is derived from the incident and a key, so a send
retried after a lost answer is recognisably the same message to every mail client.

Paging: PagerDuty Events API v2 compatible events and a generic JSON webhook. ``dedup_key`` is
the incident id, so a retried trigger and the later acknowledge and resolve all land on the
same alert at the receiving end. And an automation's ``webhook`` step, by the same client.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import smtplib
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from typing import Any

import httpx
import structlog

from clients import Permanent
from config import Settings, reveal
from workflows.effects import PageAction, SendPage
from workflows.requests import Email, IncidentBrief, Sent, WebhookCall
from workflows.text import incident_label

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


log = structlog.get_logger()


def pagerduty_event(request: SendPage, routing_key: str, incident_url: str) -> dict[str, Any]:
    brief = request.brief
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": request.page.action.value,
        "dedup_key": brief.id,
    }
    if request.page.action is PageAction.TRIGGER:
        event["payload"] = {
            # A drill that practises the pager too must not wake anyone believing it is real.
            "summary": f"{'DRILL ' if brief.drill else ''}{incident_label(brief.number)} "
            f"{brief.severity.upper()}: {brief.title}"[:1024],
            "source": "incident-automation",
            "severity": brief.paging_severity,
            "component": ", ".join(brief.components) or None,
            "custom_details": {
                "escalation_level": brief.escalation_level,
                "notify": request.page.targets,
                "status": brief.status.value,
                "channel": brief.channel.name if brief.channel else None,
            },
        }
        event["links"] = [{"href": incident_url, "text": "Incident workflow"}]
    return event


def webhook_event(request: SendPage, incident_url: str) -> dict[str, Any]:
    brief: IncidentBrief = request.brief
    return {
        "event": f"incident.{request.page.action.value}",
        "incident": brief.model_dump(mode="json"),
        "targets": request.page.targets,
        "url": incident_url,
    }


class Pager:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        pagerduty_url: str | None,
        routing_key: str,
        webhook_url: str | None,
        incident_url: Any,
    ) -> None:
        self.http = http
        self.pagerduty_url = pagerduty_url
        self.routing_key = routing_key
        self.webhook_url = webhook_url
        self.incident_url = incident_url

    # One call per destination: a refusal at one must not cost the other its event, and a
    # retry after a failure at one must not send the other a duplicate.

    async def send_pagerduty(self, request: SendPage) -> None:
        if self.pagerduty_url:
            url = self.incident_url(request.brief.id)
            await self._post(self.pagerduty_url, pagerduty_event(request, self.routing_key, url))
            self._sent("pagerduty", request)

    async def send_webhook(self, request: SendPage) -> None:
        if self.webhook_url:
            url = self.incident_url(request.brief.id)
            await self._post(self.webhook_url, webhook_event(request, url))
            self._sent("webhook", request)

    async def call_webhook(self, call: WebhookCall) -> None:
        """POSTed as JSON, with its delivery id, signed when the step names a secret. A server
        error, 408, 429 or no answer fails (to be tried again); any other refusal is for good.
        Neither the URL's path nor the secret is logged or told: the path may hold a token."""
        body = json.dumps(call.body, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "X-Incident-Delivery": call.key}
        if call.secret_env:
            secret = os.environ.get(call.secret_env)
            if not secret:
                raise Permanent(f"{call.secret_env} is not set: nothing to sign with", "NoSecret")
            digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Incident-Signature"] = f"sha256={digest}"
        host = httpx.URL(call.url).host
        response = await self.http.post(call.url, content=body, headers=headers, timeout=10)
        status = response.status_code
        if status >= 500 or status in (408, 429):
            raise RuntimeError(f"{host} answered HTTP {status}")
        if not response.is_success:
            raise Permanent(f"{host} refused the webhook: HTTP {status}", "WebhookRefused")
        log.info("webhook_sent", rule=call.rule, host=host, delivery=call.key)

    @staticmethod
    def _sent(destination: str, request: SendPage) -> None:
        log.info(
            "page_sent",
            destination=destination,
            incident_id=request.brief.id,
            action=request.page.action.value,
            targets=request.page.targets,
        )

    async def _post(self, url: str, body: dict[str, Any]) -> None:
        response = await self.http.post(url, json=body, timeout=10)
        if 400 <= response.status_code < 500 and response.status_code != 429:
            raise Permanent(
                f"{url} refused the event: HTTP {response.status_code} {response.text[:200]}",
                "PagingRefused",
            )
        response.raise_for_status()

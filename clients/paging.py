"""Paging: PagerDuty Events API v2 compatible events and a generic JSON webhook.

``dedup_key`` is the incident id, so a retried trigger and the later acknowledge and resolve
all land on the same alert at the receiving end.
"""

from __future__ import annotations

from typing import Any

import httpx
import structlog

from clients import Permanent
from workflows.effects import PageAction, SendPage
from workflows.models import incident_label
from workflows.requests import IncidentBrief

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

"""Webhooks from monitoring, read into alert batches: Alertmanager (v4) and a generic shape.

Alertmanager (and Grafana alerting, which sends the same shape) posts one JSON object per
alert group notification; the generic shape is ours, for anything that can send JSON. Both
become an ``AlertBatch``; routing and deduplication are the policy's (``workflows.alerting``).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from workflows.alerts.routing import (
    MAX_EVENT_LINKS,
    MAX_LABEL_TEXT,
    AlertBatch,
    AlertEvent,
    AlertPolicy,
    AlertStatus,
    Labels,
)
from workflows.models import Link

MAX_ALERTS = 5000
SIGNATURE_HEADER = "X-Incident-Signature"
# Alertmanager writes the zero time for "no end yet".
_NO_TIME = datetime(1, 1, 1, tzinfo=UTC)


def _real_time(value: datetime | None) -> datetime | None:
    return None if value is None or value <= _NO_TIME else value


class AlertmanagerAlert(BaseModel):
    """One alert of the group; field names are Alertmanager's own, camelCase."""

    status: AlertStatus
    labels: Labels = Field(default_factory=dict)
    annotations: Labels = Field(default_factory=dict)
    startsAt: datetime | None = None
    endsAt: datetime | None = None
    generatorURL: str = Field(default="", max_length=3000)
    fingerprint: str = Field(default="", max_length=200)


class AlertmanagerWebhook(BaseModel):
    """Alertmanager's webhook payload, version 4 (its documented format)."""

    version: Literal["4"]
    # The group's key is "<receiver>/<groupKey>", at most 2,000 characters in all.
    groupKey: str = Field(min_length=1, max_length=1799)
    truncatedAlerts: int = Field(default=0, ge=0)
    status: AlertStatus
    receiver: str = Field(min_length=1, max_length=200)  # Alertmanager names every receiver
    groupLabels: Labels = Field(default_factory=dict)
    commonLabels: Labels = Field(default_factory=dict)
    commonAnnotations: Labels = Field(default_factory=dict)
    externalURL: str = Field(default="", max_length=3000)
    alerts: list[AlertmanagerAlert] = Field(min_length=1, max_length=MAX_ALERTS)

    def batch(self) -> AlertBatch:
        # Rules match on what the whole group shares; group labels are always among them.
        labels = {**self.commonLabels, **self.groupLabels}
        return AlertBatch(
            source="alertmanager",
            group_key=f"{self.receiver}/{self.groupKey}",
            status=self.status,
            labels=labels,
            annotations=self.commonAnnotations,
            events=[_event(alert) for alert in self.alerts],
        )


def _links(alert: AlertmanagerAlert) -> list[Link]:
    """The runbook first, then the alert's source, then any other ``*_url`` annotation
    (``dashboard_url``, ...) that is a web address: what the channel bookmarks."""
    found = {"runbook_url": "Runbook", "generatorURL": "Alert source"}
    named = [("runbook_url", alert.annotations.get("runbook_url", ""))]
    named.append(("generatorURL", alert.generatorURL))
    named += sorted((k, v) for k, v in alert.annotations.items() if k.endswith("_url"))
    links: dict[str, Link] = {}
    for key, url in named:
        title = found.get(key) or key.removesuffix("_url").replace("_", " ").capitalize()
        try:
            links.setdefault(url, Link(title=title[:100], url=url))
        except ValidationError:
            continue  # not a web address (or a name with nothing visible): no bookmark, no 422
    return list(links.values())[:MAX_EVENT_LINKS]


def _event(alert: AlertmanagerAlert) -> AlertEvent:
    return AlertEvent(
        status=alert.status,
        fingerprint=alert.fingerprint,
        name=alert.labels.get("alertname", ""),
        summary=alert.annotations.get("summary", ""),
        starts_at=_real_time(alert.startsAt),
        ends_at=_real_time(alert.endsAt),
        links=_links(alert),
    )


class GenericAlert(BaseModel):
    """The generic alert shape: one alert, deduplicated by ``key`` while its incident is open."""

    source: str = Field(default="generic", pattern=r"^[a-z0-9_-]{1,64}$")
    key: str = Field(min_length=1, max_length=500, description="Deduplication key.")
    status: AlertStatus = AlertStatus.FIRING
    # The schema says "something visible"; the validator below says it in words people read.
    title: str = Field(min_length=1, max_length=200, json_schema_extra={"pattern": r"\S"})
    # It travels as the "description" annotation, which holds as much as any annotation.
    summary: str = Field(default="", max_length=MAX_LABEL_TEXT)
    labels: Labels = Field(default_factory=dict)
    links: list[Link] = Field(default_factory=list, max_length=10)
    occurred_at: datetime | None = None

    @field_validator("title")
    @classmethod
    def _title_has_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("title is empty")
        return value

    def batch(self) -> AlertBatch:
        # The title travels as the "title" annotation, so a rule's template can use {title}.
        labels = {"alertname": self.title, **self.labels}
        annotations = {"title": self.title, "description": self.summary}
        event = AlertEvent(
            status=self.status,
            fingerprint=self.key[:200],
            name=self.title,
            summary=self.summary[:1024],
            starts_at=self.occurred_at,
            links=self.links,
        )
        return AlertBatch(
            source=self.source,
            group_key=self.key,
            status=self.status,
            labels=labels,
            annotations=annotations,
            events=[event],
        )


def source_accepts(
    policy: AlertPolicy, source: str, body: bytes, bearer: str | None, signature: str | None
) -> bool:
    """Whether the request proves it comes from ``source`` by its own token or HMAC secret.

    The signature is ``sha256=<hex>`` of the raw body, as GitHub-style webhooks send it.
    """
    configured = policy.sources.get(source)
    if configured is None:
        return False
    if configured.token and bearer and same_secret(configured.token, bearer):
        return True
    if configured.hmac_secret and signature:
        digest = hmac.new(configured.hmac_secret.encode(), body, hashlib.sha256).hexdigest()
        return same_secret(f"sha256={digest}", signature.strip())
    return False


def same_secret(expected: str, given: str) -> bool:
    """Constant-time, and as bytes: compare_digest refuses non-ASCII text, which anyone may send."""
    return hmac.compare_digest(expected.encode(), given.encode())

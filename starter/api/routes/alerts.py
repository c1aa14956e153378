"""/alerts: monitoring declares incidents. Alertmanager's webhook (v4) and a generic shape.

Alertmanager (and Grafana alerting, which sends the same shape) posts one JSON object per
alert group notification; the generic shape is ours, for anything that can send JSON. Both
are read into an ``AlertBatch``; routing and deduplication are the policy's
(``workflows.alerts.routing``). The alert group is the declaration's idempotency key, so a
storm of one group is one incident; every later notification of the group reaches that
incident as a signal (fire-and-forget, in order), which folds it into the timeline instead of
posting each alert to Slack.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import structlog
from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from pydantic import BaseModel, Field, ValidationError, field_validator

from starter.api.dependencies import AppSettings, Desk, known_token, same_secret, strictly
from workflows.alerts.folding import AlertSignal
from workflows.alerts.routing import (
    MAX_EVENT_LINKS,
    MAX_LABEL_TEXT,
    AlertBatch,
    AlertEvent,
    AlertPolicy,
    AlertStatus,
    Labels,
    declaration_for,
    idempotency_key,
    route,
)
from workflows.models import Link

log = structlog.get_logger()
router = APIRouter(prefix="/alerts", tags=["alerts"])
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
            truncated=self.truncatedAlerts,
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
        # One alert of the key's group per set of labels, as Alertmanager tells them apart.
        identity = json.dumps([self.key, sorted(self.labels.items())]).encode()
        event = AlertEvent(
            status=self.status,
            fingerprint=hashlib.sha256(identity).hexdigest()[:16],
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


class AlertAnswer(BaseModel):
    incident: str | None  # the incident id the alerts went to, if any
    created: bool = False
    detail: str


async def authenticated_source(request: Request, settings: AppSettings, desk: Desk) -> bytes:
    """The raw body, once the sender proved itself: an API token, or the source's own token
    or HMAC signature from the policy (``[alerts.sources.<name>]``). The source is named by
    ``?source=`` (Grafana posting Alertmanager's shape: ``/alerts/alertmanager?source=grafana``)
    and is otherwise the route's own name."""
    body = await request.body()
    source = request.query_params.get("source") or request.url.path.rsplit("/", 1)[-1]
    scheme, _, bearer = request.headers.get("Authorization", "").partition(" ")
    bearer = bearer.strip() if scheme.lower() == "bearer" else ""
    if bearer and known_token(bearer, settings.bearer_tokens):
        return body
    signature = request.headers.get(SIGNATURE_HEADER)
    if source_accepts(desk.policy.alerts, source, body, bearer or None, signature):
        return body
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail=f"send the API token, or the token or {SIGNATURE_HEADER} the policy sets for "
        f"alerts from {source!r}",
        headers={"WWW-Authenticate": "Bearer"},
    )


Body = Annotated[bytes, Depends(authenticated_source)]


def _read(model: type[AlertmanagerWebhook] | type[GenericAlert], body: bytes) -> AlertBatch:
    try:
        data = json.loads(body)
    except ValueError:  # not JSON, or not UTF-8
        problem = [{"loc": ["body"], "msg": "the body is not JSON", "type": "json_invalid"}]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=problem) from None
    try:
        return strictly(model, data).batch()
    except ValidationError as error:
        detail: list[dict[str, Any]] = [
            {"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in error.errors()
        ]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=detail) from None


async def _deliver(batch: AlertBatch, desk: Desk, response: Response) -> AlertAnswer:
    rule = route(batch, desk.policy.alerts)
    if rule is None:
        log.info("alerts_dropped", source=batch.source, group=batch.group_key[:80])
        return AlertAnswer(incident=None, detail="the policy drops alerts like these")
    key = idempotency_key(batch)
    signal = AlertSignal.of(batch, rule.on_resolved)
    if batch.status is AlertStatus.RESOLVED:
        open_incident = await desk.open_incident_for(key)
        if open_incident is None:
            return AlertAnswer(incident=None, detail="no open incident for this alert group")
        await desk.signal_alerts(open_incident, signal)
        return AlertAnswer(incident=open_incident, detail="resolved alerts noted")
    declaration = declaration_for(rule, batch, desk.policy.alert_severity)
    accepted = await desk.accept(declaration)
    await desk.signal_alerts(accepted.state.id, signal)
    if accepted.created:
        response.status_code = status.HTTP_201_CREATED
    log.info("alerts_received", incident_id=accepted.state.id, created=accepted.created)
    return AlertAnswer(
        incident=accepted.state.id,
        created=accepted.created,
        detail="incident declared" if accepted.created else "folded into the open incident",
    )


def body_of(model: type[BaseModel]) -> dict[str, Any]:
    """The body this route reads itself (after checking the sender), documented as the model
    it is; its nested models join the document's components (``starter.api.openapi``)."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"model": AlertAnswer, "description": "Folded into the open incident, or dropped."},
    201: {"model": AlertAnswer, "description": "A new incident was declared."},
    401: {"description": "Neither the API token nor the source's token or signature."},
    422: {"description": "Not a payload of this shape; `detail` names the field."},
}


def delivering(model: type[AlertmanagerWebhook] | type[GenericAlert]) -> Any:
    """The route of one webhook shape: the sender proved, the body read as ``model``."""

    async def deliver(body: Body, desk: Desk, response: Response) -> AlertAnswer:
        return await _deliver(_read(model, body), desk, response)

    return deliver


for path, model, summary in (
    (
        "alertmanager",
        AlertmanagerWebhook,
        "Prometheus Alertmanager (or Grafana) webhook, version 4",
    ),
    ("generic", GenericAlert, "One alert in the generic shape (see GenericAlert in the docs)"),
):
    router.add_api_route(
        f"/{path}",
        delivering(model),
        methods=["POST"],
        name=path,
        summary=summary,
        responses=ANSWERS,
        openapi_extra=body_of(model),
    )

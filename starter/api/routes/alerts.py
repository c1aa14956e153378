"""/alerts: monitoring declares incidents. Alertmanager's webhook (v4) and a generic shape.

The alert group is the declaration's idempotency key, so a storm of one group is one incident;
every later notification of the group reaches that incident as a signal (fire-and-forget, in
order), which folds it into the timeline instead of posting each alert to Slack.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from pydantic import BaseModel, ValidationError

from starter.alerts import (
    SIGNATURE_HEADER,
    AlertmanagerWebhook,
    GenericAlert,
    same_secret,
    source_accepts,
)
from starter.api.dependencies import AppSettings, Desk, strictly
from workflows.alerts.folding import AlertSignal
from workflows.alerts.routing import (
    AlertBatch,
    AlertStatus,
    declaration_for,
    idempotency_key,
    route,
)

log = structlog.get_logger()
router = APIRouter(prefix="/alerts", tags=["alerts"])


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
    if bearer and any(same_secret(t, bearer) for t in settings.bearer_tokens):
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


@router.post(
    "/alertmanager",
    summary="Prometheus Alertmanager (or Grafana) webhook, version 4",
    responses=ANSWERS,
    openapi_extra=body_of(AlertmanagerWebhook),
)
async def alertmanager(body: Body, desk: Desk, response: Response) -> AlertAnswer:
    return await _deliver(_read(AlertmanagerWebhook, body), desk, response)


@router.post(
    "/generic",
    summary="One alert in the generic shape (see GenericAlert in the docs)",
    responses=ANSWERS,
    openapi_extra=body_of(GenericAlert),
)
async def generic(body: Body, desk: Desk, response: Response) -> AlertAnswer:
    return await _deliver(_read(GenericAlert, body), desk, response)

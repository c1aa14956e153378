"""POST /integrations/pagerduty: PagerDuty's v3 webhooks, so that a page acknowledged in
PagerDuty acknowledges the incident here and escalation stops.

We page PagerDuty with the incident id as ``dedup_key`` (clients/outbound.py), which PagerDuty
keeps as the incident's ``incident_key``; that is how an event finds its incident. PagerDuty
signs each delivery with the subscription's secret (``X-PagerDuty-Signature: v1=<hex>``,
several during a secret rotation) and retries any answer but 2xx, so whatever is not ours or
cannot be applied any more is answered 202 and ignored. Without a secret configured the route
answers 404: the integration is off, and an unsigned request proves nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import UTC, datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Header, HTTPException, Request, Response, status
from pydantic import AwareDatetime, BaseModel, Field, ValidationError
from slack_sdk.errors import SlackApiError

from clients.slack_people import SlackPeople, UnknownPerson
from config.temporal import reveal
from starter.api.dependencies import AppSettings, Desk
from starter.api.routes.alerts import body_of
from starter.desk import IncidentDesk, IncidentNotFound
from workflows.lifecycle import commands as cmd
from workflows.lifecycle.notices import CommandRefused
from workflows.models import Status
from workflows.text import clean_line, parse_incident_ref

log = structlog.get_logger()
router = APIRouter(prefix="/integrations", tags=["integrations"])

SIGNATURE_HEADER = "X-PagerDuty-Signature"
MAX_SIGNATURES = 10  # one per signing secret; PagerDuty sends two while rotating
PAGERDUTY = "alert:pagerduty"  # the entry point its commands came in by, on the timeline
_MARKUP = re.compile(r"[<>&]")


class PagerDutyReference(BaseModel):
    """A user (the agent, an assignee) as PagerDuty refers to it: ``summary`` is the name;
    ``email`` only where the account's references carry it."""

    summary: str = Field(default="", max_length=200)
    email: str | None = Field(default=None, max_length=254)


class PagerDutyIncident(BaseModel):
    """``event.data`` of an incident event; ``incident_key`` is our ``dedup_key``."""

    incident_key: str | None = Field(default=None, max_length=255)
    assignees: list[PagerDutyReference] = Field(default_factory=list, max_length=100)


class PagerDutyEvent(BaseModel):
    id: str = Field(min_length=1, max_length=100)
    event_type: str = Field(max_length=100, examples=["incident.acknowledged"])
    resource_type: str = Field(default="", max_length=100)
    occurred_at: AwareDatetime | None = None
    agent: PagerDutyReference | None = None
    # Its shape depends on ``event_type``; incident events are read as ``PagerDutyIncident``.
    data: dict[str, Any] = Field(default_factory=dict)


class PagerDutyWebhook(BaseModel):
    """PagerDuty's v3 webhook payload: one event per delivery."""

    event: PagerDutyEvent


class PagerDutyAnswer(BaseModel):
    incident: str | None  # the incident the event applied to, if any
    detail: str


def signed(secret: str, body: bytes, header: str) -> bool:
    """Whether any ``v1=`` signature in the header is the body's HMAC-SHA256 with the secret;
    every one is compared, in constant time."""
    expected = "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    given = [s.strip() for s in header.split(",")[:MAX_SIGNATURES]]
    matched = False
    for signature in given:
        matched |= hmac.compare_digest(expected.encode(), signature.encode())
    return matched


def _invalid(error: ValidationError, *loc: str) -> HTTPException:
    detail = [
        {"loc": ["body", *loc, *e["loc"]], "msg": e["msg"], "type": e["type"]}
        for e in error.errors(include_input=False)
    ]
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=detail)


def _read(body: bytes) -> tuple[PagerDutyEvent, PagerDutyIncident | None]:
    """The event, and its incident when it is about one."""
    try:
        event = PagerDutyWebhook.model_validate_json(body).event
    except ValidationError as error:
        raise _invalid(error) from None
    if event.resource_type != "incident":
        return event, None
    try:
        return event, PagerDutyIncident.model_validate(event.data)
    except ValidationError as error:
        raise _invalid(error, "event", "data") from None


def our_incident(incident: PagerDutyIncident) -> str | None:
    """The incident id when the key is one we sent: exactly ``incident-N``, nothing looser."""
    key = incident.incident_key or ""
    try:
        return key if parse_incident_ref(key) == key else None
    except ValueError:
        return None


def agent_name(event: PagerDutyEvent) -> str:
    """The agent's PagerDuty name as plain text: nothing in it may become a Slack mention."""
    name = clean_line(_MARKUP.sub("", event.agent.summary if event.agent else ""))
    return name or "someone"


async def acknowledger(
    people: SlackPeople, event: PagerDutyEvent, incident: PagerDutyIncident
) -> str | None:
    """The Slack person who acknowledged: by the agent's email, else an assignee's."""
    agent = event.agent or PagerDutyReference()
    emails = [agent.email, *(a.email for a in incident.assignees)]
    for email in [e for e in emails if e and "@" in e]:  # a handle would match someone else
        try:
            return await people.resolve(email)
        except (UnknownPerson, SlackApiError):
            continue
    return None


async def _acknowledge(
    desk: IncidentDesk,
    people: SlackPeople,
    ref: str,
    event: PagerDutyEvent,
    incident: PagerDutyIncident,
) -> str:
    user = await acknowledger(people, event, incident)
    name = agent_name(event)
    key = f"pagerduty:{event.id}"  # PagerDuty delivers at least once: applied once
    # First, so that PagerDuty echoing our own acknowledgement (we send one when someone
    # acknowledges here) is refused as already acknowledged and leaves no note.
    await desk.command(ref, cmd.Acknowledge(by=user, source=PAGERDUTY), request_key=key)
    # ``by`` holds Slack users only: someone PagerDuty knows and Slack does not is named here,
    # and the incident was acknowledged without a person.
    note = cmd.AddTimelineEntry(
        text=f"Acknowledged in PagerDuty by {f'<@{user}>' if user else name}.",
        author=user,
        at=event.occurred_at or datetime.now(UTC),
        source=PAGERDUTY,
    )
    await desk.command(ref, note, request_key=key)
    return f"acknowledged as {'the Slack user ' + user if user else 'PagerDuty user ' + name}"


async def _note_resolved(desk: IncidentDesk, ref: str, event: PagerDutyEvent) -> str:
    state = await desk.get(ref)
    if state.status is Status.RESOLVED:  # most likely PagerDuty echoing our own resolve
        raise CommandRefused(f"{state.label} is already resolved here")
    note = cmd.AddTimelineEntry(
        text=f"Resolved in PagerDuty by {agent_name(event)}; not resolved here: people decide.",
        at=event.occurred_at or datetime.now(UTC),
        source=PAGERDUTY,
    )
    await desk.command(ref, note, request_key=f"pagerduty:{event.id}")
    return "noted on the timeline; resolving is for people here"


ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"model": PagerDutyAnswer, "description": "Applied to one of our incidents."},
    202: {"model": PagerDutyAnswer, "description": "Not ours, or nothing to do: ignored."},
    401: {"description": f"Missing or bad `{SIGNATURE_HEADER}`."},
    404: {"description": "No `INCIDENT_PAGERDUTY_WEBHOOK_SECRET`: the integration is off."},
    422: {"description": "Signed, but not a v3 webhook payload; `detail` names the field."},
}


@router.post(
    "/pagerduty",
    summary="PagerDuty v3 webhook: acknowledged there, acknowledged here",
    responses=ANSWERS,
    openapi_extra=body_of(PagerDutyWebhook),
)
async def pagerduty(
    request: Request,
    settings: AppSettings,
    desk: Desk,
    response: Response,
    signature: Annotated[
        str | None,
        Header(
            alias=SIGNATURE_HEADER,
            max_length=2000,
            description="`v1=<hex HMAC-SHA256 of the body>`, comma-separated when several.",
        ),
    ] = None,
) -> PagerDutyAnswer:
    secret = reveal(settings.pagerduty_webhook_secret)
    if not secret:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="the PagerDuty integration is off")
    body = await request.body()
    if not signature or not signed(secret, body, signature):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail=f"bad {SIGNATURE_HEADER}")
    event, incident = _read(body)
    ref = our_incident(incident) if incident else None
    response.status_code = status.HTTP_202_ACCEPTED
    handled = event.event_type in ("incident.acknowledged", "incident.resolved")
    if incident is None or ref is None or not handled:
        log.info("pagerduty_event_ignored", event_type=event.event_type)
        return PagerDutyAnswer(incident=None, detail="not an event about one of our incidents")
    people: SlackPeople = request.app.state.people
    try:
        if event.event_type == "incident.acknowledged":
            detail = await _acknowledge(desk, people, ref, event, incident)
        else:
            detail = await _note_resolved(desk, ref, event)
    except IncidentNotFound:
        return PagerDutyAnswer(incident=None, detail="no such incident here")
    except CommandRefused as refused:
        return PagerDutyAnswer(incident=ref, detail=str(refused))
    response.status_code = status.HTTP_200_OK
    log.info("pagerduty_event_applied", incident_id=ref, event_type=event.event_type)
    return PagerDutyAnswer(incident=ref, detail=detail)

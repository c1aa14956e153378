"""Status page subscriptions: anyone may ask, only the address's owner confirms.

No account and no token, so it is bounded by design: one pending confirmation per address
(asked again, nothing is sent until it expires), a cap on unconfirmed addresses as a whole,
and nothing is ever sent to an address but its confirmation until someone follows the link.
"""

from __future__ import annotations

import asyncio
import ipaddress
from html import escape
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
import structlog
from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field, model_validator

from activities.mail import MailActivities
from activities.statuspage import WEBHOOK_TIMEOUT, status_url
from activities.statuspage_store import Subscribed
from config import Settings
from starter.api.dependencies import AppSettings
from starter.api.routes.incidents import invalid
from starter.api.routes.status import Store
from starter.status.service import smtp_server
from workflows.documents import Email

log = structlog.get_logger()
router = APIRouter(prefix="/status/subscribers", tags=["status page"])
Token = Annotated[str, Query(min_length=20, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class Subscription(BaseModel):
    """An email address or a webhook URL, and optionally the components of interest."""

    # ASCII addresses only: the SMTP sender does not speak SMTPUTF8.
    email: str | None = Field(
        default=None,
        max_length=254,
        pattern=r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$",
    )
    webhook: str | None = Field(default=None, max_length=2000, pattern=r"^https?://\S+$")
    components: list[Annotated[str, Field(max_length=100)]] = Field(
        default_factory=list, max_length=50
    )

    @model_validator(mode="after")
    def one_address(self) -> Subscription:
        if (self.email is None) == (self.webhook is None):
            raise ValueError("give either email or webhook")
        return self


class SubscriptionOut(BaseModel):
    status: Subscribed
    detail: str


async def send_confirmation(settings: Settings, kind: str, address: str, token: str) -> None:
    page = status_url(settings.public_url)
    confirm = f"{page}/subscribers/confirm?token={token}"
    if kind == "email":
        email = Email(
            key=f"status-confirm-{token[:16]}",
            to=[address],
            subject="Confirm your status page subscription",
            body=f"Follow this link to get status updates by email:\n\n{confirm}\n\n"
            f"Not you? Ignore this email; nothing more will be sent.\n\n"
            f"Unsubscribe: {page}/subscribers/unsubscribe?token={token}",
        )
        sent = await MailActivities(smtp_server(settings)).send(email)
        if not sent.sent:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=sent.reason)
        return
    payload = {"type": "subscription_confirmation", "confirm_url": confirm}
    async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT) as http:
        response = await http.post(address, json=payload)
        response.raise_for_status()


@router.post(
    "",
    summary="Subscribe to public updates (a confirmation link is sent first)",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        200: {"description": "Subscribed already."},
        429: {"description": "A confirmation is pending for this address."},
        502: {"description": "The webhook refused the confirmation; nothing is kept."},
        503: {"description": "The confirmation could not be sent now; nothing is kept."},
    },
)
async def subscribe(body: Subscription, store: Store, settings: AppSettings) -> JSONResponse:
    known = settings.policy.components
    unknown = sorted(set(body.components) - set(known))
    if known and unknown:
        detail = f"unknown components {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        raise invalid("components", detail)
    # Mailboxes are case-blind in practice: one address, one subscription.
    if (
        body.webhook
        and not settings.status_private_webhooks
        and not await public_host(body.webhook)
    ):
        raise invalid("webhook", "the host must resolve to public addresses only")
    kind, address = ("email", body.email.lower()) if body.email else ("webhook", body.webhook)
    assert address is not None
    outcome, token = await asyncio.to_thread(store.subscribe, kind, address, body.components)
    if outcome is Subscribed.CONFIRMED:
        return answer(200, outcome, "subscribed already")
    if outcome is Subscribed.PENDING:
        return answer(429, outcome, "a confirmation link was sent already; follow it")
    if outcome is Subscribed.FULL:
        return answer(503, outcome, "too many unconfirmed subscriptions; try again later")
    try:
        await send_confirmation(settings, kind, address, token)
    except (HTTPException, httpx.HTTPError, OSError) as error:
        await asyncio.to_thread(store.forget_pending, token)
        log.warning("subscription_confirmation_failed", kind=kind, error=type(error).__name__)
        if isinstance(error, HTTPException):
            raise
        detail = f"the {kind} did not take the confirmation ({type(error).__name__})"
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, detail=detail) from None
    log.info("subscription_requested", kind=kind)
    return answer(202, outcome, f"a confirmation link was sent to the {kind}")


async def public_host(url: str) -> bool:
    """Whether every address the URL's host names is a public one (no SSRF to the inside)."""
    host = urlsplit(url).hostname or ""
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, None)
    except (OSError, UnicodeError):  # no such host, or a name IDNA cannot even spell
        return False
    addresses = {ipaddress.ip_address(info[4][0]) for info in found}
    return bool(addresses) and all(a.is_global for a in addresses)


def answer(code: int, outcome: Subscribed, detail: str) -> JSONResponse:
    body = SubscriptionOut(status=outcome, detail=detail)
    return JSONResponse(body.model_dump(mode="json"), status_code=code)


def small_page(title: str, text: str, code: int = 200) -> HTMLResponse:
    body = (
        '<!doctype html><html lang="en"><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{escape(title)}</title><main style="font:16px system-ui;margin:2rem auto;'
        f'max-width:40rem;padding:0 1rem"><h1>{escape(title)}</h1><p>{escape(text)}</p>'
        '<p><a href="../../status">Back to the status page</a></p></main></html>'
    )
    return HTMLResponse(body, status_code=code)


UNKNOWN_LINK: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such pending subscription (or it expired)."}
}


@router.get(
    "/confirm",
    summary="Confirm a subscription (the link sent to the address)",
    response_class=HTMLResponse,
    responses=UNKNOWN_LINK,
)
async def confirm(token: Token, store: Store) -> HTMLResponse:
    subscriber = await asyncio.to_thread(store.confirm, token)
    if subscriber is None:
        return small_page("Unknown link", "This confirmation link is unknown or expired.", 404)
    log.info("subscription_confirmed", kind=subscriber.kind)
    return small_page("Subscribed", "You will hear of every public update from now on.")


@router.get(
    "/unsubscribe",
    summary="Unsubscribe (the link in every email)",
    response_class=HTMLResponse,
    responses=UNKNOWN_LINK,
)
async def unsubscribe(token: Token, store: Store) -> HTMLResponse:
    if not await asyncio.to_thread(store.unsubscribe, token):
        return small_page("Unknown link", "This subscription does not exist (any more).", 404)
    log.info("subscription_removed")
    return small_page("Unsubscribed", "You will get no more status updates.")

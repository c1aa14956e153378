"""Status page subscriptions over JSON, and the links sent to subscribers.

Anyone may ask (see ``starter.status.subscribing`` for the bounds), only the address's owner
confirms. The links in emails never act on GET: mail scanners and link previews follow links,
so a GET shows a page with one button, and the button's POST confirms or unsubscribes. The
unsubscribe link takes RFC 8058's one-click POST as it is, for mail clients' own button.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

import structlog
from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field, model_validator

from starter.api.dependencies import AppSettings
from starter.api.errors import ClientBudget, invalid
from starter.api.routes.status import Store
from starter.status import render
from starter.status.subscribing import SubscriptionProblem, request_subscription

log = structlog.get_logger()
router = APIRouter(prefix="/status/subscribers", tags=["status page"])
Token = Annotated[
    str,
    Query(
        min_length=20,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The token from the link that was sent",
    ),
]
# Each client's subscription requests (JSON and form together) in a window, per API process.
SUBSCRIPTIONS_PER_CLIENT = 20
BUDGET_WINDOW = 600.0
HTML: dict[str, Any] = {"content": {"text/html": {}}}


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

    def kind_and_address(self) -> tuple[str, str]:
        if self.email is not None:
            # Mailboxes are case-blind in practice: one address, one subscription.
            return "email", self.email.lower()
        assert self.webhook is not None
        return "webhook", self.webhook


class SubscriptionOut(BaseModel):
    status: Literal["requested"]
    detail: str


def subscribe_budget() -> ClientBudget:
    return ClientBudget(SUBSCRIPTIONS_PER_CLIENT, BUDGET_WINDOW)


def over_budget(request: Request) -> int | None:
    """Seconds this client must wait before asking again, or None."""
    budget: ClientBudget = request.app.state.subscribe_budget
    return budget.spend(request.client.host if request.client else "")


async def within_budget(request: Request) -> None:
    """A dependency, so it counts before the body is read: a bad body counts too."""
    wait = over_budget(request)
    if wait is not None:
        headers = {"Retry-After": str(wait)}
        detail = "too many subscription requests; try again later"
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, detail=detail, headers=headers)


@router.post(
    "",
    summary="Subscribe to public updates (a confirmation link is sent first)",
    dependencies=[Depends(within_budget)],
    description="The answer is the same whether the address is new, waiting for its "
    "confirmation (nothing is sent again within 24 hours) or subscribed already: nobody "
    "learns from it who subscribes.",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        429: {"description": "Too many subscription requests from this client; see Retry-After."},
        502: {"description": "The webhook refused the confirmation; nothing is kept."},
        503: {"description": "The confirmation could not be sent now; nothing is kept."},
    },
)
async def subscribe(body: Subscription, store: Store, settings: AppSettings) -> SubscriptionOut:
    kind, address = body.kind_and_address()
    try:
        await request_subscription(settings, store, kind, address, body.components)
    except SubscriptionProblem as problem:
        if problem.field:
            raise invalid(problem.field, problem.detail) from None
        raise HTTPException(problem.status, detail=problem.detail) from None
    detail = f"unless the {kind} is subscribed already, a confirmation link is on its way to it"
    return SubscriptionOut(status="requested", detail=detail)


def page_path(request: Request) -> str:
    """The status page as the links on our pages name it: the path it was reached by."""
    return request.url_for("status_html").path


def link_page(
    request: Request, title: str, text: str, code: int = 200, button: render.Button | None = None
) -> HTMLResponse:
    page = render.message(title, text, page_path(request), problem=code >= 400, button=button)
    return HTMLResponse(page, status_code=code)


UNKNOWN_LINK: dict[int | str, dict[str, Any]] = {
    200: HTML,
    404: {"description": "No such pending subscription (or it expired).", **HTML},
}


@router.get(
    "/confirm",
    summary="The confirmation link: a page with the button that confirms",
    description="Changes nothing, so a mail scanner following the link confirms nothing.",
    response_class=HTMLResponse,
)
async def confirm_page(request: Request, token: Token) -> HTMLResponse:
    # Relative, so the button posts to this very link whatever proxy the page came through.
    button = render.Button(action=f"?token={token}", label="Confirm my subscription")
    text = "Press the button to start getting the status page's public updates."
    return link_page(request, "Confirm your subscription", text, button=button)


@router.post(
    "/confirm",
    summary="Confirm a subscription (the button of the confirmation link's page)",
    response_class=HTMLResponse,
    responses=UNKNOWN_LINK,
)
async def confirm(request: Request, token: Token, store: Store) -> HTMLResponse:
    subscriber = await asyncio.to_thread(store.confirm, token)
    if subscriber is None:
        text = "This confirmation link is unknown or expired."
        return link_page(request, "Unknown link", text, 404)
    log.info("subscription_confirmed", kind=subscriber.kind)
    return link_page(
        request, "Subscribed", "You will get the status page's public updates from now on."
    )


@router.get(
    "/unsubscribe",
    summary="The unsubscribe link in every email: a page with the button that unsubscribes",
    description="Changes nothing, so a mail scanner following the link unsubscribes nobody.",
    response_class=HTMLResponse,
)
async def unsubscribe_page(request: Request, token: Token) -> HTMLResponse:
    button = render.Button(action=f"?token={token}", label="Unsubscribe")
    text = "Press the button to get no more status updates."
    return link_page(request, "Unsubscribe", text, button=button)


@router.post(
    "/unsubscribe",
    summary="Unsubscribe (the page's button, or a mail client's one-click POST, RFC 8058)",
    response_class=HTMLResponse,
    responses=UNKNOWN_LINK,
)
async def unsubscribe(
    request: Request,
    token: Token,
    store: Store,
    one_click: Annotated[
        str | None,
        Form(
            alias="List-Unsubscribe",
            max_length=20,
            description="`One-Click` when a mail client unsubscribes (RFC 8058); optional",
        ),
    ] = None,
) -> HTMLResponse:
    if not await asyncio.to_thread(store.unsubscribe, token):
        return link_page(
            request, "Unknown link", "This subscription does not exist (any more).", 404
        )
    log.info("subscription_removed", one_click=one_click is not None)
    return link_page(request, "Unsubscribed", "You will get no more status updates.")

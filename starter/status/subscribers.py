"""Subscribing to the status page: the JSON route, the page's own form, and the links sent.

Anyone may ask (see ``starter.status.subscribing`` for the bounds), only the address's owner
confirms. The form is a plain HTML form POST, answered with a page: no script and no cookie,
so it works in any browser, the form kept filled when something is wrong with it. It has no
session for a CSRF token to protect, yet a post another site's page made the browser send is
refused where the browser says so (``Sec-Fetch-Site``, ``Origin``): nobody may subscribe
people from their own page. Clients that are not browsers send neither header and are let in,
as with the JSON route. The links in emails never act on GET: mail scanners and link previews
follow links, so a GET shows a page with one button, and the button's POST confirms or
unsubscribes. The unsubscribe link takes RFC 8058's one-click POST as it is, for mail
clients' own button.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import structlog
from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ValidationError

from config import Settings
from starter.api.dependencies import AppSettings
from starter.api.errors import invalid
from starter.status.page import Button, Store, SubscribeForm, component_groups, current, message
from starter.status.subscribing import (
    Subscription,
    SubscriptionProblem,
    over_budget,
    request_subscription,
)

log = structlog.get_logger()
router = APIRouter(tags=["status page"])
Token = Annotated[
    str,
    Query(
        min_length=20,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The token from the link that was sent",
    ),
]
HTML: dict[str, Any] = {"content": {"text/html": {}}}


class SubscriptionOut(BaseModel):
    status: Literal["requested"]
    detail: str


async def within_budget(request: Request) -> None:
    """A dependency, so it counts before the body is read: a bad body counts too."""
    wait = over_budget(request)
    if wait is not None:
        headers = {"Retry-After": str(wait)}
        detail = "too many subscription requests; try again later"
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, detail=detail, headers=headers)


@router.post(
    "/status/subscribers",
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


# The form.
EMAIL_CHARS = 254
FIELD_PROBLEMS = {
    "email": "Enter an email address like name@example.com (at most 254 characters).",
    "components": "Choose at most 50 of the listed components.",
}


def cross_site(request: Request, settings: Settings) -> bool:
    """Whether the browser says this post comes from another site's page."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return True
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    ours = {request.headers.get("Host", ""), urlsplit(settings.public_url).netloc}
    return urlsplit(origin).netloc not in ours


def form_action(request: Request) -> str:
    return request.url_for("subscribe_by_form").path


def form_errors(error: ValidationError) -> dict[str, str]:
    fields = {str(problem["loc"][0]) for problem in error.errors() if problem["loc"]}
    return {name: FIELD_PROBLEMS[name] for name in fields if name in FIELD_PROBLEMS}


FORM_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The confirmation link is on its way (the same answer whether the "
        "address was new, waiting for its confirmation or subscribed already).",
        **HTML,
    },
    403: {"description": "A cross-site post (the browser said so): refused.", **HTML},
    422: {"description": "The form again, filled, naming what is wrong.", **HTML},
    429: {
        "description": "Too many subscription requests from this client; see Retry-After.",
        **HTML,
    },
    502: {"description": "The confirmation could not be delivered; nothing is kept.", **HTML},
    503: {"description": "The confirmation could not be sent now; nothing is kept.", **HTML},
}


@router.post(
    "/status/subscribe",
    summary="Subscribe by email from the status page's form (HTML in, HTML out)",
    description="The form on `/status` posts here (`application/x-www-form-urlencoded`). "
    "A confirmation link is emailed first; `POST /status/subscribers` is the JSON twin.",
    response_class=HTMLResponse,
    responses=FORM_ANSWERS,
)
async def subscribe_by_form(
    request: Request,
    store: Store,
    settings: AppSettings,
    email: Annotated[str, Form(description="The address to send updates to")] = "",
    components: Annotated[
        list[str], Form(description="Components of interest (none: every one)")
    ] = [],  # noqa: B006  (FastAPI copies defaults; a list is how it reads repeated fields)
) -> HTMLResponse:
    page_url = page_path(request)
    if cross_site(request, settings):
        text = "This form takes posts from the status page itself only. Open it and try there."
        body = message("Not from here", text, page_url, problem=True)
        return HTMLResponse(body, status.HTTP_403_FORBIDDEN)
    email = email.strip()
    chosen = frozenset(components)

    async def again(code: int, text: str, errors: dict[str, str]) -> HTMLResponse:
        groups = component_groups(await current(store, settings))
        # What was typed comes back no longer than the field takes it.
        shown = email[:EMAIL_CHARS]
        form = SubscribeForm(form_action(request), groups, shown, chosen, errors)
        title = "Check the form" if errors else "Not subscribed yet"
        body = message(title, text, page_url, problem=True, form=form)
        return HTMLResponse(body, code)

    wait = over_budget(request)
    if wait is not None:
        answer = await again(429, "Too many subscription requests; try again later.", {})
        answer.headers["Retry-After"] = str(wait)
        return answer
    try:
        subscription = Subscription(email=email, components=components)
    except ValidationError as error:
        return await again(422, "Nothing was sent.", form_errors(error))
    kind, address = subscription.kind_and_address()
    try:
        await request_subscription(settings, store, kind, address, subscription.components)
    except SubscriptionProblem as problem:
        if problem.field:
            said = problem.detail[:1].upper() + problem.detail[1:] + "."
            return await again(problem.status, "Nothing was sent.", {problem.field: said})
        return await again(problem.status, f"Nothing was sent: {problem.detail}.", {})
    text = (
        f"Unless {address} is subscribed already or was sent a link in the last 24 hours, "
        "a confirmation link is on its way to it. Open it within 24 hours and press the "
        "button there to start getting updates."
    )
    return HTMLResponse(message("Check your inbox", text, page_url))


# The links sent.


def page_path(request: Request) -> str:
    """The status page as the links on our pages name it: the path it was reached by."""
    return request.url_for("status_html").path


def link_page(
    request: Request, title: str, text: str, code: int = 200, button: Button | None = None
) -> HTMLResponse:
    page = message(title, text, page_path(request), problem=code >= 400, button=button)
    return HTMLResponse(page, status_code=code)


UNKNOWN_LINK: dict[int | str, dict[str, Any]] = {
    200: HTML,
    404: {"description": "No such pending subscription (or it expired).", **HTML},
}


@router.get(
    "/status/subscribers/confirm",
    summary="The confirmation link: a page with the button that confirms",
    description="Changes nothing, so a mail scanner following the link confirms nothing.",
    response_class=HTMLResponse,
)
async def confirm_page(request: Request, token: Token) -> HTMLResponse:
    # Relative, so the button posts to this very link whatever proxy the page came through.
    button = Button(action=f"?token={token}", label="Confirm my subscription")
    text = "Press the button to start getting the status page's public updates."
    return link_page(request, "Confirm your subscription", text, button=button)


@router.post(
    "/status/subscribers/confirm",
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
    "/status/subscribers/unsubscribe",
    summary="The unsubscribe link in every email: a page with the button that unsubscribes",
    description="Changes nothing, so a mail scanner following the link unsubscribes nobody.",
    response_class=HTMLResponse,
)
async def unsubscribe_page(request: Request, token: Token) -> HTMLResponse:
    button = Button(action=f"?token={token}", label="Unsubscribe")
    text = "Press the button to get no more status updates."
    return link_page(request, "Unsubscribe", text, button=button)


@router.post(
    "/status/subscribers/unsubscribe",
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

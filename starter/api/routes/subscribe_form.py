"""The status page's subscribe form: a plain HTML form POST, answered with a page.

No script and no cookie: the form works in any browser, and every answer is a page, the
form kept filled when something is wrong with it. It has no session for a CSRF token to
protect, yet a post another site's page made the browser send is refused where the browser
says so (``Sec-Fetch-Site``, ``Origin``): nobody may subscribe people from their own page.
Clients that are not browsers send neither header and are let in, as with the JSON route.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from config import Settings
from starter.api.dependencies import AppSettings
from starter.api.routes.status import Store, current
from starter.api.routes.subscribers import HTML, Subscription, over_budget, page_path
from starter.status import render
from starter.status.subscribing import SubscriptionProblem, request_subscription

router = APIRouter(tags=["status page"])
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
        body = render.message("Not from here", text, page_url, problem=True)
        return HTMLResponse(body, status.HTTP_403_FORBIDDEN)
    email = email.strip()
    chosen = frozenset(components)

    async def again(code: int, text: str, errors: dict[str, str]) -> HTMLResponse:
        groups = render.component_groups(await current(store, settings))
        # What was typed comes back no longer than the field takes it.
        shown = email[:EMAIL_CHARS]
        form = render.SubscribeForm(form_action(request), groups, shown, chosen, errors)
        title = "Check the form" if errors else "Not subscribed yet"
        body = render.message(title, text, page_url, problem=True, form=form)
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
    return HTMLResponse(render.message("Check your inbox", text, page_url))

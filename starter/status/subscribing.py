"""Asking for a subscription, the same way from the JSON API and from the page's form: what
is asked for (``Subscription``), how often one client may ask, and the confirmation sent.

No account and no token, so it is bounded by design: one pending confirmation per address
(asked again, nothing is sent until it expires), a cap on unconfirmed addresses as a whole,
and nothing is ever sent to an address but its confirmation until someone confirms. The
answer is the same whether the address was new, pending or subscribed already, so nobody
learns from it who subscribes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated

import aiohttp
import structlog
from fastapi import Request, status
from pydantic import BaseModel, Field, model_validator

from clients import Permanent
from clients.outbound import Mailer, smtp_server
from clients.statuspage import confirm_url, status_url, unsubscribe_url
from clients.statuspage_store import StatusPageStore, Subscribed
from clients.statuspage_webhooks import WebhookRefused, status_webhooks
from config import Settings
from starter.api.errors import ClientBudget
from workflows.requests import Email

log = structlog.get_logger()


# Each client's subscription requests (JSON and form together) in a window, per API process.
SUBSCRIPTIONS_PER_CLIENT = 20
BUDGET_WINDOW = 600.0


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


def subscribe_budget() -> ClientBudget:
    return ClientBudget(SUBSCRIPTIONS_PER_CLIENT, BUDGET_WINDOW)


def over_budget(request: Request) -> int | None:
    """Seconds this client must wait before asking again, or None."""
    budget: ClientBudget = request.app.state.subscribe_budget
    return budget.spend(request.client.host if request.client else "")


@dataclass
class SubscriptionProblem(Exception):
    """Why a subscription was not asked for: an HTTP status, the field at fault if any."""

    status: int
    detail: str
    field: str | None = None


def unknown_components(settings: Settings, components: list[str]) -> str | None:
    known = settings.policy.components
    unknown = sorted(set(components) - set(known))
    if not known or not unknown:
        return None
    return f"unknown components {', '.join(unknown)} (known: {', '.join(sorted(known))})"


async def request_subscription(
    settings: Settings, store: StatusPageStore, kind: str, address: str, components: list[str]
) -> None:
    """Sends a confirmation link to a new address; raises SubscriptionProblem otherwise."""
    problem = unknown_components(settings, components)
    if problem:
        raise SubscriptionProblem(status.HTTP_422_UNPROCESSABLE_CONTENT, problem, "components")
    if kind == "webhook":
        try:
            await status_webhooks(settings).check(address)
        except WebhookRefused as error:
            detail = f"the host must resolve to public addresses only: {error}"
            raise SubscriptionProblem(
                status.HTTP_422_UNPROCESSABLE_CONTENT, detail, "webhook"
            ) from None
    outcome, token = await asyncio.to_thread(store.subscribe, kind, address, components)
    if outcome is Subscribed.FULL:
        detail = "too many unconfirmed subscriptions; try again later"
        raise SubscriptionProblem(status.HTTP_503_SERVICE_UNAVAILABLE, detail)
    if outcome is not Subscribed.NEW:
        log.info("subscription_requested_again", kind=kind, outcome=outcome.value)
        return
    try:
        await send_confirmation(settings, kind, address, token)
    except (
        SubscriptionProblem,
        WebhookRefused,
        aiohttp.ClientError,
        Permanent,  # the mail server refused the address or our login
        OSError,
    ) as error:
        await asyncio.to_thread(store.forget_pending, token)
        log.warning("subscription_confirmation_failed", kind=kind, error=type(error).__name__)
        if isinstance(error, SubscriptionProblem):
            raise
        if isinstance(error, WebhookRefused):
            raise SubscriptionProblem(
                status.HTTP_422_UNPROCESSABLE_CONTENT, str(error), "webhook"
            ) from None
        cause = str(error) if isinstance(error, Permanent) else type(error).__name__
        detail = f"the {kind} did not take the confirmation ({cause})"
        raise SubscriptionProblem(status.HTTP_502_BAD_GATEWAY, detail) from None
    log.info("subscription_requested", kind=kind)


async def send_confirmation(settings: Settings, kind: str, address: str, token: str) -> None:
    confirm = confirm_url(settings.public_url, token)
    if kind == "email":
        unsubscribe = unsubscribe_url(settings.public_url, token)
        email = Email(
            key=f"status-confirm-{token[:16]}",
            to=[address],
            subject="Confirm your status page subscription",
            body=f"To get status updates from {status_url(settings.public_url)} by email, "
            f"open this link and press the button there:\n\n{confirm}\n\n"
            "Not you? Ignore this email; nothing more will be sent.\n\n"
            f"Unsubscribe: {unsubscribe}",
            unsubscribe_url=unsubscribe,
        )
        sent = await Mailer(smtp_server(settings)).send(email)
        if not sent.sent:
            raise SubscriptionProblem(status.HTTP_503_SERVICE_UNAVAILABLE, sent.reason)
        return
    payload = {"type": "subscription_confirmation", "confirm_url": confirm}
    await status_webhooks(settings).post(address, payload, {})

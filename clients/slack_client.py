"""The Slack Web API client (for the activities and the entry points), and how its errors are
classified.

Writes are never re-sent by the client itself. A 5xx or a dropped connection after a write may
mean Slack did it and the answer was lost; re-sending inside the same activity attempt would
skip the duplicate checks, which only run when the activity itself is retried (a post looks for
its metadata key, a channel for its mark). So the client repeats a call on 5xx or a connection
error only for reads; a 429 is repeated for every call, since Slack did not execute it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

from clients import Permanent

# The last part of a method name that only reads (conversations.history, users.lookupByEmail).
READ_VERBS = frozenset({"test", "list", "info", "history", "replies", "members", "lookupByEmail"})

# What a retry can fix: Slack busy or failing on its side. Every other error fails at once,
# so one Slack has added since (a new ``*_not_allowed``) cannot retry for as long as an
# activity allows; an HTTP 5xx (no error code) and a dropped connection are retried too.
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


def is_read(method: str) -> bool:
    """Whether a Web API method only reads (safe to send twice), from its name."""
    return method.rsplit(".", 1)[-1] in READ_VERBS


def _method_of(request: HttpRequest) -> str:
    return urlsplit(request.url).path.rstrip("/").rsplit("/", 1)[-1]


class _ReadsOnly(AsyncRetryHandler):
    """Mixin: the wrapped handler's retry, for reads only."""

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return is_read(_method_of(request)) and await super()._can_retry_async(
            state=state, request=request, response=response, error=error
        )


class ReadServerErrorRetryHandler(_ReadsOnly, AsyncServerErrorRetryHandler):
    """5xx: retried for reads; a write's failure goes up to the activity's own retry."""


class ReadConnectionErrorRetryHandler(_ReadsOnly, AsyncConnectionErrorRetryHandler):
    """A dropped connection: retried for reads only, for the same reason."""


def slack_client(token: str, base_url: str) -> AsyncWebClient:
    """A client that honours Retry-After on 429 and re-reads through brief outages."""
    return AsyncWebClient(
        token=token,
        base_url=base_url,
        timeout=15,
        retry_handlers=[
            AsyncRateLimitErrorRetryHandler(max_retry_count=5),
            ReadServerErrorRetryHandler(max_retry_count=2),
            ReadConnectionErrorRetryHandler(max_retry_count=2),
        ],
    )


def slack_error(error: SlackApiError) -> str:
    return str(error.response.get("error", "unknown_error"))


def is_transient(error: SlackApiError) -> bool:
    """Whether trying again may help: Slack's own trouble, a 429 or a 5xx answer."""
    response = error.response
    # A body slack_sdk could not read leaves the aiohttp response itself (``status``): a
    # proxy's page, say, which says nothing of the call.
    status = int(getattr(response, "status_code", 0) or getattr(response, "status", 0) or 0)
    if status == 429 or status >= 500 or not hasattr(response, "get"):
        return True
    return slack_error(error) in TRANSIENT_ERRORS


def refused(method: str, error: SlackApiError) -> Permanent:
    """An error a retry cannot fix, naming the method and Slack's error."""
    return Permanent(f"Slack {method}: {slack_error(error)}", "SlackError")


@asynccontextmanager
async def permanent_errors(method: str, *handled: str) -> AsyncIterator[None]:
    """Every Slack error but the transient ones becomes a ``Permanent`` naming ``method``;
    the ``handled`` errors (``name_taken``, ``already_pinned``) reach the caller as they are."""
    try:
        yield
    except SlackApiError as error:
        if is_transient(error) or slack_error(error) in handled:
            raise
        raise refused(method, error) from error

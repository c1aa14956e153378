"""The Slack app: Bolt over HTTP at ``POST /slack/events``, or over Socket Mode.

Socket Mode (``SLACK_APP_TOKEN``) needs no public URL; over HTTP Bolt checks every request's
signature with ``SLACK_SIGNING_SECRET`` and answers a bad or stale one (over 5 minutes) 401.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import structlog
from fastapi import APIRouter, FastAPI, Request, Response
from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler

from clients.slack_people import SlackPeople
from config import Settings, reveal
from starter.desk import IncidentDesk
from starter.slack.app import bot_client, create_slack_app
from starter.slack.commands import SlackDesk

log = structlog.get_logger()

router = APIRouter(tags=["slack"])


def install_slack(
    api: FastAPI, settings: Settings, desk: Callable[[], IncidentDesk], people: SlackPeople
) -> None:
    """Serve /slack/events when a signing secret is set (Socket Mode starts in ``socket_mode``)."""
    client = bot_client(settings)
    api.state.slack_handler = None
    if client is None:
        log.warning("slack_app_off", hint="set SLACK_BOT_TOKEN (or SLACK_API_URL to the emulator)")
    elif settings.slack_app_token:
        api.state.slack_app = create_slack_app(SlackDesk(desk, people), client, None)
    elif settings.slack_signing_secret:
        app = create_slack_app(
            SlackDesk(desk, people), client, reveal(settings.slack_signing_secret)
        )
        api.state.slack_handler = AsyncSlackRequestHandler(app)
    else:
        log.warning("slack_events_off", hint="set SLACK_SIGNING_SECRET to serve /slack/events")
    api.include_router(router)


@asynccontextmanager
async def socket_mode(api: FastAPI, settings: Settings) -> AsyncIterator[None]:
    """Connected to Slack over Socket Mode for as long as the API runs, when an app token is set."""
    app = getattr(api.state, "slack_app", None)
    if app is None or not settings.slack_app_token:
        yield
        return
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    socket = AsyncSocketModeHandler(app, settings.slack_app_token.get_secret_value())
    await socket.connect_async()  # type: ignore[no-untyped-call]
    log.info("slack_socket_mode_connected")
    try:
        yield
    finally:
        await socket.close_async()  # type: ignore[no-untyped-call]


@router.post(
    "/slack/events",
    summary="Slack's signed slash commands and interactions",
    responses={
        401: {"description": "The Slack signature is missing, bad or older than 5 minutes."},
        404: {"description": "The Slack app is off here (no SLACK_SIGNING_SECRET)."},
    },
)
async def slack_events(request: Request) -> Response:
    """401 when the signature is bad or older than 5 minutes (Bolt checks it)."""
    handler: AsyncSlackRequestHandler | None = request.app.state.slack_handler
    if handler is None:
        return Response("the Slack app is not served over HTTP here", status_code=404)
    return await handler.handle(request)

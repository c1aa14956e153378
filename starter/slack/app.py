"""The Slack app (Bolt): how it is served, and its slash commands, kickoff buttons, modals and
message shortcut.

Over HTTP at ``POST /slack/events`` Bolt checks every request's signature with
``SLACK_SIGNING_SECRET`` and answers a bad or stale one (over 5 minutes) 401; Socket Mode
(``SLACK_APP_TOKEN``) needs no public URL. Either way the app talks through the bot's Web API
client (``bot_client``). Each listener acks first (Slack wants an answer within 3 seconds),
then calls the desk, then answers through ``respond`` (the response_url) with the Update's
real result, ephemerally: the workflow itself posts what the channel should see.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI, Request, Response
from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from clients.slack_client import slack_client
from clients.slack_people import SlackPeople
from config import ConfigError, Settings, reveal
from starter.api.identity import token_store
from starter.desk import IncidentDesk, permit
from starter.oncall import register_oncall
from starter.slack import blocks
from starter.slack.commands import REFUSALS, SlackDesk, Where, error_text
from starter.slack.events import register_events
from workflows.lifecycle import commands as cmd
from workflows.lifecycle.notices import PermissionRefused
from workflows.models import IncidentState, Status

log = structlog.get_logger()

# How long a modal submission waits for the incident before acking: a refusal in time is
# shown on the form itself; a slower answer still lands, the form just closes first.
SUBMIT_BUDGET = 2.0
ALIASES = ("/escalate", "/resolve")


def create_slack_app(
    slack: SlackDesk, client: AsyncWebClient, signing_secret: str | None
) -> AsyncApp:
    app = AsyncApp(
        client=client,
        signing_secret=signing_secret or "",
        # Socket Mode needs no signature; over HTTP a missing secret refuses every request.
        request_verification_enabled=signing_secret is not None,
    )
    register(app, slack)
    return app


def bot_client(settings: Settings) -> AsyncWebClient | None:
    """The bot's Web API client for the entry points (the people resolver, the Slack app): the
    same client the activities use (reads retried, writes never re-sent), or None when
    no token is configured for a real Slack: the API still serves everything but Slack."""
    try:
        token = settings.slack_token()
    except ConfigError:
        return None
    return slack_client(token, settings.slack_api_url)


def where(body: dict[str, Any]) -> Where:
    """Who and where, from a slash command or an interaction payload."""
    user = body.get("user_id") or (body.get("user") or {}).get("id", "")
    channel = body.get("channel") or {}
    return Where(
        user=str(user),
        channel_id=str(body.get("channel_id") or channel.get("id", "")),
        channel_name=str(body.get("channel_name") or channel.get("name", "")),
        trigger_id=str(body.get("trigger_id", "")),
    )


async def say(respond: AsyncRespond, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
    if respond.response_url:  # a request without one has nowhere to be answered
        await respond(
            text=text, blocks=blocks or None, response_type="ephemeral", replace_original=False
        )


async def answer(respond: AsyncRespond, work: Awaitable[IncidentState]) -> None:
    try:
        text = blocks.result(await work)
    except REFUSALS as error:
        text = blocks.refused(error_text(error))
    except Exception:
        log.exception("slack_action_failed")
        text = blocks.FAILED
    await say(respond, text)


def register(app: AsyncApp, slack: SlackDesk) -> None:
    async def incident(
        ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        await ack()
        # /escalate and /resolve are /incident escalate|resolve.
        name = str(body.get("command", "/incident"))
        text = str(body.get("text", ""))
        if name in ALIASES:
            text = f"{name.removeprefix('/')} {text}"
        reply = await slack.slash(text, where(body), client)
        if reply is not None:
            await say(respond, reply.text, reply.blocks)

    app.command("/incident")(incident)
    for alias in ALIASES:
        app.command(alias)(incident)
    register_oncall(app, slack)
    register_events(app, slack)

    @app.action("incident_acknowledge")
    async def acknowledge(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        ref = body["actions"][0]["value"]
        await answer(respond, slack.command(ref, cmd.Acknowledge, {"by": where(body).user}))

    def opening(which: str) -> Callable[..., Awaitable[None]]:
        """The kickoff button that opens the ``which`` modal."""

        async def open_modal(
            ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
        ) -> None:
            await ack()
            await open_for(body, respond, client, which)

        return open_modal

    for which in ("status", "resolve"):
        app.action(f"incident_{which}_modal")(opening(which))

    @app.action("open_incident_workflow")
    async def open_workflow(ack: AsyncAck) -> None:
        await ack()  # a URL button: the browser opens it, Slack still wants the ack

    async def open_for(
        body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient, which: str
    ) -> None:
        try:
            state = await slack.desk.get(body["actions"][0]["value"])
        except REFUSALS as error:
            await say(respond, blocks.refused(error_text(error)))
            return
        if which == "status":
            view = blocks.status_modal(state.id, state.label, state.status)
        else:
            view = blocks.resolve_modal(state.id, state.label)
        await client.views_open(trigger_id=body["trigger_id"], view=view)

    @app.view(blocks.DECLARE)
    async def declare_submitted(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        view = body["view"]
        fields = blocks.declaration_fields(blocks.values(view))
        user = where(body).user
        try:
            declaration = slack.declaration(fields, user, body.get("trigger_id", ""))
            await permit(slack.desk.policy, slack.people, "declare", declaration.declared_by)
        except (ValueError, PermissionRefused) as error:
            errors = blocks.field_errors(error_text(error), blocks.REFUSED_UNDER)
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        state, created = await slack.declare(fields, user, body.get("trigger_id", ""))
        channel = view.get("private_metadata")
        if channel:
            # Only a courtesy: the new channel and the announcement are the real answer, and
            # the bot may not be in the channel the form was opened from.
            try:
                text = blocks.declared(state, created)
                await client.chat_postEphemeral(channel=channel, user=user, text=text)
            except SlackApiError as error:
                log.info("slack_declare_note_skipped", error=error.response.get("error"))

    @app.view(blocks.STATUS)
    async def status_submitted(ack: AsyncAck, body: dict[str, Any]) -> None:
        answers = blocks.values(body["view"])
        fields = {
            "status": answers.get("status") or Status.IDENTIFIED.value,
            "message": answers.get("message", ""),
            "by": where(body).user,
        }
        work = slack.command(body["view"]["private_metadata"], cmd.SetStatus, fields)
        await submit_within(ack, work, "status")

    @app.view(blocks.RESOLVE)
    async def resolve_submitted(ack: AsyncAck, body: dict[str, Any]) -> None:
        fields = {"message": blocks.values(body["view"]).get("message", ""), "by": where(body).user}
        work = slack.command(body["view"]["private_metadata"], cmd.Resolve, fields)
        await submit_within(ack, work, "message")

    @app.shortcut("add_to_timeline")
    async def add_to_timeline(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        asker = where(body)
        ref = await slack.incident_here(asker)
        if ref is None:
            await say(respond, blocks.refused("not an incident channel"))
            return
        message = body.get("message") or {}
        fields = {
            "text": message.get("text", ""),
            "author": message.get("user"),
            "at": datetime.fromtimestamp(float(message.get("ts", 0)), UTC),
            "by": asker.user,
        }
        await answer(respond, slack.command(ref, cmd.AddTimelineEntry, fields))


async def submit_within(ack: AsyncAck, work: Awaitable[IncidentState], block: str) -> None:
    """Ack a modal with the incident's refusal shown on the form, when it comes in time."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=SUBMIT_BUDGET)
    if task not in done:
        await ack()
        try:
            await task
        except REFUSALS as error:
            log.info("slack_submission_refused", reason=error_text(error))
        return
    try:
        task.result()
    except REFUSALS as error:
        await ack(response_action="errors", errors={block: error_text(error)[:150]})
        return
    await ack()


# -- served ----------------------------------------------------------------------------------

router = APIRouter(tags=["slack"])


def install_slack(
    api: FastAPI, settings: Settings, desk: Callable[[], IncidentDesk], people: SlackPeople
) -> None:
    """Serve /slack/events when a signing secret is set (Socket Mode starts in ``socket_mode``)."""
    client = bot_client(settings)
    api.state.slack_handler = None
    slack = SlackDesk(desk, people, functools.partial(token_store, api))  # `/incident token`
    api.state.slack_background = slack.background  # cancelled as the API stops
    if client is None:
        log.warning("slack_app_off", hint="set SLACK_BOT_TOKEN (or SLACK_API_URL to the emulator)")
    elif settings.slack_app_token:
        api.state.slack_app = create_slack_app(slack, client, None)
    elif settings.slack_signing_secret:
        app = create_slack_app(slack, client, reveal(settings.slack_signing_secret))
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

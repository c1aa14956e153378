"""Slack side effects of an incident. Every method is idempotent: a retry finds its own work.

A Slack error that retrying cannot fix (bad token, unknown user, archived channel) becomes a
non-retryable ``ApplicationError``, which the workflow records on the timeline and moves past.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import messages
from workflows.effects import (
    ChannelRef,
    InviteResult,
    InviteUsers,
    OpenChannel,
    Posted,
    PostMessage,
    SetTopic,
)
from workflows.models import Channel
from workflows.naming import with_suffix

# Errors a retry cannot fix; anything else (5xx, timeouts, ratelimited) is retried.
PERMANENT_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "missing_scope",
        "channel_not_found",
        "is_archived",
        "user_not_found",
        "users_not_found",
        "user_disabled",
        "invalid_name",
        "invalid_name_specials",
        "invalid_name_maxlength",
        "invalid_name_required",
        "invalid_name_punctuation",
        "restricted_action",
        "msg_too_long",
        "no_text",
        "invalid_blocks",
        "too_long",
        "not_allowed_token_type",
        "method_not_supported_for_channel_type",
        "no_such_subteam",
    }
)
# Refusals about one person, not the call: the rest of the invitations still go out.
USER_ERRORS = frozenset(
    {
        "user_not_found",
        "users_not_found",
        "user_disabled",
        "cant_invite",
        "user_is_restricted",
        "ura_max_channels",
        "already_in_channel",
        "cant_invite_self",
        "not_allowed_token_type",
    }
)
CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{6,}$")
MAX_NAME_SUFFIX = 50
log = structlog.get_logger()
HISTORY_SCAN = 200


def slack_client(token: str, base_url: str) -> AsyncWebClient:
    """A client that honours Retry-After on 429 and rides out brief 5xx and network errors."""
    return AsyncWebClient(
        token=token,
        base_url=base_url,
        timeout=15,
        retry_handlers=[
            AsyncRateLimitErrorRetryHandler(max_retry_count=5),
            AsyncServerErrorRetryHandler(max_retry_count=2),
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
        ],
    )


def slack_error(error: SlackApiError) -> str:
    return str(error.response.get("error", "unknown_error"))


@asynccontextmanager
async def permanent_errors(method: str) -> AsyncIterator[None]:
    try:
        yield
    except SlackApiError as error:
        code = slack_error(error)
        if code in PERMANENT_ERRORS:
            raise ApplicationError(
                f"Slack {method}: {code}", type="SlackError", non_retryable=True
            ) from error
        raise


class SlackActivities:
    def __init__(
        self, client: AsyncWebClient, broadcast_channel: str, incident_url: Callable[[str], str]
    ) -> None:
        self.client = client
        self.broadcast_channel = broadcast_channel
        self.incident_url = incident_url
        self._broadcast_id: str | None = None

    # -- channel --------------------------------------------------------------------------

    @activity.defn(name="slack_open_channel")
    async def open_channel(self, request: OpenChannel) -> Channel:
        """Create the channel, taking the next free suffix; a retry finds the one it made."""
        marker = f"[{request.incident_id}]"
        for attempt in range(1, MAX_NAME_SUFFIX + 1):
            name = with_suffix(request.name, attempt)
            try:
                async with permanent_errors("conversations.create"):
                    response = await self.client.conversations_create(name=name)
            except SlackApiError as error:
                if slack_error(error) != "name_taken":
                    raise
                existing = await self._channel_named(name)
                if existing and marker in existing.get("purpose", {}).get("value", ""):
                    log.info("channel_found_again", incident_id=request.incident_id, name=name)
                    return Channel(id=existing["id"], name=existing["name"])
                continue
            channel = Channel(id=response["channel"]["id"], name=response["channel"]["name"])
            async with permanent_errors("conversations.setPurpose"):
                await self.client.conversations_setPurpose(
                    channel=channel.id,
                    purpose=messages.purpose(request.incident_id, request.label, request.title),
                )
            return channel
        raise ApplicationError(f"no free channel name for {request.name!r}", non_retryable=True)

    async def _channel_named(self, name: str) -> dict[str, Any] | None:
        async with permanent_errors("conversations.list"):
            async for page in await self.client.conversations_list(
                types="public_channel,private_channel", limit=1000
            ):
                for channel in page["channels"]:
                    if channel["name"] == name:
                        found: dict[str, Any] = channel
                        return found
        return None

    @activity.defn(name="slack_set_topic")
    async def set_topic(self, request: SetTopic) -> None:
        async with permanent_errors("conversations.setTopic"):
            await self.client.conversations_setTopic(
                channel=request.channel_id, topic=messages.topic(request.brief)
            )

    @activity.defn(name="slack_archive_channel")
    async def archive_channel(self, request: ChannelRef) -> None:
        try:
            async with permanent_errors("conversations.archive"):
                await self.client.conversations_archive(channel=request.channel_id)
        except SlackApiError as error:
            if slack_error(error) != "already_archived":
                raise

    # -- people ---------------------------------------------------------------------------

    @activity.defn(name="slack_invite")
    async def invite(self, request: InviteUsers) -> InviteResult:
        """Invite everyone at once; if Slack refuses the batch, one by one to say who failed."""
        result = InviteResult()
        users: list[str] = []
        for target in dict.fromkeys(request.users):
            try:
                users += await self._user_ids(target)
            except SlackApiError as error:
                result.failed[target] = slack_error(error)
        users = list(dict.fromkeys(users))
        if not users:
            return result
        try:
            await self.client.conversations_invite(
                channel=request.channel_id, users=",".join(users)
            )
            result.invited += users
            return result
        except SlackApiError as error:
            if slack_error(error) not in USER_ERRORS or len(users) == 1:
                self._raise_or_record(error, users[0], result)
                return result
        for user in users:
            try:
                await self.client.conversations_invite(channel=request.channel_id, users=user)
                result.invited.append(user)
            except SlackApiError as error:
                self._raise_or_record(error, user, result)
        return result

    @staticmethod
    def _raise_or_record(error: SlackApiError, user: str, result: InviteResult) -> None:
        """A person-specific refusal is recorded; anything else fails the activity."""
        code = slack_error(error)
        if code in ("already_in_channel", "cant_invite_self"):
            return
        if code in USER_ERRORS:
            result.failed[user] = code
            return
        if code in PERMANENT_ERRORS:
            raise ApplicationError(
                f"Slack conversations.invite: {code}", type="SlackError", non_retryable=True
            ) from error
        raise error

    async def _user_ids(self, target: str) -> list[str]:
        """Escalation targets may be users (U…), user groups (S…) or emails."""
        if target.startswith("S") and target[1:].isalnum():
            response = await self.client.usergroups_users_list(usergroup=target)
            return list(response["users"])
        if "@" in target:
            response = await self.client.users_lookupByEmail(email=target)
            return [response["user"]["id"]]
        return [target]

    # -- messages -------------------------------------------------------------------------

    @activity.defn(name="slack_post_message")
    async def post_message(self, request: PostMessage) -> Posted:
        channel = request.channel_id or await self._broadcast()
        post, brief = request.post, request.brief
        already = None
        if activity.info().attempt > 1:
            already = await self._posted_before(channel, brief.id, post.key)
        if already is None:
            text, blocks = messages.render(post, brief, self.incident_url(brief.id))
            async with permanent_errors("chat.postMessage"):
                response = await self.client.chat_postMessage(
                    channel=channel,
                    text=text,
                    blocks=blocks,
                    unfurl_links=False,
                    metadata=messages.metadata(brief.id, post.key),
                )
            already = str(response["ts"])
            channel = str(response["channel"])
            log.info(
                "notice_posted",
                incident_id=brief.id,
                number=brief.number,
                key=post.key,
                channel_id=channel,
            )
        else:
            log.info("notice_found_again", incident_id=brief.id, key=post.key, channel_id=channel)
        if post.pin:
            await self._pin(channel, already)
        return Posted(channel_id=channel, ts=already)

    async def _pin(self, channel: str, ts: str) -> None:
        try:
            async with permanent_errors("pins.add"):
                await self.client.pins_add(channel=channel, timestamp=ts)
        except SlackApiError as error:
            if slack_error(error) != "already_pinned":
                raise

    async def _posted_before(self, channel: str, incident_id: str, key: str) -> str | None:
        """The ts of this notice if an earlier attempt posted it after all."""
        async with permanent_errors("conversations.history"):
            response = await self.client.conversations_history(
                channel=channel, limit=HISTORY_SCAN, include_all_metadata=True
            )
        for message in response["messages"]:
            payload = message.get("metadata", {}).get("event_payload", {})
            if payload.get("incident_id") == incident_id and payload.get("key") == key:
                return str(message["ts"])
        return None

    async def _broadcast(self) -> str:
        """The broadcast channel's id, from its name once per worker; joined if need be."""
        if self._broadcast_id is None:
            wanted = self.broadcast_channel.lstrip("#")
            if CHANNEL_ID.match(wanted):
                self._broadcast_id = wanted
            else:
                found = await self._channel_named(wanted)
                if found is None:
                    raise ApplicationError(
                        f"broadcast channel #{wanted} does not exist",
                        type="SlackError",
                        non_retryable=True,
                    )
                if not found.get("is_member", True):
                    await self.client.conversations_join(channel=found["id"])
                self._broadcast_id = str(found["id"])
        return self._broadcast_id

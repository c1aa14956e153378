"""Slack side effects of an incident. Every method is idempotent: a retry finds its own work.

A Slack error that retrying cannot fix (bad token, unknown user, archived channel) becomes a
non-retryable ``ApplicationError``, which the workflow records on the timeline and moves past.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import messages
from activities.mrkdwn import escape
from activities.slack_client import (
    PERMANENT_ERRORS,
    permanent_errors,
    slack_client,
    slack_error,
)
from activities.slack_people import SlackPeople, UnknownPerson
from workflows.effects import (
    AddBookmarks,
    Audience,
    ChannelRef,
    EditKickoff,
    InviteResult,
    InviteUsers,
    Notice,
    OpenChannel,
    Post,
    Posted,
    PostMessage,
    SetTopic,
)
from workflows.models import Channel, Link
from workflows.naming import with_suffix

__all__ = ["SlackActivities", "slack_client"]

UPDATE_TEXT_LIMIT = 4000  # chat.update's reference: tighter than chat.postMessage
MAX_INVITES = 100  # conversations.invite's reference: up to 100 users per call

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
# The mark any incident leaves in its channel's purpose (see messages.purpose).
MARKED = re.compile(r"\[incident-\d+\]$")
log = structlog.get_logger()
HISTORY_SCAN = 200


class SlackActivities:
    def __init__(
        self, client: AsyncWebClient, broadcast_channel: str, incident_url: Callable[[str], str]
    ) -> None:
        self.client = client
        self.broadcast_channel = broadcast_channel
        self.incident_url = incident_url
        self._broadcast_id: str | None = None
        self._bot_user_id: str | None = None
        self.people = SlackPeople(client)

    # -- channel --------------------------------------------------------------------------

    @activity.defn(name="slack_open_channel")
    async def open_channel(self, request: OpenChannel) -> Channel:
        """Create the channel, taking the next free suffix; a retry finds the one it made.

        The channel is marked as this incident's (its purpose) only after it exists, so a
        create whose answer was lost leaves an unmarked channel. Before each create the name
        goes into the heartbeat details as "outcome unknown" (and out again once Slack answers
        ``name_taken``); a retry adopts an unmarked channel of such a name that our bot made.
        Remaining risk: two incidents racing for one name, one of them losing its answer
        while the winner has not marked the channel yet, could both claim it; that takes two
        same-day incidents of one title declared within a second, plus a lost answer.
        """
        details = activity.info().heartbeat_details
        unknown: list[str] = [str(name) for name in details[0]] if details else []
        return await self.create_channel(request, unknown, activity.heartbeat)

    async def create_channel(
        self, request: OpenChannel, unknown: list[str], record: Callable[[list[str]], None]
    ) -> Channel:
        """``open_channel``'s work; ``record`` keeps the names of unknown outcome where a
        retry of the calling activity finds them (its heartbeat details)."""
        marker = f"[{request.incident_id}]"
        adoptable = set(unknown)
        for attempt in range(1, MAX_NAME_SUFFIX + 1):
            name = with_suffix(request.name, attempt)
            record([*unknown, name])
            try:
                async with permanent_errors("conversations.create"):
                    response = await self.client.conversations_create(name=name)
            except SlackApiError as error:
                if slack_error(error) != "name_taken":
                    raise
                existing = await self._channel_named(name)
                purpose = (existing or {}).get("purpose", {}).get("value", "")
                if existing and purpose.endswith(marker):
                    log.info("channel_found_again", incident_id=request.incident_id, name=name)
                    return Channel(id=existing["id"], name=existing["name"])
                if (
                    existing
                    and name in adoptable
                    and not MARKED.search(purpose)
                    and existing.get("creator") == await self._bot_user()
                ):
                    log.info("channel_adopted", incident_id=request.incident_id, name=name)
                    return await self._mark(request, existing["id"], existing["name"])
                unknown = [n for n in unknown if n != name]
                continue
            channel = response["channel"]
            return await self._mark(request, channel["id"], channel["name"])
        raise ApplicationError(f"no free channel name for {request.name!r}", non_retryable=True)

    async def _mark(self, request: OpenChannel, channel_id: str, name: str) -> Channel:
        async with permanent_errors("conversations.setPurpose"):
            await self.client.conversations_setPurpose(
                channel=channel_id,
                purpose=messages.purpose(
                    request.incident_id, request.label, request.title, request.drill
                ),
            )
        return Channel(id=channel_id, name=name)

    async def _bot_user(self) -> str:
        if self._bot_user_id is None:
            async with permanent_errors("auth.test"):
                response = await self.client.auth_test()
            self._bot_user_id = str(response["user_id"])
        return self._bot_user_id

    async def _channel_named(self, name: str) -> dict[str, Any] | None:
        async with permanent_errors("conversations.list"):
            # Incident and broadcast channels are public, so the app needs no groups:* scope.
            async for page in await self.client.conversations_list(
                types="public_channel", limit=1000
            ):
                for channel in page["channels"]:
                    if channel["name"] == name:
                        found: dict[str, Any] = channel
                        return found
        return None

    @activity.defn(name="slack_set_topic")
    async def set_topic(self, request: SetTopic) -> None:
        async with permanent_errors("conversations.setTopic"):
            await self._as_member(
                request.channel_id,
                lambda: self.client.conversations_setTopic(
                    channel=request.channel_id, topic=messages.topic(request.brief)
                ),
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
        """Invite in batches as large as Slack takes; if Slack refuses a batch, one by one to
        say who failed. A lookup that is only rate limited fails the attempt (and is retried);
        only a person Slack does not know is recorded as failed."""
        result = InviteResult()
        users: list[str] = []
        for target in dict.fromkeys(request.users):
            try:
                async with permanent_errors("users lookup"):
                    found = await self.people.user_ids(target)
            except UnknownPerson as unknown:
                result.failed[target] = unknown.code
                continue
            users += found
        users = list(dict.fromkeys(users))
        for start in range(0, len(users), MAX_INVITES):
            await self._invite_batch(request.channel_id, users[start : start + MAX_INVITES], result)
        return result

    async def _invite_batch(self, channel: str, users: list[str], result: InviteResult) -> None:
        try:
            await self.client.conversations_invite(channel=channel, users=",".join(users))
            result.invited += users
            return
        except SlackApiError as error:
            if slack_error(error) not in USER_ERRORS or len(users) == 1:
                self._raise_or_record(error, users[0], result)
                return
        for user in users:
            try:
                await self.client.conversations_invite(channel=channel, users=user)
                result.invited.append(user)
            except SlackApiError as error:
                self._raise_or_record(error, user, result)

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

    # -- messages -------------------------------------------------------------------------

    @activity.defn(name="slack_post_message")
    async def post_message(self, request: PostMessage) -> Posted:
        return await self.post(request, request.post.check_first or activity.info().attempt > 1)

    async def post(self, request: PostMessage, check_first: bool) -> Posted:
        """Post the notice unless ``check_first`` finds an earlier attempt's copy; pin it."""
        channel = request.channel_id or await self._broadcast()
        if channel.startswith(("U", "W")):
            # A reminder to one person goes to their direct message with the app, whose id the
            # duplicate check below needs (Slack's history takes a channel, not a user).
            async with permanent_errors("conversations.open"):
                opened = await self.client.conversations_open(users=channel)
            channel = str(opened["channel"]["id"])
        post, brief = request.post, request.brief
        already = None
        if check_first:
            already = await self._posted_before(channel, brief.id, post.key)
        if already is None:
            post = post.model_copy(
                update={"mentions": await self.people.mention_ids(post.mentions)}
            )
            text, blocks = messages.render(post, brief, self.incident_url(brief.id))
            async with permanent_errors("chat.postMessage"):
                response = await self._as_member(
                    channel,
                    lambda: self.client.chat_postMessage(
                        channel=channel,
                        text=text,
                        blocks=blocks,
                        unfurl_links=False,
                        metadata=messages.metadata(brief.id, post.key),
                    ),
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

    @activity.defn(name="slack_add_bookmarks")
    async def add_bookmarks(self, request: AddBookmarks) -> None:
        """Bookmark the incident in the Temporal UI and the given links; a retry lists the
        channel's bookmarks first and adds only what is missing."""
        await self.bookmark(request.channel_id, request.incident_id, request.links)

    async def bookmark(self, channel: str, incident_id: str, links: list[Link]) -> None:
        """The incident in the Temporal UI, then ``links``; only what the channel lacks."""
        wanted = [Link(title="Incident in Temporal", url=self.incident_url(incident_id)), *links]
        async with permanent_errors("bookmarks.list"):
            listed = await self._as_member(
                channel, lambda: self.client.bookmarks_list(channel_id=channel)
            )
        present = {b.get("link") for b in listed["bookmarks"]}
        for link in wanted:
            if link.url in present:
                continue
            async with permanent_errors("bookmarks.add"):
                await self.client.bookmarks_add(
                    channel_id=channel, title=escape(link.title), type="link", link=link.url
                )
            present.add(link.url)

    @activity.defn(name="slack_update_kickoff")
    async def update_kickoff(self, request: EditKickoff) -> None:
        """Edit the pinned kickoff to show the incident as it is now; repeating is harmless."""
        brief = request.brief
        post = Post(
            key="kickoff",
            notice=Notice.KICKOFF,
            audience=[Audience.CHANNEL],
            actor=brief.declared_by,
            text=brief.summary,
        )
        text, blocks = messages.render(post, brief, self.incident_url(brief.id))
        async with permanent_errors("chat.update"):
            await self.client.chat_update(
                channel=request.channel_id,
                ts=request.ts,
                text=messages.cut(text, UPDATE_TEXT_LIMIT),
                blocks=blocks,
            )

    async def _as_member(
        self, channel: str, call: Callable[[], Awaitable[AsyncSlackResponse]]
    ) -> AsyncSlackResponse:
        """Run ``call``; if the bot is not in the (public) channel, join it and run it again
        at once rather than failing until the activity's retries give up."""
        try:
            return await call()
        except SlackApiError as error:
            if slack_error(error) != "not_in_channel":
                raise
        async with permanent_errors("conversations.join"):
            await self.client.conversations_join(channel=channel)
        log.info("channel_joined", channel_id=channel)
        return await call()

    async def _pin(self, channel: str, ts: str) -> None:
        try:
            async with permanent_errors("pins.add"):
                await self._as_member(
                    channel, lambda: self.client.pins_add(channel=channel, timestamp=ts)
                )
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

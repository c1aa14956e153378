"""An incident's channel in Slack: created once, marked, its topic, members and bookmarks.

Every method is idempotent, so a retry finds its own work. A Slack error that retrying cannot
fix (bad token, unknown user, archived channel) is a ``Permanent``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from clients import Permanent, messages
from clients.messages import escape
from clients.slack_client import is_transient, permanent_errors, refused, slack_error
from clients.slack_people import SlackPeople, UnknownPerson
from workflows.models import Channel, Link
from workflows.requests import InviteResult, InviteUsers, OpenChannel, SetTopic
from workflows.text import with_suffix

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
MAX_NAME_SUFFIX = 50
# The mark any incident leaves in its channel's purpose (see messages.purpose).
MARKED = re.compile(r"\[incident-\d+\]$")
log = structlog.get_logger()


class SlackChannels:
    def __init__(
        self, client: AsyncWebClient, people: SlackPeople, incident_url: Callable[[str], str]
    ) -> None:
        self.client = client
        self.people = people
        self.incident_url = incident_url
        self._bot_user_id: str | None = None

    async def create(
        self, request: OpenChannel, unknown: list[str], record: Callable[[list[str]], None]
    ) -> Channel:
        """Create the channel, taking the next free suffix; a retry finds the one it made.

        The channel is marked as this incident's (its purpose) only after it exists, so a
        create whose answer was lost leaves an unmarked channel. Before each create the name
        goes to ``record`` as "outcome unknown" (and out again once Slack answers
        ``name_taken``); ``unknown`` is what an earlier try recorded, and a retry adopts an
        unmarked channel of such a name that our bot made.
        Remaining risk: two incidents racing for one name, one of them losing its answer
        while the winner has not marked the channel yet, could both claim it; that takes two
        same-day incidents of one title declared within a second, plus a lost answer.
        """
        marker = f"[{request.incident_id}]"
        adoptable = set(unknown)
        for attempt in range(1, MAX_NAME_SUFFIX + 1):
            name = with_suffix(request.name, attempt)
            record([*unknown, name])
            try:
                async with permanent_errors("conversations.create", "name_taken"):
                    response = await self.client.conversations_create(
                        name=name, is_private=request.private
                    )
            except SlackApiError as error:
                if slack_error(error) != "name_taken":
                    raise
                existing = await self.named(name)
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
                    # An earlier try may have lost this create's answer and gone on to a later
                    # suffix that it did mark: that one is the incident's, this one an orphan.
                    if marked := await self._marked(marker):
                        log.info("channel_found_again", incident_id=request.incident_id, name=name)
                        return Channel(id=marked["id"], name=marked["name"])
                    log.info("channel_adopted", incident_id=request.incident_id, name=name)
                    return await self._mark(request, existing["id"], existing["name"])
                unknown = [n for n in unknown if n != name]
                continue
            channel = response["channel"]
            return await self._mark(request, channel["id"], channel["name"])
        raise Permanent(f"no free channel name for {request.name!r}")

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

    async def named(self, name: str) -> dict[str, Any] | None:
        return await self._first(lambda channel: channel["name"] == name)

    async def _marked(self, marker: str) -> dict[str, Any] | None:
        return await self._first(lambda c: c.get("purpose", {}).get("value", "").endswith(marker))

    async def _first(self, wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
        async with permanent_errors("conversations.list"):
            # A private incident's channel too (groups:read), which the bot made so is in.
            async for page in await self.client.conversations_list(
                types="public_channel,private_channel", limit=1000
            ):
                for channel in page["channels"]:
                    if wanted(channel):
                        found: dict[str, Any] = channel
                        return found
        return None

    async def set_topic(self, request: SetTopic) -> None:
        async with permanent_errors("conversations.setTopic"):
            await self.as_member(
                request.channel_id,
                lambda: self.client.conversations_setTopic(
                    channel=request.channel_id, topic=messages.topic(request.brief)
                ),
            )

    async def archive(self, channel_id: str) -> None:
        try:
            async with permanent_errors("conversations.archive", "already_archived"):
                await self.client.conversations_archive(channel=channel_id)
        except SlackApiError as error:
            if slack_error(error) != "already_archived":
                raise

    async def invite(self, request: InviteUsers) -> InviteResult:
        """Invite in batches as large as Slack takes; if Slack refuses a batch, one by one to
        say who failed. A lookup that is only rate limited fails (and is retried); only a
        person Slack does not know is recorded as failed."""
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
        """A person-specific refusal is recorded; anything else fails the call."""
        code = slack_error(error)
        if code in ("already_in_channel", "cant_invite_self"):
            return
        if code in USER_ERRORS:
            result.failed[user] = code
            return
        if is_transient(error):
            raise error
        raise refused("conversations.invite", error) from error

    async def bookmark(self, channel: str, incident_id: str, links: list[Link]) -> None:
        """The incident in the Temporal UI, then ``links``; only what the channel lacks, so a
        retry adds only what is missing."""
        wanted = [Link(title="Incident in Temporal", url=self.incident_url(incident_id)), *links]
        async with permanent_errors("bookmarks.list"):
            listed = await self.as_member(
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

    async def as_member(
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

"""People in the Slack workspace: whoever a person or the policy names, as user ids.

The one resolver. ``U024BE7LH``, ``<@U024BE7LH>``, ``@bob``, ``bob`` and ``bob@example.com``
all name Bob; the policy may also name a user group (``S…``), which stands for its members.
Emails are asked with users.lookupByEmail, each once; handles are read from users.list,
paged and kept briefly, so a burst of names lists the workspace once. The entry points
resolve what people typed before a command reaches an incident; the activities resolve the
people the policy names, to invite and mention them.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from clients import Permanent
from clients.slack_client import permanent_errors, slack_error
from workflows.requests import DirectMessage
from workflows.text import MENTION, SLACK_USER_ID

MAX_GIVEN = 254  # the longest email address; anything longer names nobody
LIST_TTL = 60.0  # seconds a users.list snapshot answers handles
MISS_REFRESH = 5.0
PAGE_SIZE = 200
HISTORY_SCAN = 20  # a handoff DM a lost answer hid is among the last few of the conversation
USER_GROUP = re.compile(r"^S[A-Z0-9]{2,}$")
# Lookups that name a person Slack does not know; other failures (ratelimited) are retried.
LOOKUP_MISSES = frozenset({"users_not_found", "user_not_found", "no_such_subteam"})

log = structlog.get_logger()


class UnknownPerson(ValueError):
    """Nobody in the workspace answers to what was given.

    ``code`` is Slack's word for the miss (what an invitation records); ``field`` the field of
    a command that named them, once an entry point knows it.
    """

    def __init__(self, given: str, code: str = "user_not_found", field: str | None = None) -> None:
        self.given = given
        self.code = code
        self.field = field
        shown = given if len(given) <= 80 else given[:77] + "..."
        super().__init__(
            f"unknown person {shown!r}: not a Slack user id (like U024BE7LH), "
            "@handle or email of anyone in the workspace"
        )


class SlackPeople:
    """Who is who, asked through the bot's Web API client; without one, only ids are taken."""

    def __init__(
        self, client: AsyncWebClient | None, ttl: float = LIST_TTL, page_size: int = PAGE_SIZE
    ) -> None:
        self.client = client
        self.ttl = ttl
        self.page_size = page_size
        self._handles: dict[str, str] = {}
        self._emails: dict[str, str] = {}
        self._loaded_at = float("-inf")
        self._loading = asyncio.Lock()
        self._groups: dict[str, list[str]] = {}  # members by group id and by "@handle"
        self._groups_at = float("-inf")

    async def resolve(self, given: str) -> str:
        """The user id of whoever ``given`` names; ``UnknownPerson`` when nobody does."""
        text = given.strip()
        if not text or len(text) > MAX_GIVEN:
            raise UnknownPerson(given)
        mention = MENTION.fullmatch(text)
        if mention:
            return mention.group(1)
        if SLACK_USER_ID.match(text):
            return text
        name = text.removeprefix("@").lower()
        if self.client is None:  # no Slack to ask: only ids can be taken
            raise UnknownPerson(given)
        if "@" in name:
            return await self._by_email(name, given)
        found = await self._by_handle(name)
        if found is None:
            raise UnknownPerson(given)
        return found

    async def user_ids(self, target: str) -> list[str]:
        """The people a policy names: a user (id, ``@handle`` or email) or a user group's
        members. Anything else goes as it is: Slack says who it does not know."""
        if USER_GROUP.match(target) and self.client is not None:
            try:
                response = await self.client.usergroups_users_list(usergroup=target)
            except SlackApiError as error:
                if slack_error(error) in LOOKUP_MISSES:
                    raise UnknownPerson(target, slack_error(error)) from error
                raise
            return list(response["users"])
        if "@" in target:
            return [await self.resolve(target)]
        return [target]

    async def first_user(self, target: str) -> str | None:
        """The one person a role's holder names: a user (id, @handle, email) or a user group's
        first member; None when Slack knows nobody by it."""
        try:
            async with permanent_errors("users lookup"):
                found = await self.user_ids(target)
        except UnknownPerson:
            return None
        return next((user for user in found if SLACK_USER_ID.match(user)), None)

    async def mention_ids(self, people: list[str]) -> list[str]:
        """Policy people named by ``@handle`` or email become ids, so they are mentioned
        for real; someone Slack does not know stays plain (escaped) text."""
        ids: list[str] = []
        for who in people:
            try:
                async with permanent_errors("users lookup"):
                    found = await self.user_ids(who) if "@" in who else [who]
            except UnknownPerson:
                found = [who]
            ids.append(found[0] if len(found) == 1 else who)
        return ids

    async def answers_to(self, user: str, grantees: list[str]) -> list[str]:
        """Those of the policy's ``grantees`` (an @handle or email, a user group by id or
        @handle) that stand for ``user``: what the workflow cannot ask Slack itself."""
        found = []
        for grantee in grantees:
            try:
                if user in await self._standing_for(grantee):
                    found.append(grantee)
            except Exception as error:
                # Whatever failed, a grant nobody could check is not given; the refusal then
                # names the rule, and the log says why the grant was not found.
                log.warning("permission_lookup_failed", grantee=grantee, error=str(error))
        return found

    async def _standing_for(self, grantee: str) -> list[str]:
        if self.client is None:
            return []
        if USER_GROUP.match(grantee) or grantee.startswith("@"):
            person = await self._by_handle(grantee[1:].lower()) if grantee[0] == "@" else None
            return [person] if person else (await self._user_groups()).get(grantee.lower(), [])
        return [await self.resolve(grantee)]

    async def _user_groups(self) -> dict[str, list[str]]:
        """Every user group's members, by id and by @handle, from one usergroups.list that
        answers for ``ttl``: a group's members change, but not by the second."""
        if time.monotonic() - self._groups_at > self.ttl:
            assert self.client is not None
            listed = await self.client.usergroups_list(include_users=True)
            groups: dict[str, list[str]] = {}
            found: list[dict[str, Any]] = listed.get("usergroups", [])
            for group in found:
                members = [str(user) for user in group.get("users") or []]
                for name in (str(group["id"]), "@" + str(group["handle"])):
                    groups[name.lower()] = members
            self._groups, self._groups_at = groups, time.monotonic()
        return self._groups

    async def _by_email(self, email: str, given: str) -> str:
        assert self.client is not None
        if email in self._emails:
            return self._emails[email]
        try:
            answer = await self.client.users_lookupByEmail(email=email)
        except SlackApiError as error:
            if slack_error(error) in LOOKUP_MISSES:
                raise UnknownPerson(given, slack_error(error)) from None
            raise
        user_id = str(answer["user"]["id"])
        self._emails[email] = user_id
        return user_id

    async def _by_handle(self, handle: str) -> str | None:
        age = time.monotonic() - self._loaded_at
        # A name we do not know may be someone who just joined; reading the list again is
        # allowed, but not more than once per MISS_REFRESH, so typos cannot page it in a loop.
        if age > self.ttl or (handle not in self._handles and age > MISS_REFRESH):
            await self._load()
        return self._handles.get(handle)

    async def _load(self) -> None:
        loaded_at = self._loaded_at
        async with self._loading:
            if self._loaded_at != loaded_at:  # someone else read it while we waited
                return
            assert self.client is not None
            handles: dict[str, str] = {}
            cursor: str | None = None
            while True:
                page = await self.client.users_list(limit=self.page_size, cursor=cursor)
                members: list[dict[str, Any]] = page.get("members", [])
                for member in members:
                    _remember(handles, member)
                cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
                if not cursor:
                    break
            self._handles = handles
            self._loaded_at = time.monotonic()


def _remember(handles: dict[str, str], member: dict[str, Any]) -> None:
    """A member's handles; emails are asked one by one (users.lookupByEmail), since the list
    shows them only with the users:read.email scope."""
    if member.get("deleted"):
        return
    user_id = str(member["id"])
    profile = member.get("profile") or {}
    for name in (member.get("name"), profile.get("display_name")):
        if name:
            handles.setdefault(str(name).lower(), user_id)


class SlackHandoffs:
    """What an on-call handoff says in Slack: a direct message, sent once per key across
    retries, and a user group (by its handle) set to whoever is on call."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def tell(self, message: DirectMessage, retried: bool) -> None:
        async with permanent_errors("conversations.open"):
            opened = await self.client.conversations_open(users=message.user)
        channel, key = str(opened["channel"]["id"]), message.key
        if retried and await self._told(channel, key):
            return
        async with permanent_errors("chat.postMessage"):
            await self.client.chat_postMessage(
                channel=channel,
                text=message.text,
                metadata={"event_type": "oncall_handoff", "event_payload": {"key": key}},
            )

    async def _told(self, channel: str, key: str) -> bool:
        async with permanent_errors("conversations.history"):
            response = await self.client.conversations_history(
                channel=channel, limit=HISTORY_SCAN, include_all_metadata=True
            )
        return any(
            m.get("metadata", {}).get("event_payload", {}).get("key") == key
            for m in response["messages"]
        )

    async def fill_group(self, handle: str, users: list[str]) -> None:
        """The group holds exactly ``users`` (setting the same members twice is harmless, so
        a retry needs no check)."""
        async with permanent_errors("usergroups.list"):
            listed = await self.client.usergroups_list()
        group = next((g for g in listed["usergroups"] if g["handle"] == handle), None)
        if group is None:
            raise Permanent(f"no Slack user group @{handle}", "SlackError")
        async with permanent_errors("usergroups.users.update"):
            await self.client.usergroups_users_update(usergroup=group["id"], users=",".join(users))

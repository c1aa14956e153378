"""People by name: every entry point turns what a person typed into a Slack user id, once.

``U024BE7LH``, ``<@U024BE7LH>``, ``@bob``, ``bob`` and ``bob@example.com`` all name Bob. The
directory asks Slack (users.lookupByEmail, users.list paged and kept briefly), so the workflow
only ever sees ids; an unknown person is refused at the door, naming what was given.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any, get_args, get_origin

from pydantic import AliasChoices, BaseModel
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from workflows.text import MENTION, SLACK_USER_ID, slack_user_id

MAX_GIVEN = 254  # the longest email address; anything longer names nobody
LIST_TTL = 60.0  # seconds a users.list snapshot answers handles
MISS_REFRESH = 5.0
PAGE_SIZE = 200


class UnknownPerson(ValueError):
    """Nobody in the workspace answers to what was given."""

    def __init__(self, given: str, field: str | None = None) -> None:
        self.given = given
        self.field = field
        shown = given if len(given) <= 80 else given[:77] + "..."
        super().__init__(
            f"unknown person {shown!r}: not a Slack user id (like U024BE7LH), "
            "@handle or email of anyone in the workspace"
        )


class Directory:
    """Who is who in the Slack workspace, asked through the bot's Web API client."""

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

    async def _by_email(self, email: str, given: str) -> str:
        assert self.client is not None
        if email in self._emails:
            return self._emails[email]
        try:
            answer = await self.client.users_lookupByEmail(email=email)
        except SlackApiError as error:
            if error.response.get("error") == "users_not_found":
                raise UnknownPerson(given) from None
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
                    _remember(handles, self._emails, member)
                cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
                if not cursor:
                    break
            self._handles = handles
            self._loaded_at = time.monotonic()


def _remember(handles: dict[str, str], emails: dict[str, str], member: dict[str, Any]) -> None:
    if member.get("deleted"):
        return
    user_id = str(member["id"])
    profile = member.get("profile") or {}
    for name in (member.get("name"), profile.get("display_name")):
        if name:
            handles.setdefault(str(name).lower(), user_id)
    if profile.get("email"):
        emails[str(profile["email"]).lower()] = user_id


def person_fields(model: type[BaseModel]) -> list[str]:
    """The keys of a command (or declaration) that name people, found by their type."""
    keys: list[str] = []
    for name, field in model.model_fields.items():
        if _names_people(field.annotation) or any(_is_user_id(m) for m in field.metadata):
            keys.append(name)
            if isinstance(field.validation_alias, AliasChoices):
                keys.extend(c for c in field.validation_alias.choices if isinstance(c, str))
    return list(dict.fromkeys(keys))


def _is_user_id(metadata: object) -> bool:
    return getattr(metadata, "func", None) is slack_user_id


def _names_people(annotation: object) -> bool:
    if get_origin(annotation) is Annotated:
        return any(_is_user_id(m) for m in get_args(annotation)[1:])
    return any(_names_people(arg) for arg in get_args(annotation))


async def resolve_fields(
    directory: Directory, model: type[BaseModel], data: dict[str, Any]
) -> dict[str, Any]:
    """``data`` with every person in ``model``'s people fields given as a user id."""
    resolved = dict(data)
    for field in person_fields(model):
        value = data.get(field)
        try:
            if isinstance(value, str):
                resolved[field] = await directory.resolve(value)
            elif isinstance(value, list) and all(isinstance(v, str) for v in value):
                resolved[field] = [await directory.resolve(v) for v in value]
        except UnknownPerson as error:
            error.field = field
            raise
    return resolved

"""People as the policy names them (ids, @handles, user groups, emails), found in Slack."""

from __future__ import annotations

import re

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from clients.slack_client import permanent_errors, slack_error

USER_GROUP = re.compile(r"^S[A-Z0-9]{2,}$")
# Lookups that name a person Slack does not know; other failures (ratelimited) are retried.
LOOKUP_MISSES = frozenset({"users_not_found", "user_not_found", "no_such_subteam"})


class UnknownPerson(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class SlackPeople:
    """Looks people up through the Web API; failures other than "no such person" go up."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def user_ids(self, target: str) -> list[str]:
        """Policy people may be users (U…), ``@handles``, user groups (S…) or emails."""
        try:
            if target.startswith("@"):
                return [await self.user_by_handle(target[1:])]
            if "@" in target:
                response = await self.client.users_lookupByEmail(email=target)
                return [response["user"]["id"]]
            if USER_GROUP.match(target):
                response = await self.client.usergroups_users_list(usergroup=target)
                return list(response["users"])
        except SlackApiError as error:
            if slack_error(error) in LOOKUP_MISSES:
                raise UnknownPerson(slack_error(error)) from error
            raise
        return [target]

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

    async def user_by_handle(self, handle: str) -> str:
        async for page in await self.client.users_list(limit=1000):
            for user in page["members"]:
                profile = user.get("profile", {})
                if handle in (user.get("name"), profile.get("display_name")):
                    return str(user["id"])
        raise UnknownPerson("user_not_found")

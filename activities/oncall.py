"""On-call handoffs in Slack, as Temporal activities: people resolved, a direct message to the
incoming and outgoing person, and the schedule's user group set to whoever is on call."""

from __future__ import annotations

import structlog
from pydantic import BaseModel, Field
from slack_sdk.web.async_client import AsyncWebClient
from temporalio import activity

from activities import non_retryable
from clients import Permanent
from clients.slack_client import permanent_errors
from clients.slack_people import SlackPeople
from workflows.text import SLACK_USER_ID

HISTORY_SCAN = 20  # a handoff DM a lost answer hid is among the last few of the conversation
MAX_PEOPLE = 100
log = structlog.get_logger()


class ResolvePeople(BaseModel):
    people: list[str] = Field(max_length=MAX_PEOPLE)  # ids, @handles, emails as in the policy


class DirectMessage(BaseModel):
    user: str = Field(max_length=64)
    text: str = Field(max_length=3000)  # already escaped: built from ids, names and times
    key: str = Field(max_length=200)  # the same handoff's message is sent once, across retries


class SetUserGroup(BaseModel):
    handle: str = Field(max_length=80)
    users: list[str] = Field(min_length=1, max_length=MAX_PEOPLE)


class OncallActivities:
    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self.people = SlackPeople(client)

    @activity.defn(name="oncall_resolve_people")
    async def resolve_people(self, request: ResolvePeople) -> list[str]:
        """Ids for people named as elsewhere in the policy; someone Slack does not know stays
        as written (never mentioned, never messaged) and is logged."""
        with non_retryable():
            ids = await self.people.mention_ids(request.people)
        for given, found in zip(request.people, ids, strict=True):
            if not SLACK_USER_ID.match(found):
                log.warning("oncall_person_unknown", person=given)
        return ids

    @activity.defn(name="oncall_direct_message")
    async def direct_message(self, message: DirectMessage) -> None:
        with non_retryable():
            async with permanent_errors("conversations.open"):
                opened = await self.client.conversations_open(users=message.user)
            channel = str(opened["channel"]["id"])
            if activity.info().attempt > 1 and await self._sent_before(channel, message.key):
                return
            async with permanent_errors("chat.postMessage"):
                await self.client.chat_postMessage(
                    channel=channel,
                    text=message.text,
                    metadata={
                        "event_type": "oncall_handoff",
                        "event_payload": {"key": message.key},
                    },
                )

    async def _sent_before(self, channel: str, key: str) -> bool:
        async with permanent_errors("conversations.history"):
            response = await self.client.conversations_history(
                channel=channel, limit=HISTORY_SCAN, include_all_metadata=True
            )
        return any(
            m.get("metadata", {}).get("event_payload", {}).get("key") == key
            for m in response["messages"]
        )

    @activity.defn(name="oncall_set_user_group")
    async def set_user_group(self, request: SetUserGroup) -> None:
        """The group named by its handle holds exactly the on-call people (setting the same
        members twice is harmless, so a retry needs no check)."""
        with non_retryable():
            async with permanent_errors("usergroups.list"):
                listed = await self.client.usergroups_list()
            group = next((g for g in listed["usergroups"] if g["handle"] == request.handle), None)
            if group is None:
                raise Permanent(f"no Slack user group @{request.handle}", "SlackError")
            async with permanent_errors("usergroups.users.update"):
                await self.client.usergroups_users_update(
                    usergroup=group["id"], users=",".join(request.users)
                )

"""Slack side effects of an incident, as Temporal activities over ``clients.slack``.

Every client method is idempotent (a retry finds its own work); what is added here is the
Temporal part: the attempt number (a retry checks for an earlier copy before posting), the
heartbeat details that carry channel names of unknown outcome, and ``non_retryable`` for the
Slack errors that retrying cannot fix, which the workflow records on the timeline.
"""

from __future__ import annotations

from temporalio import activity

from activities import non_retryable
from clients.slack import Slack
from workflows.effects import PostMessage
from workflows.models import Channel
from workflows.requests import (
    AddBookmarks,
    ChannelRef,
    EditKickoff,
    InviteResult,
    InviteUsers,
    OpenChannel,
    Posted,
    SetTopic,
)


class SlackActivities:
    def __init__(self, slack: Slack) -> None:
        self.slack = slack

    @activity.defn(name="slack_open_channel")
    async def open_channel(self, request: OpenChannel) -> Channel:
        """Before each create the name goes into the heartbeat details as "outcome unknown",
        so a retry may adopt the channel an attempt made and lost the answer of."""
        details = activity.info().heartbeat_details
        unknown: list[str] = [str(name) for name in details[0]] if details else []
        with non_retryable():
            return await self.slack.channels.create(request, unknown, activity.heartbeat)

    @activity.defn(name="slack_set_topic")
    async def set_topic(self, request: SetTopic) -> None:
        with non_retryable():
            await self.slack.channels.set_topic(request)

    @activity.defn(name="slack_archive_channel")
    async def archive_channel(self, request: ChannelRef) -> None:
        with non_retryable():
            await self.slack.channels.archive(request.channel_id)

    @activity.defn(name="slack_invite")
    async def invite(self, request: InviteUsers) -> InviteResult:
        with non_retryable():
            return await self.slack.channels.invite(request)

    @activity.defn(name="slack_post_message")
    async def post_message(self, request: PostMessage) -> Posted:
        check_first = request.post.check_first or activity.info().attempt > 1
        with non_retryable():
            return await self.slack.posts.post(request, check_first)

    @activity.defn(name="slack_add_bookmarks")
    async def add_bookmarks(self, request: AddBookmarks) -> None:
        with non_retryable():
            await self.slack.channels.bookmark(
                request.channel_id, request.incident_id, request.links
            )

    @activity.defn(name="slack_update_kickoff")
    async def update_kickoff(self, request: EditKickoff) -> None:
        with non_retryable():
            await self.slack.posts.update_kickoff(request)

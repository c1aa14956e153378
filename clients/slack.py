"""The incident's Slack, over one Web API client: its channels, its posts and its people."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from clients import Permanent, messages
from clients.messages import escape
from clients.slack_channels import SlackChannels
from clients.slack_client import permanent_errors, slack_error
from clients.slack_people import SlackHandoffs, SlackPeople, UnknownPerson
from workflows.effects import Audience, Notice, Post, PostMessage
from workflows.requests import EditKickoff, Posted
from workflows.resolution.metrics import IncidentMetrics, digest

# Incident notices in Slack: posted once, pinned, edited; and the periodic digest.
#
# Posting is idempotent when asked to check first: a post carries the incident and a key in its
# metadata, and a retry looks for it in the channel's history since the first try before posting
# again. Since then, not "the newest 200": in a busy #incidents, 200 messages go by in the minute
# an activity's retry waits, and a copy older than the window was posted a second time.
UPDATE_TEXT_LIMIT = 4000  # chat.update's reference: tighter than chat.postMessage
CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{6,}$")
HISTORY_PAGE = 200
HISTORY_PAGES = 50  # 10,000 messages since the first try: a bound, not a window
CLOCK_SKEW = timedelta(minutes=5)  # between the worker's clock and Slack's stamps
log = structlog.get_logger()


class SlackPosts:
    def __init__(self, channels: SlackChannels, broadcast_channel: str) -> None:
        self.channels = channels
        self.client = channels.client
        self.broadcast_channel = broadcast_channel
        self._broadcast_id: str | None = None
        self._joined_ids: dict[str, str] = {}  # other channels named, by name

    async def post(self, request: PostMessage, tried_since: datetime | None) -> Posted:
        """Post the notice unless an earlier try's copy is there, looked for in what the
        channel got since ``tried_since`` (None: nothing was tried before); pin it."""
        channel = request.channel_id or await self._broadcast()
        if channel.startswith("#"):  # a channel an automation names: found and joined once
            channel = await self._joined(channel)
        if "@" in channel:  # a page's direct message to someone the policy names by handle
            channel = await self._person(channel)
        if channel.startswith(("U", "W")):
            # A reminder to one person goes to their direct message with the app, whose id the
            # duplicate check below needs (Slack's history takes a channel, not a user).
            async with permanent_errors("conversations.open"):
                opened = await self.client.conversations_open(users=channel)
            channel = str(opened["channel"]["id"])
        post, brief = request.post, request.brief
        # The broadcast channel keeps one message per incident: the rest replies in its thread.
        thread = brief.announcement if request.channel_id is None else None
        thread_ts = thread.ts if thread and post.key != "announcement" else None
        already = None
        if tried_since is not None:
            already = await self._posted_before(channel, brief.id, post.key, tried_since, thread_ts)
        if already is None:
            mentions = await self.channels.people.mention_ids(post.mentions)
            pairs = zip(post.mentions, mentions, strict=True)
            why = {new: post.why[old] for old, new in pairs if old in post.why}
            post = post.model_copy(update={"mentions": mentions, "why": why})
            text, blocks = messages.render(post, brief, self.channels.incident_url(brief.id))
            async with permanent_errors("chat.postMessage"):
                response = await self.channels.as_member(
                    channel,
                    lambda: self.client.chat_postMessage(
                        channel=channel,
                        text=text,
                        blocks=blocks,
                        unfurl_links=False,
                        metadata=messages.metadata(brief.id, post.key),
                        thread_ts=thread_ts,
                        reply_broadcast=brief.broadcast_replies if thread_ts else None,
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
        posted = Posted(channel_id=channel, ts=already)
        if post.pin:
            await self.pin(posted)
        return posted

    async def _person(self, given: str) -> str:
        try:
            async with permanent_errors("users lookup"):
                return (await self.channels.people.user_ids(given))[0]
        except UnknownPerson as unknown:
            raise Permanent(f"nobody answers to {given}: {unknown.code}", "SlackError") from None

    async def update_kickoff(self, request: EditKickoff) -> None:
        """Edit the pinned kickoff (or the broadcast announcement) to show the incident as it is
        now; repeating is harmless."""
        brief, announcement = request.brief, request.announcement
        post = Post(
            key="announcement" if announcement else "kickoff",
            notice=Notice.ANNOUNCEMENT if announcement else Notice.KICKOFF,
            audience=[Audience.BROADCAST if announcement else Audience.CHANNEL],
            actor=brief.declared_by,
            text=brief.summary,
        )
        text, blocks = messages.render(post, brief, self.channels.incident_url(brief.id))
        async with permanent_errors("chat.update"):
            await self.client.chat_update(
                channel=request.channel_id,
                ts=request.ts,
                text=messages.cut(text, UPDATE_TEXT_LIMIT),
                blocks=blocks,
            )

    async def post_digest(self, metrics: IncidentMetrics, key: str, check_first: bool) -> None:
        """The digest in the broadcast channel, once per ``key`` (the digest run)."""
        channel = self.broadcast_channel.lstrip("#")
        if check_first and await self._digest_posted(channel, key):
            return
        async with permanent_errors("chat.postMessage"):
            await self.client.chat_postMessage(
                channel=channel,
                text=":bar_chart: *Incident digest*\n" + digest(metrics, escape),
                unfurl_links=False,
                metadata={"event_type": "incident_digest", "event_payload": {"key": key}},
            )

    async def _digest_posted(self, channel: str, key: str) -> bool:
        async with permanent_errors("conversations.list"):
            async for page in await self.client.conversations_list(limit=1000):
                channel = next(
                    (c["id"] for c in page["channels"] if channel in (c["name"], c["id"])), channel
                )
        async with permanent_errors("conversations.history"):
            response = await self.client.conversations_history(
                channel=channel, limit=50, include_all_metadata=True
            )
        return any(
            m.get("metadata", {}).get("event_payload", {}).get("key") == key
            for m in response["messages"]
        )

    async def pin(self, posted: Posted) -> None:
        channel, ts = posted.channel_id, posted.ts
        try:
            async with permanent_errors("pins.add", "already_pinned"):
                await self.channels.as_member(
                    channel, lambda: self.client.pins_add(channel=channel, timestamp=ts)
                )
        except SlackApiError as error:
            if slack_error(error) != "already_pinned":
                raise

    async def _posted_before(
        self, channel: str, incident_id: str, key: str, since: datetime, thread_ts: str | None
    ) -> str | None:
        """The ts of this notice if an earlier try posted it after all: in the channel's
        history, or a reply in the thread of ``thread_ts`` (history leaves replies out)."""
        oldest = f"{(since - CLOCK_SKEW).timestamp():.6f}"
        cursor: str | None = None
        for _ in range(HISTORY_PAGES):
            async with permanent_errors(
                "conversations.replies" if thread_ts else "conversations.history"
            ):
                if thread_ts:
                    response = await self.client.conversations_replies(
                        channel=channel,
                        ts=thread_ts,
                        oldest=oldest,
                        limit=HISTORY_PAGE,
                        cursor=cursor,
                        include_all_metadata=True,
                    )
                else:
                    response = await self.client.conversations_history(
                        channel=channel,
                        oldest=oldest,
                        limit=HISTORY_PAGE,
                        cursor=cursor,
                        include_all_metadata=True,
                    )
            for message in response["messages"]:
                payload = message.get("metadata", {}).get("event_payload", {})
                if payload.get("incident_id") == incident_id and payload.get("key") == key:
                    return str(message["ts"])
            cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
            if cursor is None:
                return None
        log.warning(
            "duplicate_check_cut_short", incident_id=incident_id, key=key, pages=HISTORY_PAGES
        )
        return None

    async def _broadcast(self) -> str:
        """The broadcast channel's id, from its name once per worker; joined if need be."""
        if self._broadcast_id is None:
            self._broadcast_id = await self._joined(self.broadcast_channel, "broadcast channel")
        return self._broadcast_id

    async def _joined(self, name: str, what: str = "channel") -> str:
        """A channel's id from its name (or id), once per worker; joined if need be."""
        wanted = name.lstrip("#")
        if CHANNEL_ID.match(wanted):
            return wanted
        if wanted not in self._joined_ids:
            found = await self.channels.named(wanted)
            if found is None:
                raise Permanent(f"{what} #{wanted} does not exist", "SlackError")
            if not found.get("is_member", True):
                async with permanent_errors("conversations.join"):
                    await self.client.conversations_join(channel=found["id"])
            self._joined_ids[wanted] = str(found["id"])
        return self._joined_ids[wanted]


class Slack:
    """Built once per process, so the bot's id and the broadcast channel's are looked up once."""

    def __init__(
        self, client: AsyncWebClient, broadcast_channel: str, incident_url: Callable[[str], str]
    ) -> None:
        self.client = client
        self.people = SlackPeople(client)
        self.channels = SlackChannels(client, self.people, incident_url)
        self.posts = SlackPosts(self.channels, broadcast_channel)
        self.handoffs = SlackHandoffs(client)

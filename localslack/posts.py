"""What is written into a channel: messages, edits, pins, bookmarks and Slack's own notices,
with Slack's limits on each, and its posting rate when asked to enforce it."""

import time
from collections.abc import Callable
from typing import Any

from .channel import Channel, Message, Pin, stamp
from .content import Content
from .errors import SlackError
from .seed import APP_ID, BOT_ID, BOT_USER_ID, TEAM_ID

MAX_PINS = 100
MAX_BOOKMARKS = 100
# Slack allows one message per second per channel "with short bursts"; three is a burst.
POST_BURST = 3.0
POSTS_PER_SECOND = 1.0

_EDITABLE = (None, "thread_broadcast")


def writable(channel: Channel, actor: str, *, archived: str = "is_archived") -> None:
    """Slack's refusal of a write to an archived channel, or by someone not in it."""
    if channel.is_archived:
        raise SlackError(archived)
    if actor not in channel.members:
        raise SlackError("not_in_channel")


class Posts:
    def __init__(
        self,
        next_ts: Callable[[], str],
        new_id: Callable[[str], str],
        per_channel_rate_limit: bool,
    ) -> None:
        self.next_ts = next_ts
        self.new_id = new_id
        self.per_channel_rate_limit = per_channel_rate_limit
        self._budget: dict[str, tuple[float, float]] = {}

    @staticmethod
    def _author(actor: str) -> dict[str, Any]:
        author: dict[str, Any] = {"user": actor, "team": TEAM_ID}
        if actor == BOT_USER_ID:
            author.update(bot_id=BOT_ID, app_id=APP_ID)
        return author

    def system(self, channel: Channel, actor: str, subtype: str, text: str) -> Message:
        """The notices Slack itself writes into a channel (joins, topic changes...)."""
        message: Message = {"type": "message", "subtype": subtype, "ts": self.next_ts()}
        message.update(self._author(actor))
        message["text"] = text
        channel.add(message)
        return message

    def _spend_post(self, channel_id: str) -> None:
        now = time.monotonic()
        tokens, then = self._budget.get(channel_id, (POST_BURST, now))
        tokens = min(POST_BURST, tokens + (now - then) * POSTS_PER_SECOND)
        if tokens < 1:
            raise SlackError("ratelimited", status=429, retry_after=1)
        self._budget[channel_id] = (tokens - 1, now)

    def post(
        self,
        channel: Channel,
        actor: str,
        content: Content,
        *,
        thread_ts: str | None = None,
        broadcast: bool = False,
        as_outsider: bool = False,
    ) -> Message:
        if not (as_outsider and not channel.is_archived):
            writable(channel, actor)
        if self.per_channel_rate_limit:
            self._spend_post(channel.id)
        message: Message = {"type": "message", "ts": self.next_ts()}
        message.update(self._author(actor))
        message.update(content.fields())
        if thread_ts:
            message["thread_ts"] = thread_ts
            if broadcast:
                message["subtype"] = "thread_broadcast"
            parent = channel.by_ts.get(thread_ts)
            # A reply to a reply lands in the same thread without making it a parent.
            if parent is not None and parent.get("thread_ts", thread_ts) == thread_ts:
                _count_reply(parent, message)
        channel.add(message)
        return message

    def update(self, channel: Channel, ts: str, actor: str, content: Content) -> Message:
        if channel.is_archived:
            raise SlackError("is_inactive")
        message = channel.by_ts.get(ts)
        if message is None:
            raise SlackError("message_not_found")
        if message.get("user") != actor or message.get("subtype") not in _EDITABLE:
            raise SlackError("cant_update_message")
        # Fields left out keep their value; an empty blocks list removes the blocks.
        message.update(content.fields())
        if message.get("blocks") == []:
            del message["blocks"]
        message["edited"] = {"user": actor, "ts": self.next_ts()}
        return message

    def pin(self, channel: Channel, ts: str, actor: str) -> None:
        if actor not in channel.members:
            raise SlackError("not_in_channel")
        try:
            stamp(ts)
        except ValueError:
            raise SlackError("bad_timestamp") from None
        message = channel.by_ts.get(ts)
        if message is None:
            raise SlackError("message_not_found")
        if ts in channel.pins:
            raise SlackError("already_pinned")
        if len(channel.pins) >= MAX_PINS:
            raise SlackError("too_many_pins")
        channel.pins[ts] = Pin(int(time.time()), actor)
        message["pinned_to"] = [channel.id]

    def add_bookmark(
        self, channel: Channel, actor: str, *, title: str, kind: str, link: str, emoji: str
    ) -> dict[str, Any]:
        writable(channel, actor)
        if kind != "link":
            raise SlackError("invalid_bookmark_type")
        if not link.startswith(("http://", "https://")):
            raise SlackError("invalid_link")
        if len(channel.bookmarks) >= MAX_BOOKMARKS:
            raise SlackError("too_many_bookmarks")
        bookmark = {
            "id": self.new_id("Bk"),
            "channel_id": channel.id,
            "title": title,
            "link": link,
            "emoji": emoji or None,
            "icon_url": None,
            "type": kind,
            "entity_id": None,
            "date_created": int(time.time()),
            "date_updated": 0,
            "rank": chr(ord("a") + len(channel.bookmarks) % 26),
            "last_updated_by_user_id": actor,
            "last_updated_by_team_id": TEAM_ID,
            "shortcut_id": None,
            "app_id": APP_ID if actor == BOT_USER_ID else None,
        }
        channel.bookmarks.append(bookmark)
        return bookmark


def _count_reply(parent: Message, reply: Message) -> None:
    parent["thread_ts"] = parent["ts"]
    parent["reply_count"] = parent.get("reply_count", 0) + 1
    users: list[str] = parent.setdefault("reply_users", [])
    if reply["user"] not in users:
        users.append(reply["user"])
    parent["reply_users_count"] = len(users)
    parent["latest_reply"] = reply["ts"]

"""Channels and what is written into them: messages, edits, pins, bookmarks and Slack's own
notices, with Slack's limits on each, and its posting rate when asked to enforce it."""

import bisect
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .errors import Content, SlackError
from .seed import APP_ID, BOT_ID, BOT_USER_ID, TEAM_ID

# A conversation and its messages, kept in the order Slack serves them.
Message = dict[str, Any]


def stamp(ts: str) -> int:
    """A Slack ts ("1700000000.000100") as integer microseconds, for exact ordering."""
    seconds, _, fraction = ts.strip().partition(".")
    if not seconds.isdigit() or (fraction and not fraction.isdigit()):
        raise ValueError(f"not a Slack timestamp: {ts!r}")
    return int(seconds) * 1_000_000 + int((fraction + "000000")[:6])


def format_stamp(micros: int) -> str:
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def in_history(message: Message) -> bool:
    """Thread replies stay out of conversations.history unless broadcast to the channel."""
    thread_ts = message.get("thread_ts")
    return (
        thread_ts is None
        or thread_ts == message["ts"]
        or message.get("subtype") == "thread_broadcast"
    )


class Pin(NamedTuple):
    at: int
    by: str


class Setter(NamedTuple):
    """Who last set a topic or purpose, and when."""

    creator: str
    last_set: int


@dataclass(eq=False)
class Channel:
    id: str
    name: str
    creator: str
    created: int
    is_private: bool = False
    is_general: bool = False
    is_im: bool = False
    is_mpim: bool = False
    is_archived: bool = False
    topic: str = ""
    purpose: str = ""
    # "topic" / "purpose" -> who set it; kept apart so the texts read as plain strings.
    set_by: dict[str, Setter] = field(default_factory=dict)
    members: list[str] = field(default_factory=list)
    # Every message, thread replies included, oldest first; ts only grows, so the list
    # stays sorted and time windows are found by bisection.
    messages: list[Message] = field(default_factory=list)
    by_ts: dict[str, Message] = field(default_factory=dict)
    # ts -> pin; dicts keep insertion order, which is pin order.
    pins: dict[str, Pin] = field(default_factory=dict)
    bookmarks: list[dict[str, Any]] = field(default_factory=list)
    previous_names: list[str] = field(default_factory=list)

    @property
    def is_channel(self) -> bool:
        return not (self.is_im or self.is_mpim)

    @property
    def members_only(self) -> bool:
        """Only members can see it: private channels and direct messages."""
        return self.is_private or not self.is_channel

    def describe(self, kind: str, value: str, setter: Setter) -> None:
        """Sets the topic or the purpose (`kind`)."""
        setattr(self, kind, value)
        self.set_by[kind] = setter

    def topic_json(self, kind: str) -> dict[str, Any]:
        setter = self.set_by.get(kind, Setter("", 0))
        value: str = getattr(self, kind)
        return {"value": value, "creator": setter.creator, "last_set": setter.last_set}

    def add(self, message: Message) -> None:
        self.messages.append(message)
        self.by_ts[message["ts"]] = message

    def newest_first(self, after: int | None, before: int | None) -> Iterator[Message]:
        """History messages strictly between two stamps, newest first, as Slack pages them."""
        lo = 0 if after is None else bisect.bisect_right(self.messages, after, key=_stamp_of)
        hi = len(self.messages)
        if before is not None:
            hi = bisect.bisect_left(self.messages, before, key=_stamp_of)
        for i in range(hi - 1, lo - 1, -1):
            if in_history(self.messages[i]):
                yield self.messages[i]


def _stamp_of(message: Message) -> int:
    return stamp(message["ts"])


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
        emit: Callable[[dict[str, Any]], None],
    ) -> None:
        self.next_ts = next_ts
        self.new_id = new_id
        # What happened, as the Events API tells an app (the console delivers it).
        self.emit = emit
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
        message = self.item(channel, ts)
        if ts in channel.pins:
            raise SlackError("already_pinned")
        if len(channel.pins) >= MAX_PINS:
            raise SlackError("too_many_pins")
        channel.pins[ts] = Pin(int(time.time()), actor)
        message["pinned_to"] = [channel.id]
        self._pin_event("pin_added", channel, message, actor)

    def unpin(self, channel: Channel, ts: str, actor: str) -> None:
        message = self.item(channel, ts)
        if channel.pins.pop(ts, None) is None:
            raise SlackError("no_pin")
        message.pop("pinned_to", None)
        self._pin_event("pin_removed", channel, message, actor)

    def _pin_event(self, kind: str, channel: Channel, message: Message, actor: str) -> None:
        item = {"type": "message", "channel": channel.id, "message": message}
        self.emit({"type": kind, "user": actor, "channel_id": channel.id, "item": item})

    def item(self, channel: Channel, ts: str) -> Message:
        try:
            stamp(ts)
        except ValueError:
            raise SlackError("bad_timestamp") from None
        message = channel.by_ts.get(ts)
        if message is None:
            raise SlackError("message_not_found")
        return message

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

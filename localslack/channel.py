"""A conversation and its messages, kept in the order Slack serves them."""

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

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

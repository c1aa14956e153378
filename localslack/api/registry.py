"""How a Web API method is declared, given its arguments and paged, and the shapes its
answers share."""

import base64
import binascii
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..errors import SlackError
from ..posts import Channel, Message, Pin
from ..workspace import Workspace


# Objects as Slack's responses spell them.
def channel_json(channel: Channel, viewer: str) -> dict[str, Any]:
    if channel.is_im:
        other = next((m for m in channel.members if m != viewer), viewer)
        return {
            "id": channel.id,
            "created": channel.created,
            "is_im": True,
            "is_org_shared": False,
            "user": other,
            "is_user_deleted": False,
            "priority": 0,
        }
    return {
        "id": channel.id,
        "name": channel.name,
        "is_channel": channel.is_channel,
        "is_group": False,
        "is_im": False,
        "is_mpim": channel.is_mpim,
        "is_private": channel.is_private or channel.is_mpim,
        "created": channel.created,
        "creator": channel.creator,
        "is_archived": channel.is_archived,
        "is_general": channel.is_general,
        "unlinked": 0,
        "name_normalized": channel.name,
        "is_shared": False,
        "is_ext_shared": False,
        "is_org_shared": False,
        "pending_shared": [],
        "is_pending_ext_shared": False,
        "is_member": viewer in channel.members,
        "topic": channel.topic_json("topic"),
        "purpose": channel.topic_json("purpose"),
        "previous_names": list(channel.previous_names),
        "num_members": len(channel.members),
    }


def history_message(message: Message, with_metadata: bool) -> Message:
    if with_metadata or "metadata" not in message:
        return message
    return {k: v for k, v in message.items() if k != "metadata"}


def pin_json(channel: Channel, ts: str, pin: Pin) -> dict[str, Any]:
    return {
        "type": "message",
        "channel": channel.id,
        "created": pin.at,
        "created_by": pin.by,
        "message": channel.by_ts[ts],
    }


T = TypeVar("T")
Body = dict[str, Any]


@dataclass(frozen=True)
class Args:
    """One call's arguments, already merged from query, form or JSON body."""

    raw: Mapping[str, Any]
    actor: str
    scopes: frozenset[str] = frozenset()  # what the caller's token was granted

    def text(self, name: str, default: str = "") -> str:
        value = self.raw.get(name)
        return default if value is None else str(value)

    def optional(self, name: str) -> str | None:
        value = self.raw.get(name)
        return None if value is None or value == "" else str(value)

    def flag(self, name: str) -> bool:
        return str(self.raw.get(name, "")).lower() in ("1", "true")

    def number(self, name: str, default: int, *, high: int, error: str = "invalid_limit") -> int:
        value = self.raw.get(name)
        if value is None or value == "":
            return default
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise SlackError(error) from None
        if number < 0:
            raise SlackError(error)
        # Slack treats 0 as "use the default" and quietly caps large limits.
        return min(number, high) if number else default

    def ids(self, name: str) -> list[str]:
        value = self.raw.get(name)
        items = value if isinstance(value, list) else str(value or "").split(",")
        return [str(item).strip() for item in items if str(item).strip()]


Handler = Callable[[Workspace, Args], Body]


@dataclass(frozen=True)
class Method:
    handler: Handler
    # argument -> the error Slack answers when it is missing
    required: Mapping[str, str] = field(default_factory=dict)

    def invoke(
        self,
        workspace: Workspace,
        raw: Mapping[str, Any],
        actor: str,
        scopes: frozenset[str] = frozenset(),
    ) -> Body:
        for name, error in self.required.items():
            if raw.get(name) is None:
                raise _missing(name, error)
        return {"ok": True, **self.handler(workspace, Args(raw, actor, scopes))}


def _missing(name: str, error: str) -> SlackError:
    if error != "invalid_arguments":
        return SlackError(error)
    # Slack's generic answer names the field, which saves a trip to the docs.
    messages = [f"[ERROR] missing required field: {name}"]
    return SlackError(error, extra={"response_metadata": {"messages": messages}})


METHODS: dict[str, Method] = {}


def method(api_name: str, /, **required: str) -> Callable[[Handler], Handler]:
    """Registers a handler; `required` maps each required argument to Slack's error."""

    def register(handler: Handler) -> Handler:
        METHODS[api_name] = Method(handler, required)
        return handler

    return register


def encode_cursor(marker: str) -> str:
    return base64.b64encode(marker.encode()).decode()


def decode_cursor(cursor: str, prefix: str) -> str:
    try:
        marker = base64.b64decode(cursor.encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise SlackError("invalid_cursor") from None
    if not marker.startswith(prefix):
        raise SlackError("invalid_cursor")
    return marker.removeprefix(prefix)


def page(
    items: Sequence[T], key: Callable[[T], str], args: Args, *, default: int = 100
) -> tuple[list[T], Body]:
    """A cursor page of `items`; the cursor names the first item of the next page."""
    limit = args.number("limit", default, high=1000)
    start = 0
    cursor = args.optional("cursor")
    if cursor:
        marker = decode_cursor(cursor, "next:")
        start = next((i for i, item in enumerate(items) if key(item) == marker), -1)
        if start < 0:
            raise SlackError("invalid_cursor")
    end = start + limit
    next_cursor = encode_cursor("next:" + key(items[end])) if end < len(items) else ""
    return list(items[start:end]), {"response_metadata": {"next_cursor": next_cursor}}

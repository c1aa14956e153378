"""chat.*, pins.* and bookmarks.*: what gets written into a channel."""

import time
from typing import Any

from ..content import POST_TEXT_LIMIT, UPDATE_TEXT_LIMIT, read_content
from ..errors import SlackError
from ..posts import Channel
from ..workspace import Workspace
from .registry import Args, Body, method, pin_json


def _destination(ws: Workspace, args: Args) -> Channel:
    """Slack lets chat.* name a channel by id, by name ('#' optional) or by user (a DM)."""
    ref = args.text("channel")
    if ref in ws.users:
        return ws.open_direct(args.actor, [ref])
    return ws.channel(ref, args.actor, by_name=True)


@method("chat.postMessage", channel="channel_not_found")
def post_message(ws: Workspace, args: Args) -> Body:
    channel = _destination(ws, args)
    content = read_content(args.raw, POST_TEXT_LIMIT)
    message = ws.posts.post(
        channel,
        args.actor,
        content,
        thread_ts=args.optional("thread_ts"),
        broadcast=args.flag("reply_broadcast"),
        # Without chat:write.public a bot posts only where it is a member.
        as_outsider="chat:write.public" in args.scopes
        and channel.is_channel
        and not channel.is_private,
    )
    return {"channel": channel.id, "ts": message["ts"], "message": message}


@method("chat.postEphemeral", channel="channel_not_found", user="user_not_in_channel")
def post_ephemeral(ws: Workspace, args: Args) -> Body:
    channel = _destination(ws, args)
    read_content(args.raw, POST_TEXT_LIMIT)
    if channel.is_archived:
        raise SlackError("is_archived")
    if args.actor not in channel.members:
        raise SlackError("not_in_channel")
    if args.text("user") not in channel.members:
        raise SlackError("user_not_in_channel")
    # Ephemeral messages never enter history; emu.calls is their record.
    return {"message_ts": ws.next_ts()}


@method("chat.update", channel="channel_not_found", ts="message_not_found")
def update(ws: Workspace, args: Args) -> Body:
    channel = ws.channel(args.text("channel"), args.actor)
    content = read_content(args.raw, UPDATE_TEXT_LIMIT)
    message = ws.posts.update(channel, args.text("ts"), args.actor, content)
    return {
        "channel": channel.id,
        "ts": message["ts"],
        "text": message.get("text", ""),
        "message": message,
    }


@method("pins.add", channel="channel_not_found", timestamp="no_item_specified")
def pins_add(ws: Workspace, args: Args) -> Body:
    channel = ws.channel(args.text("channel"), args.actor)
    ws.posts.pin(channel, args.text("timestamp"), args.actor)
    return {}


@method("pins.list", channel="channel_not_found")
def pins_list(ws: Workspace, args: Args) -> Body:
    channel = ws.channel(args.text("channel"), args.actor)
    pins = reversed(channel.pins.items())
    return {"items": [pin_json(channel, ts, pin) for ts, pin in pins]}


@method(
    "bookmarks.add",
    channel_id="channel_not_found",
    title="invalid_arguments",
    type="invalid_bookmark_type",
)
def bookmarks_add(ws: Workspace, args: Args) -> Body:
    channel = ws.channel(args.text("channel_id"), args.actor)
    bookmark = ws.posts.add_bookmark(
        channel,
        args.actor,
        title=args.text("title"),
        kind=args.text("type"),
        link=args.text("link"),
        emoji=args.text("emoji"),
    )
    return {"bookmark": bookmark}


@method("bookmarks.list", channel_id="channel_not_found")
def bookmarks_list(ws: Workspace, args: Args) -> Body:
    return {"bookmarks": ws.channel(args.text("channel_id"), args.actor).bookmarks}


def _bookmark(ws: Workspace, args: Args) -> tuple[Channel, dict[str, Any]]:
    channel = ws.channel(args.text("channel_id"), args.actor)
    if args.actor not in channel.members:
        raise SlackError("not_in_channel")
    wanted = args.text("bookmark_id")
    found = next((b for b in channel.bookmarks if b["id"] == wanted), None)
    if found is None:
        raise SlackError("not_found")
    return channel, found


@method("bookmarks.edit", channel_id="channel_not_found", bookmark_id="invalid_bookmark_id")
def bookmarks_edit(ws: Workspace, args: Args) -> Body:
    _, bookmark = _bookmark(ws, args)
    link = args.optional("link")
    if link is not None and not link.startswith(("http://", "https://")):
        raise SlackError("invalid_link")
    for name in ("title", "link", "emoji"):
        value = args.optional(name)
        if value is not None:
            bookmark[name] = value
    bookmark["date_updated"] = int(time.time())
    bookmark["last_updated_by_user_id"] = args.actor
    return {"bookmark": bookmark}


@method("bookmarks.remove", channel_id="channel_not_found", bookmark_id="invalid_bookmark_id")
def bookmarks_remove(ws: Workspace, args: Args) -> Body:
    channel, bookmark = _bookmark(ws, args)
    channel.bookmarks.remove(bookmark)
    return {}

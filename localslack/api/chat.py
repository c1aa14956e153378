"""chat.*, pins.* and bookmarks.*: what gets written into a channel; views.*: modals are
remembered and the page draws the open ones as forms, and each person's App Home (views.publish)
as their Home."""

import re
import time
from typing import Any

from ..errors import POST_TEXT_LIMIT, UPDATE_TEXT_LIMIT, SlackError, home_error, read_content
from ..posts import Channel
from ..seed import APP_ID, BOT_ID, TEAM_ID
from ..workspace import Workspace
from .registry import Args, Body, method, pin_json

MAX_VIEWS = 100  # modals kept for the page; older ones are forgotten
MAX_REACTIONS = 23  # distinct emoji on one message; Slack answers too_many_reactions past it
EMOJI = re.compile(r"^[a-z0-9_+'-]{1,100}$")


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


@method("pins.remove", channel="channel_not_found", timestamp="no_item_specified")
def pins_remove(ws: Workspace, args: Args) -> Body:
    channel = ws.channel(args.text("channel"), args.actor)
    ws.posts.unpin(channel, args.text("timestamp"), args.actor)
    return {}


def react(ws: Workspace, channel: Channel, ts: str, actor: str, name: str, on: bool) -> None:
    """reactions.add (``on``) and reactions.remove, with Slack's errors, told as events."""
    if not EMOJI.match(name):
        raise SlackError("invalid_name")
    message = ws.posts.item(channel, ts)
    if on and channel.is_archived:
        raise SlackError("is_archived")
    reactions: list[dict[str, Any]] = message.setdefault("reactions", [])
    found = next((r for r in reactions if r["name"] == name), None)
    if on and found is not None and actor in found["users"]:
        raise SlackError("already_reacted")
    if on and found is None and len(reactions) >= MAX_REACTIONS:
        raise SlackError("too_many_reactions")
    if not on and (found is None or actor not in found["users"]):
        raise SlackError("no_reaction")
    if found is None:
        found = {"name": name, "users": [], "count": 0}
        reactions.append(found)
    found["users"].append(actor) if on else found["users"].remove(actor)
    found["count"] = len(found["users"])
    message["reactions"] = [r for r in reactions if r["users"]]
    if not message["reactions"]:
        del message["reactions"]
    kind = "reaction_added" if on else "reaction_removed"
    item = {"type": "message", "channel": channel.id, "ts": ts}
    event = {"type": kind, "user": actor, "reaction": name, "item": item}
    ws.posts.emit({**event, "item_user": message.get("user")})


def _react(ws: Workspace, args: Args, on: bool) -> Body:
    channel = ws.channel(args.text("channel"), args.actor)
    react(ws, channel, args.text("timestamp"), args.actor, args.text("name"), on)
    return {}


@method(
    "reactions.add", channel="no_item_specified", timestamp="no_item_specified", name="invalid_name"
)
def reactions_add(ws: Workspace, args: Args) -> Body:
    return _react(ws, args, True)


@method(
    "reactions.remove",
    channel="no_item_specified",
    timestamp="no_item_specified",
    name="invalid_name",
)
def reactions_remove(ws: Workspace, args: Args) -> Body:
    return _react(ws, args, False)


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


def _modal(args: Args) -> dict[str, Any]:
    view = args.raw.get("view")
    if not isinstance(view, dict) or view.get("type") not in ("modal", "home"):
        raise SlackError("invalid_arguments")
    if not isinstance(view.get("blocks", []), list) or len(view.get("blocks", [])) > 100:
        raise SlackError("invalid_arguments")
    return view


def _record(ws: Workspace, view: dict[str, Any], user: str | None, root: str | None) -> Body:
    view_id = ws.new_id("V")
    opened: dict[str, Any] = {
        "id": view_id,
        "team_id": TEAM_ID,
        "state": {"values": {}},
        "hash": ws.new_id("h"),
        "root_view_id": root or view_id,
        "previous_view_id": None,
        "app_id": APP_ID,
        "bot_id": BOT_ID,
        "private_metadata": "",
        "callback_id": "",
        "external_id": "",
        **view,
    }
    ws.views[view_id] = {"view": opened, "user": user, "open": True, "errors": {}}
    for old in list(ws.views)[:-MAX_VIEWS]:
        del ws.views[old]
    return {"view": opened}


def _trigger(ws: Workspace, args: Args) -> str | None:
    trigger = args.optional("trigger_id") or args.optional("interactivity_pointer")
    if not trigger:
        raise SlackError("invalid_arguments")
    return ws.triggers.get(trigger)  # who pressed; a trigger we never issued shows to all


@method("views.open", view="invalid_arguments")
def views_open(ws: Workspace, args: Args) -> Body:
    view = _modal(args)
    return _record(ws, view, _trigger(ws, args), None)


@method("views.push", view="invalid_arguments")
def views_push(ws: Workspace, args: Args) -> Body:
    view = _modal(args)
    user = _trigger(ws, args)
    below = [v for v in ws.views.values() if v["open"] and v["user"] == user]
    root = below[-1]["view"]["root_view_id"] if below else None
    return _record(ws, view, user, root)


@method("views.update", view="invalid_arguments")
def views_update(ws: Workspace, args: Args) -> Body:
    view = _modal(args)
    view_id = args.optional("view_id")
    external = args.optional("external_id")
    found = next(
        (
            v
            for v in ws.views.values()
            if (view_id and v["view"]["id"] == view_id)
            or (external and v["view"].get("external_id") == external)
        ),
        None,
    )
    if found is None:
        raise SlackError("not_found")
    given_hash = args.optional("hash")
    if given_hash and given_hash != found["view"]["hash"]:
        raise SlackError("hash_conflict")
    found["view"] = {**found["view"], **view, "hash": ws.new_id("h")}
    return {"view": found["view"]}


@method("views.publish", user_id="invalid_arguments", view="invalid_arguments")
def views_publish(ws: Workspace, args: Args) -> Body:
    """The Home tab of ``user_id``, replaced whole; a given ``hash`` must be the current one."""
    view, user = _modal(args), args.text("user_id")
    if view["type"] != "home" or user not in ws.users:
        raise SlackError("invalid_arguments")  # a modal is views.open's; or no such person
    error = home_error(view)
    if error:
        raise SlackError(error)
    shown = ws.homes.get(user)
    if shown and args.optional("hash") not in (None, shown["hash"]):
        raise SlackError("hash_conflict")
    view_id = shown["id"] if shown else ws.new_id("V")
    base: Body = {"id": view_id, "team_id": TEAM_ID, "state": {"values": {}}, "app_id": APP_ID}
    ws.homes[user] = {**base, "bot_id": BOT_ID, "private_metadata": "", **view}
    ws.homes[user]["hash"] = ws.new_id("h")
    return {"view": ws.homes[user]}

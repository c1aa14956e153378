"""conversations.*: channels, their members, their history; auth.test, users.* and
usergroups.*: who is who in the workspace."""

from dataclasses import replace

from ..errors import SlackError
from ..posts import Channel, Message, stamp
from ..seed import BOT_ID, TEAM_DOMAIN, TEAM_ID, TEAM_NAME
from ..workspace import Workspace
from .registry import (
    Args,
    Body,
    channel_json,
    decode_cursor,
    encode_cursor,
    history_message,
    method,
    page,
)

CHANNEL_TYPES = ("public_channel", "private_channel", "mpim", "im")
# conversations.invite's reference: "Up to 100 users may be listed".
MAX_INVITES = 100


def _channel(ws: Workspace, args: Args) -> Channel:
    return ws.channel(args.text("channel"), args.actor)


def _answer(channel: Channel, args: Args) -> Body:
    return {"channel": channel_json(channel, args.actor)}


@method("conversations.create", name="invalid_name_required")
def create(ws: Workspace, args: Args) -> Body:
    channel = ws.create_channel(args.text("name"), args.actor, is_private=args.flag("is_private"))
    return _answer(channel, args)


@method("conversations.info", channel="channel_not_found")
def info(ws: Workspace, args: Args) -> Body:
    return _answer(_channel(ws, args), args)


@method("conversations.list")
def list_(ws: Workspace, args: Args) -> Body:
    types = set(args.ids("types") or ["public_channel"])
    if not types.issubset(CHANNEL_TYPES):
        raise SlackError("invalid_types")
    exclude_archived = args.flag("exclude_archived")
    visible = [
        c
        for c in ws.channels.values()
        if _type_of(c) in types
        and not (exclude_archived and c.is_archived)
        and not (c.members_only and args.actor not in c.members)
    ]
    channels, meta = page(visible, lambda c: c.id, args)
    return {"channels": [channel_json(c, args.actor) for c in channels], **meta}


def _type_of(channel: Channel) -> str:
    if channel.is_im:
        return "im"
    if channel.is_mpim:
        return "mpim"
    return "private_channel" if channel.is_private else "public_channel"


@method("conversations.members", channel="channel_not_found")
def members(ws: Workspace, args: Args) -> Body:
    users, meta = page(_channel(ws, args).members, str, args)
    return {"members": users, **meta}


def _bound(args: Args, name: str) -> int | None:
    value = args.optional(name)
    if value is None:
        return None
    try:
        return stamp(value)
    except ValueError:
        raise SlackError(f"invalid_ts_{name}") from None


@method("conversations.history", channel="channel_not_found")
def history(ws: Workspace, args: Args) -> Body:
    channel = _channel(ws, args)
    if args.actor not in channel.members:
        raise SlackError("not_in_channel")
    limit = args.number("limit", 100, high=999)
    inclusive = args.flag("inclusive")
    after, before = _bound(args, "oldest"), _bound(args, "latest")
    # Stamps are whole microseconds, so an inclusive bound is the exclusive one moved by 1.
    if after is not None and inclusive:
        after -= 1
    if before is not None and inclusive:
        before += 1
    cursor = args.optional("cursor")
    if cursor:
        before = _cursor_stamp(decode_cursor(cursor, "next_ts:")) + 1
    with_metadata = args.flag("include_all_metadata")
    messages: list[Message] = []
    next_cursor = ""
    for message in channel.newest_first(after, before):
        if len(messages) == limit:
            next_cursor = encode_cursor("next_ts:" + message["ts"])
            break
        messages.append(history_message(message, with_metadata))
    body: Body = {
        "messages": messages,
        "has_more": bool(next_cursor),
        "pin_count": len(channel.pins),
    }
    if next_cursor:
        body["response_metadata"] = {"next_cursor": next_cursor}
    return body


def _cursor_stamp(ts: str) -> int:
    try:
        return stamp(ts)
    except ValueError:
        raise SlackError("invalid_cursor") from None


@method("conversations.replies", channel="channel_not_found", ts="thread_not_found")
def replies(ws: Workspace, args: Args) -> Body:
    """The parent, then its replies oldest first between ``oldest`` and ``latest``, paged."""
    channel = _channel(ws, args)
    if args.actor not in channel.members:
        raise SlackError("not_in_channel")
    ts = args.text("ts")
    parent = channel.by_ts.get(ts)
    if parent is None:
        raise SlackError("thread_not_found")
    limit = args.number("limit", 1000, high=1000)
    after, before = _bound(args, "oldest"), _bound(args, "latest")
    cursor = args.optional("cursor")
    if cursor:
        after = _cursor_stamp(decode_cursor(cursor, "next_ts:")) - 1
    thread = [
        m
        for m in channel.messages
        if m.get("thread_ts") == ts
        and m is not parent
        and (after is None or stamp(m["ts"]) > after)
        and (before is None or stamp(m["ts"]) < before)
    ]
    with_metadata = args.flag("include_all_metadata")
    shown = ([] if cursor else [parent]) + thread[:limit]
    body: Body = {"messages": [history_message(m, with_metadata) for m in shown]}
    body["has_more"] = len(thread) > limit
    if body["has_more"]:
        body["response_metadata"] = {"next_cursor": encode_cursor("next_ts:" + thread[limit]["ts"])}
    return body


@method("conversations.setTopic", channel="channel_not_found", topic="invalid_arguments")
def set_topic(ws: Workspace, args: Args) -> Body:
    channel = _channel(ws, args)
    ws.set_topic(channel, "topic", args.text("topic"), args.actor)
    return _answer(channel, args)


@method("conversations.setPurpose", channel="channel_not_found", purpose="invalid_arguments")
def set_purpose(ws: Workspace, args: Args) -> Body:
    channel = _channel(ws, args)
    ws.set_topic(channel, "purpose", args.text("purpose"), args.actor)
    return _answer(channel, args)


@method("conversations.invite", channel="channel_not_found", users="no_user")
def invite(ws: Workspace, args: Args) -> Body:
    channel = _channel(ws, args)
    users = args.ids("users")
    if len(users) > MAX_INVITES:
        raise SlackError("too_many_users")
    ws.invite(channel, users, args.actor, force=args.flag("force"))
    return _answer(channel, args)


@method("conversations.join", channel="channel_not_found")
def join(ws: Workspace, args: Args) -> Body:
    channel = _channel(ws, args)
    if not ws.join(channel, args.actor):
        return _answer(channel, args)
    warning = "already_in_channel"
    return {
        **_answer(channel, args),
        "warning": warning,
        "response_metadata": {"warnings": [warning]},
    }


@method("conversations.archive", channel="channel_not_found")
def archive(ws: Workspace, args: Args) -> Body:
    ws.archive(_channel(ws, args), args.actor)
    return {}


@method("conversations.unarchive", channel="channel_not_found")
def unarchive(ws: Workspace, args: Args) -> Body:
    ws.unarchive(_channel(ws, args), args.actor)
    return {}


@method("conversations.rename", channel="channel_not_found", name="invalid_name_required")
def rename(ws: Workspace, args: Args) -> Body:
    channel = _channel(ws, args)
    ws.rename(channel, args.text("name"), args.actor)
    return _answer(channel, args)


@method("conversations.open")
def open_(ws: Workspace, args: Args) -> Body:
    if args.optional("channel"):
        channel = _channel(ws, args)
        if channel.is_channel:
            raise SlackError("method_not_supported_for_channel_type")
    else:
        channel = ws.open_direct(args.actor, args.ids("users"))
    if args.flag("return_im"):
        return _answer(channel, args)
    return {"channel": {"id": channel.id}}


@method("auth.test")
def auth_test(ws: Workspace, args: Args) -> Body:
    user = ws.user(args.actor)
    body: Body = {
        "url": f"https://{TEAM_DOMAIN}.slack.com/",
        "team": TEAM_NAME,
        "user": user.name,
        "team_id": TEAM_ID,
        "user_id": user.id,
        "is_enterprise_install": False,
    }
    if user.is_bot:
        body["bot_id"] = BOT_ID
    return body


@method("users.info", user="user_not_found")
def users_info(ws: Workspace, args: Args) -> Body:
    return {"user": ws.user(args.text("user")).to_json()}


@method("users.list")
def users_list(ws: Workspace, args: Args) -> Body:
    users, meta = page(list(ws.users.values()), lambda u: u.id, args, default=200)
    return {"members": [u.to_json() for u in users], "cache_ts": 0, **meta}


@method("users.lookupByEmail", email="users_not_found")
def users_lookup_by_email(ws: Workspace, args: Args) -> Body:
    user = ws.users_by_email.get(args.text("email").lower())
    if user is None:
        raise SlackError("users_not_found")
    return {"user": user.to_json()}


@method("usergroups.list")
def usergroups_list(ws: Workspace, args: Args) -> Body:
    include_users = args.flag("include_users")
    return {"usergroups": [g.to_json(include_users) for g in ws.user_groups.values()]}


@method("usergroups.users.list", usergroup="no_such_subteam")
def usergroups_users_list(ws: Workspace, args: Args) -> Body:
    group = ws.user_groups.get(args.text("usergroup"))
    if group is None:
        raise SlackError("no_such_subteam")
    return {"users": list(group.users)}


@method("usergroups.users.update", usergroup="no_such_subteam", users="no_users_provided")
def usergroups_users_update(ws: Workspace, args: Args) -> Body:
    """The group's whole membership becomes ``users`` (Slack cannot empty a group this way)."""
    group = ws.user_groups.get(args.text("usergroup"))
    if group is None:
        raise SlackError("no_such_subteam")
    users = list(dict.fromkeys(args.ids("users")))
    if not users:
        raise SlackError("no_users_provided")
    if any(u not in ws.users or ws.users[u].is_bot for u in users):
        raise SlackError("invalid_users")
    ws.user_groups[group.id] = updated = replace(group, users=tuple(users))
    return {"usergroup": updated.to_json(include_users=True)}

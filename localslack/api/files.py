"""files.getUploadURLExternal and files.completeUploadExternal: Slack's external upload flow;
files.list; and canvases (a canvas is a file, its id an ``F...``): canvases.create,
conversations.canvases.create (the channel's own canvas) and canvases.access.set.

The client asks for an upload URL, sends the bytes there (the emulator's ``/upload/v1/{id}``),
then completes the upload, which shares the file in a channel as a message carrying ``files``.
Arguments and errors follow Slack's reference for both methods.
"""

import json
import time
from typing import Any

from ..errors import Content, SlackError
from ..seed import TEAM_DOMAIN, TEAM_ID
from ..workspace import Workspace
from .registry import Args, Body, method

MAX_FILE_BYTES = 1_000_000_000  # Slack's documented upload limit is 1 GB
MAX_FILES = 10  # files per completion, as Slack allows


def _file_json(ws: Workspace, file: dict[str, Any]) -> dict[str, Any]:
    public = {k: v for k, v in file.items() if k not in ("content", "expected_size")}
    public["permalink"] = (
        f"https://{TEAM_DOMAIN}.slack.com/files/{file['user']}/{file['id']}/{file['name']}"
    )
    public["url_private"] = f"{ws.upload_base}{file['id']}"
    return public


@method("files.getUploadURLExternal", filename="missing_argument", length="missing_argument")
def get_upload_url(ws: Workspace, args: Args) -> Body:
    name = args.text("filename").strip()
    if not name:
        raise SlackError("invalid_arguments")
    try:
        length = int(args.text("length"))
    except ValueError:
        raise SlackError("invalid_arguments") from None
    if length <= 0:
        raise SlackError("invalid_arguments")
    if length > MAX_FILE_BYTES:
        raise SlackError("file_upload_size_restricted")
    alt = args.text("alt_txt")
    if len(alt) > 1000:
        raise SlackError("alt_txt_too_large")
    file_id = ws.new_id("F")
    ws.files[file_id] = {
        "id": file_id,
        "name": name,
        "title": name,
        "user": args.actor,
        "created": int(time.time()),
        "expected_size": length,
        "content": None,
        "channels": [],
    }
    return {"upload_url": f"{ws.upload_base}{file_id}", "file_id": file_id}


def receive_upload(ws: Workspace, file_id: str, data: bytes) -> bool:
    """The bytes sent to an upload URL; False for a URL Slack never handed out."""
    file = ws.files.get(file_id)
    if file is None or file["content"] is not None:
        return False
    file["content"] = data
    file["size"] = len(data)
    return True


def _requested(args: Args) -> list[dict[str, Any]]:
    value = args.raw.get("files")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise SlackError("invalid_array_arg") from None
    if not isinstance(value, list) or not value or not all(isinstance(f, dict) for f in value):
        raise SlackError("invalid_array_arg")
    if len(value) > MAX_FILES:
        raise SlackError("invalid_array_arg")
    return value


@method("files.completeUploadExternal", files="invalid_arguments")
def complete_upload(ws: Workspace, args: Args) -> Body:
    files = []
    for wanted in _requested(args):
        file = ws.files.get(str(wanted.get("id", "")))
        if file is None or file["content"] is None:
            raise SlackError("file_not_found")
        if file["user"] != args.actor:
            raise SlackError("access_denied")
        if wanted.get("title"):
            file["title"] = str(wanted["title"])[:255]
        files.append(file)
    channel_id = args.optional("channel_id")
    if channel_id:
        channel = ws.channel(channel_id, args.actor)
        comment = args.optional("initial_comment")
        content = Content(text=comment or "", blocks=None, attachments=None, metadata=None)
        message = ws.posts.post(channel, args.actor, content, thread_ts=args.optional("thread_ts"))
        for file in files:
            file["channels"].append(channel.id)
        message["upload"] = True
        message["files"] = [_file_json(ws, f) for f in files]
    return {"files": [_file_json(ws, f) for f in files]}


# --- canvases -------------------------------------------------------------------------
# A canvas is a file (``F...``). A channel has at most one channel canvas; a free team gets one
# canvas tab per channel and no standalone canvas; ``Workspace.canvas_plan`` says which team
# this is ("paid", "free", or "off": canvases disabled), so the app's fallback can be tried.
MAX_MARKDOWN = 1_048_576  # characters of document_content, as Slack documents
MAX_TITLE = 255
ACCESS_LEVELS = ("read", "write", "owner")
MAX_ACCESS_IDS = 20


def canvas_url(canvas_id: str) -> str:
    return f"https://{TEAM_DOMAIN}.slack.com/docs/{TEAM_ID}/{canvas_id}"


def _markdown(args: Args) -> str:
    content = args.raw.get("document_content")
    if content is None:
        return ""
    if not (isinstance(content, dict) and content.get("type") == "markdown"):
        raise SlackError("canvas_creation_failed", extra={"detail": "unsupported document type"})
    markdown = content.get("markdown")
    if not isinstance(markdown, str) or len(markdown) > MAX_MARKDOWN:
        raise SlackError("canvas_creation_failed", extra={"detail": "markdown missing or too long"})
    return markdown


def _allowed(ws: Workspace) -> None:
    if ws.canvas_plan == "off":
        raise SlackError("canvas_disabled_user_team")


def _tab_free(ws: Workspace, channel_id: str) -> None:
    """A free team's channel holds one canvas tab, whether the channel canvas or another."""
    if ws.canvas_plan == "free" and any(
        c["channel_id"] == channel_id for c in ws.canvases.values()
    ):
        raise SlackError("free_team_canvas_tab_already_exists")


def _new_canvas(ws: Workspace, args: Args, channel_id: str | None, of_channel: bool) -> Body:
    markdown = _markdown(args)
    canvas_id = ws.new_id("F")
    ws.canvases[canvas_id] = {
        "id": canvas_id,
        "title": args.text("title")[:MAX_TITLE] or "Untitled",
        "markdown": markdown,
        "user": args.actor,
        "created": int(time.time()),
        "channel_id": channel_id,  # the channel it is a tab of, if any
        "channel_canvas": of_channel,
        "access": {},  # channel or user id -> access level (canvases.access.set)
    }
    return {"canvas_id": canvas_id}


@method("canvases.create")
def canvases_create(ws: Workspace, args: Args) -> Body:
    _allowed(ws)
    channel_id = args.optional("channel_id")
    if channel_id:
        ws.channel(channel_id, args.actor)
        _tab_free(ws, channel_id)
    elif ws.canvas_plan == "free":
        raise SlackError("free_teams_cannot_create_standalone_canvases")
    return _new_canvas(ws, args, channel_id, of_channel=False)


@method("conversations.canvases.create", channel_id="invalid_arguments")
def conversations_canvases_create(ws: Workspace, args: Args) -> Body:
    _allowed(ws)
    channel = ws.channel(args.text("channel_id"), args.actor)
    if channel.is_archived:
        raise SlackError("is_archived")
    if channel.is_im or channel.is_mpim:
        raise SlackError("channel_canvas_creation_failed")
    if channel_canvas(ws, channel.id) is not None:
        raise SlackError("channel_canvas_already_exists")
    _tab_free(ws, channel.id)
    return _new_canvas(ws, args, channel.id, of_channel=True)


def channel_canvas(ws: Workspace, channel_id: str) -> dict[str, Any] | None:
    return next((c for c in in_channel(ws, channel_id) if c["channel_canvas"]), None)


def in_channel(ws: Workspace, channel_id: str) -> list[dict[str, Any]]:
    """The canvases a channel shows: its tabs (the channel canvas first), those shared with it."""
    tabs = [c for c in ws.canvases.values() if c["channel_id"] == channel_id]
    tabs.sort(key=lambda c: not c["channel_canvas"])
    return tabs + [c for c in ws.canvases.values() if channel_id in c["access"] and c not in tabs]


@method("canvases.access.set", canvas_id="invalid_arguments", access_level="invalid_arguments")
def canvases_access_set(ws: Workspace, args: Args) -> Body:
    _allowed(ws)
    level = args.text("access_level")
    channels, users = args.ids("channel_ids"), args.ids("user_ids")
    if level not in ACCESS_LEVELS or max(len(channels), len(users)) > MAX_ACCESS_IDS:
        raise SlackError("invalid_arguments")
    if bool(channels) == bool(users):
        raise SlackError("invalid_parameters")
    canvas = ws.canvases.get(args.text("canvas_id"))
    if canvas is None:
        raise SlackError("canvas_not_found")
    if canvas["user"] != args.actor and canvas["access"].get(args.actor) != "owner":
        raise SlackError("restricted_action")
    if channels and level == "owner":
        raise SlackError("invalid_arguments")  # only people own a canvas
    for channel_id in channels:
        ws.channel(channel_id, args.actor)
    for user_id in users:
        ws.user(user_id)
    canvas["access"].update(dict.fromkeys(channels + users, level))
    return {}


def _canvas_json(canvas: dict[str, Any]) -> dict[str, Any]:
    shared = [i for i in canvas["access"] if i[0] in "CG"]
    return {
        "id": canvas["id"],
        "created": canvas["created"],
        "timestamp": canvas["created"],
        "name": canvas["title"],
        "title": canvas["title"],
        "mimetype": "application/vnd.slack-docs",
        "filetype": "quip",
        "pretty_type": "Canvas",
        "user": canvas["user"],
        "permalink": canvas_url(canvas["id"]),
        "channels": [c for c in dict.fromkeys([canvas["channel_id"], *shared]) if c],
    }


@method("files.list")
def files_list(ws: Workspace, args: Args) -> Body:
    """Files and canvases the caller can see, newest first, filtered as Slack filters them."""
    user, channel = args.optional("user"), args.optional("channel")
    try:
        ts_from, ts_to = float(args.text("ts_from") or 0), float(args.text("ts_to") or "inf")
    except ValueError:
        raise SlackError("invalid_arguments") from None
    count = args.number("count", 100, high=1000, error="invalid_arguments")
    page = args.number("page", 1, high=100_000, error="invalid_arguments")
    uploaded = [_file_json(ws, f) for f in ws.files.values() if f["content"] is not None]
    found = [
        f
        for f in [*uploaded, *(_canvas_json(c) for c in ws.canvases.values())]
        if (user is None or f["user"] == user)
        and (channel is None or channel in f["channels"])
        and ts_from <= f["created"] <= ts_to
        and (f["user"] == args.actor or any(_member(ws, c, args.actor) for c in f["channels"]))
    ]
    found.sort(key=lambda f: -f["created"])
    pages = max((len(found) + count - 1) // count, 1)
    paging = {"count": count, "total": len(found), "page": page, "pages": pages}
    return {"files": found[(page - 1) * count : page * count], "paging": paging}


def _member(ws: Workspace, channel_id: str, user: str) -> bool:
    channel = ws.channels.get(channel_id)
    return channel is not None and user in channel.members

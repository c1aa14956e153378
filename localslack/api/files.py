"""files.getUploadURLExternal and files.completeUploadExternal: Slack's external upload flow;
and canvases.create (a canvas is a file, its id an ``F...``).

The client asks for an upload URL, sends the bytes there (the emulator's ``/upload/v1/{id}``),
then completes the upload, which shares the file in a channel as a message carrying ``files``.
Arguments and errors follow Slack's reference for both methods.
"""

import json
import time
from typing import Any

from ..errors import Content, SlackError
from ..seed import TEAM_DOMAIN
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


@method("canvases.create")
def canvases_create(ws: Workspace, args: Args) -> Body:
    channel_id = args.optional("channel_id")
    if channel_id:
        ws.channel(channel_id, args.actor)
    canvas_id = ws.new_id("F")
    ws.canvases[canvas_id] = {
        "id": canvas_id,
        "title": args.text("title"),
        "document_content": args.raw.get("document_content"),
        "channel_id": channel_id,
    }
    return {"canvas_id": canvas_id}

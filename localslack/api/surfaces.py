"""views.* and canvases.*: surfaces the emulator accepts and remembers, but never draws."""

from typing import Any

from ..errors import SlackError
from ..seed import APP_ID, BOT_ID, TEAM_ID
from ..workspace import Workspace
from .registry import Args, Body, method


@method("views.open", view="invalid_arguments")
def views_open(ws: Workspace, args: Args) -> Body:
    if not (args.optional("trigger_id") or args.optional("interactivity_pointer")):
        raise SlackError("invalid_arguments")
    view = args.raw["view"]
    if not isinstance(view, dict) or view.get("type") not in ("modal", "home"):
        raise SlackError("invalid_arguments")
    view_id = ws.new_id("V")
    opened: dict[str, Any] = {
        "id": view_id,
        "team_id": TEAM_ID,
        "state": {"values": {}},
        "hash": ws.new_id("h"),
        "root_view_id": view_id,
        "previous_view_id": None,
        "app_id": APP_ID,
        "bot_id": BOT_ID,
        "private_metadata": "",
        "callback_id": "",
        "external_id": "",
        **view,
    }
    return {"view": opened}


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

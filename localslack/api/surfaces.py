"""views.* and canvases.*: modals are remembered and the page draws the open ones as forms."""

from typing import Any

from ..errors import SlackError
from ..seed import APP_ID, BOT_ID, TEAM_ID
from ..workspace import Workspace
from .registry import Args, Body, method

MAX_VIEWS = 100  # modals kept for the page; older ones are forgotten


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

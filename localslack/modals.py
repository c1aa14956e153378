"""Open modals on the workspace page: forms that send ``view_submission``, and the form
helpers the rest of the page shares."""

from __future__ import annotations

from html import escape
from typing import Any

from .posts import Channel, Message
from .rendering import blocks, text_object
from .workspace import Workspace


def options(pairs: list[tuple[str, str]], selected: str) -> str:
    return "".join(
        f"<option value='{escape(v, quote=True)}'{' selected' if v == selected else ''}>"
        f"{escape(label)}</option>"
        for v, label in pairs
    )


def hidden(**fields: str) -> str:
    return "".join(
        f"<input type='hidden' name='{k}' value='{escape(v, quote=True)}'>"
        for k, v in fields.items()
    )


def _no_button(element: dict[str, Any], block_id: str) -> str:
    return ""


def modal(ws: Workspace, opened: dict[str, Any], user: str) -> str:
    view = opened["view"]
    errors: dict[str, str] = opened.get("errors") or {}
    fields = [hidden(view_id=str(view["id"]), user=user)]
    for block in view.get("blocks", []):
        if block.get("type") == "input":
            fields.append(_input(ws, block, errors.get(str(block.get("block_id")), "")))
        elif block.get("type") in ("section", "context", "header", "divider"):
            fields.append(blocks(ws, [block], _no_button))
    submit = text_object(ws, view.get("submit")) or "Submit"
    close = text_object(ws, view.get("close")) or "Cancel"
    return (
        f"<section class='modal'><h2>{text_object(ws, view.get('title'))}</h2>"
        f"<form method='post' action='/_emulator/submit'>{''.join(fields)}"
        f"<button class='primary' type='submit'>{submit}</button></form>"
        f"<form class='inline' method='post' action='/_emulator/close'>"
        f"{hidden(view_id=str(view['id']), user=user)}"
        f"<button type='submit'>{close}</button></form></section>"
    )


def _input(ws: Workspace, block: dict[str, Any], error: str) -> str:
    element = block.get("element") or {}
    name = escape(str(block.get("block_id", "")), quote=True)
    label = text_object(ws, block.get("label"))
    optional = " <small>(optional)</small>" if block.get("optional") else ""
    kind = element.get("type")
    if kind in ("static_select", "multi_static_select"):
        initial = (element.get("initial_option") or {}).get("value", "")
        pairs = [
            (str(o["value"]), str(o["text"]["text"]) + _described(o))
            for o in element.get("options", [])
        ]
        multiple = " multiple" if kind == "multi_static_select" else ""
        field_name = f"multi:{name}" if multiple else name
        control = (
            f"<select name='{field_name}' id='{name}'{multiple}>{options(pairs, initial)}</select>"
        )
    else:
        value = escape(str(element.get("initial_value", "")), quote=True)
        limit = int(element.get("max_length", 3000))
        if element.get("multiline"):
            control = f"<textarea name='{name}' id='{name}' maxlength='{limit}'>{value}</textarea>"
        else:
            control = f"<input name='{name}' id='{name}' value='{value}' maxlength='{limit}'>"
    shown = f"<div class='error'>{escape(error)}</div>" if error else ""
    return f"<label for='{name}'>{label}{optional}</label>{control}{shown}"


def _described(option: dict[str, Any]) -> str:
    description = (option.get("description") or {}).get("text")
    return f" — {description}" if description else ""


QUICK_REACTIONS = ("pushpin", "eyes", "white_check_mark")  # offered on every message


def reacting(channel: Channel, message: Message, user: str) -> str:
    """Reactions as ``:name: count`` (no emoji font needed), each a toggle for the person
    acting, a few common ones to add, and pin/unpin: the app hears each as an event."""
    ts = str(message["ts"])
    counts = {r["name"]: r["users"] for r in message.get("reactions", [])}
    names = list(dict.fromkeys([*counts, *QUICK_REACTIONS]))
    forms = []
    for name in names:
        mine = user in counts.get(name, [])
        fields = hidden(user=user, channel=channel.id, ts=ts, name=name, on="0" if mine else "1")
        label = f":{escape(name)}: {len(counts.get(name, []))}" if name in counts else f"+:{name}:"
        forms.append(
            f"<form class='inline' method='post' action='/_emulator/react'>{fields}"
            f"<button class='shortcut{' primary' if mine else ''}'>{label}</button></form>"
        )
    on = "0" if ts in channel.pins else "1"
    fields = hidden(user=user, channel=channel.id, ts=ts, on=on)
    pin = "Unpin" if on == "0" else "Pin"
    forms.append(
        f"<form class='inline' method='post' action='/_emulator/pin'>{fields}"
        f"<button class='shortcut'>{pin}</button></form>"
    )
    return " " + "".join(forms)

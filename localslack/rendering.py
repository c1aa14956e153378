"""Slack's mrkdwn and Block Kit as HTML, the way a Slack client shows them.

Text arrives as Slack stores it: ``&amp; &lt; &gt;`` are the characters, ``<@U1>``, ``<#C1>``,
``<!here>`` and ``<url|label>`` are the only markup. Everything else is escaped for HTML, so
nothing an app (or a person through it) wrote can become markup on the page. Open modals are
drawn as forms that send ``view_submission`` (``modal``), with the form helpers the rest of
the page shares.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from html import escape
from typing import Any

from .workspace import Workspace

EMOJI = {
    "rotating_light": "🚨",
    "raised_hand": "✋",
    "alarm_clock": "⏰",
    "arrows_counterclockwise": "🔄",
    "fire": "🔥",
    "warning": "⚠️",
    "white_check_mark": "✅",
    "heavy_check_mark": "✔️",
    "x": "❌",
    "no_entry": "⛔",
    "eyes": "👀",
    "mag": "🔍",
    "bulb": "💡",
    "tada": "🎉",
    "pushpin": "📌",
    "memo": "📝",
    "bell": "🔔",
    "sos": "🆘",
    "hourglass": "⌛",
    "hourglass_flowing_sand": "⏳",
    "clock1": "🕐",
    "arrow_up": "⬆️",
    "arrow_down": "⬇️",
    "arrow_right": "➡️",
    "red_circle": "🔴",
    "large_orange_circle": "🟠",
    "large_yellow_circle": "🟡",
    "large_green_circle": "🟢",
    "large_blue_circle": "🔵",
    "white_circle": "⚪",
    "thumbsup": "👍",
    "+1": "👍",
    "thumbsdown": "👎",
    "wave": "👋",
    "construction": "🚧",
    "link": "🔗",
    "calendar": "📅",
    "speech_balloon": "💬",
    "busts_in_silhouette": "👥",
    "bust_in_silhouette": "👤",
    "rocket": "🚀",
    "broom": "🧹",
    "mega": "📣",
    "loudspeaker": "📢",
    "ok": "🆗",
    "pager": "📟",
    "telephone_receiver": "📞",
    "page_facing_up": "📄",
    "books": "📚",
    "lock": "🔒",
    "stopwatch": "⏱️",
    "zap": "⚡",
    "boom": "💥",
    "sparkles": "✨",
    "leftwards_arrow_with_hook": "↩️",
}
CONTROL = re.compile(r"<([^<>]+)>")
ENTITIES = {"&lt;": "<", "&gt;": ">", "&amp;": "&"}
FORMATS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(?<![\w*])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![\w*])"), r"<b>\1</b>"),
    (re.compile(r"(?<![\w_])_(?!\s)([^_\n]+?)(?<!\s)_(?![\w_])"), r"<i>\1</i>"),
    (re.compile(r"(?<![\w~])~(?!\s)([^~\n]+?)(?<!\s)~(?![\w~])"), r"<s>\1</s>"),
]
CODE = re.compile(r"```(.+?)```|`([^`\n]+)`", re.DOTALL)
SHORTCODE = re.compile(r":([a-z0-9_+\-]+):")


def unescape(text: str) -> str:
    return re.sub(r"&(lt|gt|amp);", lambda m: ENTITIES[m.group(0)], text)


def mrkdwn(ws: Workspace, text: str) -> str:
    """mrkdwn as safe HTML: formatting, code, mentions and channels by name, links, emoji."""
    # Control sequences become placeholders first, so formatting may span them
    # (`_by <@U1>_` is italic) while their own text is never read as formatting.
    controls: list[str] = []

    def hold(match: re.Match[str]) -> str:
        controls.append(_control(ws, match.group(1)))
        return f"\x00{len(controls) - 1}\x00"

    held = _plain(CONTROL.sub(hold, text.replace("\x00", "")))
    html = re.sub("\x00(\\d+)\x00", lambda m: controls[int(m.group(1))], held)
    return html.replace("\n", "<br>")


def _plain(text: str) -> str:
    out: list[str] = []
    last = 0
    for match in CODE.finditer(text):
        out.append(_styled(text[last : match.start()]))
        if match.group(1) is not None:
            out.append(f"<pre>{escape(unescape(match.group(1)))}</pre>")
        else:
            out.append(f"<code>{escape(unescape(match.group(2)))}</code>")
        last = match.end()
    out.append(_styled(text[last:]))
    return "".join(out)


def _styled(text: str) -> str:
    html = escape(unescape(text), quote=False)
    for pattern, replacement in FORMATS:
        html = pattern.sub(replacement, html)
    html = re.sub(r"(^|<br>|\n)&gt; ?([^\n]*)", r"\1<q>\2</q>", html)
    return SHORTCODE.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), html)


def _control(ws: Workspace, inner: str) -> str:
    target, _, label = inner.partition("|")
    if target.startswith("@"):
        user = ws.users.get(target[1:])
        name = user.name if user else (label or target[1:])
        return f"<span class='mention'>@{escape(name)}</span>"
    if target.startswith("#"):
        channel = ws.channels.get(target[1:])
        name = channel.name if channel else (label or target[1:])
        return f"<span class='mention'>#{escape(name)}</span>"
    if target.startswith("!subteam^"):
        group = ws.user_groups.get(target.removeprefix("!subteam^"))
        name = group.handle if group else (label or "group")
        return f"<span class='mention'>@{escape(name)}</span>"
    if target.startswith("!date^"):
        return escape(unescape(label or target))  # the fallback text Slack shows old clients
    if target.startswith("!"):
        return f"<span class='mention'>@{escape(target[1:].split('^')[0])}</span>"
    if re.match(r"^(https?|mailto):", target):
        href = escape(unescape(target), quote=True)
        shown = escape(unescape(label or target))
        return f"<a href='{href}' rel='noreferrer noopener' target='_blank'>{shown}</a>"
    return escape(unescape(f"<{inner}>"))


def text_object(ws: Workspace, obj: dict[str, Any] | None) -> str:
    if not isinstance(obj, dict):
        return ""
    value = str(obj.get("text", ""))
    if obj.get("type") == "mrkdwn":
        return mrkdwn(ws, value)
    return SHORTCODE.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), escape(value))


Button = Callable[[dict[str, Any], str], str]


def blocks(ws: Workspace, items: list[Any], button: Button) -> str:
    """Block Kit blocks as HTML; ``button(element, block_id)`` draws each interactive button."""
    out: list[str] = []
    for block in items:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        block_id = str(block.get("block_id", ""))
        if kind == "header":
            out.append(f"<div class='header'>{text_object(ws, block.get('text'))}</div>")
        elif kind == "divider":
            out.append("<hr>")
        elif kind == "section":
            out.append(f"<div class='section'>{text_object(ws, block.get('text'))}")
            fields = "".join(
                f"<div>{text_object(ws, f)}</div>" for f in block.get("fields", []) or []
            )
            if fields:
                out.append(f"<div class='fields'>{fields}</div>")
            accessory = block.get("accessory")
            if isinstance(accessory, dict) and accessory.get("type") == "button":
                out.append(button(accessory, block_id))
            out.append("</div>")
        elif kind == "context":
            inner = " ".join(text_object(ws, e) for e in block.get("elements", []))
            out.append(f"<div class='context'>{inner}</div>")
        elif kind == "actions":
            inner = "".join(
                button(e, block_id) for e in block.get("elements", []) if e.get("type") == "button"
            )
            out.append(f"<div class='actions'>{inner}</div>")
        elif kind == "rich_text":
            out.append(f"<div class='section'>{escape(_rich_text(block))}</div>")
    return "".join(out)


def _rich_text(block: dict[str, Any]) -> str:
    texts: list[str] = []
    for element in block.get("elements", []):
        for leaf in element.get("elements", []) if isinstance(element, dict) else []:
            if isinstance(leaf, dict) and "text" in leaf:
                texts.append(str(leaf["text"]))
    return "".join(texts)


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


MD_LINE = re.compile(r"^(?:(#{1,5}) |[-*] (?:\[([ xX])\] )?)?(.*)$")


def markdown(text: str) -> str:
    """A canvas's Markdown as safe HTML (headings, lists, checklists, paragraphs, mrkdwn's
    inline formats): every character of it is escaped, so none becomes markup of its own."""
    out: list[str] = []
    for line in text.splitlines():
        heading, box, rest = MD_LINE.match(line).groups()  # type: ignore[union-attr]
        inline = _plain(escape(rest, quote=False))
        if heading:
            out.append(f"<h{len(heading) + 1}>{inline}</h{len(heading) + 1}>")
        elif line[:2] in ("- ", "* "):
            out.append(f"<li>{'' if box is None else '☐☑'[box != ' '] + ' '}{inline}</li>")
        elif rest.strip():
            out.append(f"<p>{inline}</p>")
    return "".join(out)

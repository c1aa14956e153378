"""The read-only workspace page: channels appearing as incidents are declared."""

import time
from html import escape

from .channel import Channel, Message
from .seed import TEAM_ID, TEAM_NAME
from .workspace import Workspace

REFRESH_SECONDS = 2
SHOWN_CHANNELS = 50
SHOWN_MESSAGES = 8
TEXT_CHARS = 400

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d1c1d; }
section { border: 1px solid #ddd; border-radius: 6px; padding: .6rem 1rem; margin: .8rem 0; }
section.archived { opacity: .55; }
h2 { font-size: 1.05rem; margin: .2rem 0; }
.meta { color: #616061; margin: .15rem 0; }
ol { list-style: none; padding: 0; margin: .4rem 0; }
li { margin: .25rem 0; }
time, .notice { color: #868686; }
.pinned { background: #fff8e1; }
"""


def render(ws: Workspace) -> str:
    channels = list(ws.channels.values())
    shown = channels[::-1][:SHOWN_CHANNELS]
    body = "".join(_channel(ws, c) for c in shown)
    more = len(channels) - len(shown)
    tail = f"<p class='meta'>and {more} older conversations</p>" if more > 0 else ""
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<meta http-equiv='refresh' content='{REFRESH_SECONDS}'>"
        f"<title>Local Slack: {escape(TEAM_NAME)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>Local Slack: {escape(TEAM_NAME)} <small>({TEAM_ID})</small></h1>"
        f"<p class='meta'>{len(channels)} conversations, newest first; "
        f"this page refreshes every {REFRESH_SECONDS} seconds.</p>"
        f"{body}{tail}</body></html>"
    )


def _user(ws: Workspace, user_id: str) -> str:
    user = ws.users.get(user_id)
    return "@" + (user.name if user else user_id)


def _channel(ws: Workspace, channel: Channel) -> str:
    if channel.is_im:
        title = "Direct message with " + escape(_user(ws, channel.name))
    else:
        lock = " (private)" if channel.is_private or channel.is_mpim else ""
        title = "#" + escape(channel.name) + lock
    if channel.is_archived:
        title += " (archived)"
    members = ", ".join(escape(_user(ws, m)) for m in channel.members)
    lines = [f"<h2 id='{escape(channel.id)}'>{title} <small>{escape(channel.id)}</small></h2>"]
    if channel.topic:
        lines.append(f"<p class='meta'>Topic: {escape(channel.topic)}</p>")
    if channel.purpose:
        lines.append(f"<p class='meta'>Purpose: {escape(channel.purpose)}</p>")
    lines.append(f"<p class='meta'>Members ({len(channel.members)}): {members}</p>")
    if channel.pins:
        pinned = "; ".join(escape(_text(channel.by_ts[ts])) for ts in channel.pins)
        lines.append(f"<p class='meta'>Pinned: {pinned}</p>")
    for bookmark in channel.bookmarks:
        link = escape(str(bookmark["link"]), quote=True)
        lines.append(
            f"<p class='meta'>Bookmark: <a href='{link}'>{escape(bookmark['title'])}</a></p>"
        )
    recent = channel.messages[-SHOWN_MESSAGES:]
    if recent:
        items = "".join(_message(ws, channel, m) for m in reversed(recent))
        lines.append(f"<ol>{items}</ol>")
    archived = " class='archived'" if channel.is_archived else ""
    return f"<section{archived}>{''.join(lines)}</section>"


def _message(ws: Workspace, channel: Channel, message: Message) -> str:
    when = time.strftime("%H:%M:%S", time.localtime(float(message["ts"])))
    text = escape(_text(message))
    if "subtype" in message and message["subtype"] != "thread_broadcast":
        text = f"<span class='notice'>{text}</span>"
    reply = " (in thread)" if message.get("thread_ts", message["ts"]) != message["ts"] else ""
    pinned = " class='pinned'" if message["ts"] in channel.pins else ""
    who = escape(_user(ws, str(message.get("user", ""))))
    return f"<li{pinned}><time>{when}</time> <b>{who}</b>{reply}: {text}</li>"


def _text(message: Message) -> str:
    """The message text, or the first readable block when it only has blocks."""
    text = str(message.get("text") or "")
    if not text:
        for block in message.get("blocks", []):
            inner = block.get("text")
            if isinstance(inner, dict) and inner.get("text"):
                text = str(inner["text"])
                break
    if len(text) > TEXT_CHARS:
        text = text[:TEXT_CHARS] + "..."
    return text

"""The workspace page: Slack as a person sees it, and a place to drive the app from.

Messages render like Slack (mrkdwn, mentions by name, emoji, links, buttons); a box sends a
signed slash command as a chosen user in a chosen channel; buttons send real ``block_actions``;
open modals are forms that send ``view_submission``; replies sent to a ``response_url`` show
as "only visible to you". A small script refreshes it without losing what is being typed.
"""

from __future__ import annotations

import time
from html import escape
from typing import Any

from .api.files import in_channel
from .console import Console
from .events import home, reacting
from .posts import Channel, Message, in_history
from .rendering import Button, blocks, hidden, modal, mrkdwn, options
from .seed import HUMAN_IDS, OWNER_ID, TEAM_ID, TEAM_NAME
from .workspace import Workspace

SCRIPT = """
(function () {
  "use strict";
  function typing(region) {
    var a = document.activeElement;
    return !!(a && region && region.contains(a) && /^(INPUT|TEXTAREA|SELECT)$/.test(a.tagName));
  }
  function swap(fresh, id, onlyWhenChanged) {
    var now = document.getElementById(id), next = fresh.getElementById(id);
    if (!now || !next || typing(now)) return;
    if (onlyWhenChanged && now.dataset.key === next.dataset.key) return;
    now.innerHTML = next.innerHTML;
    now.dataset.key = next.dataset.key || "";
  }
  async function refresh() {
    try {
      var response = await fetch(location.href, {cache: "no-store"});
      var fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      swap(fresh, "live", false);
      swap(fresh, "modals", true);
    } catch (e) { /* the emulator restarting: try again on the next tick */ }
  }
  setInterval(refresh, 1500);
})();
"""


REFRESH_SECONDS = 2
SHOWN_CHANNELS = 50
SHOWN_MESSAGES = 12
SHOWN_REPLIES = 6
TEXT_CHARS = 3000
EXAMPLE = "/incident declare sev1 Checkout failing"

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5rem; color: #1d1c1d; max-width: 70rem; }
section { border: 1px solid #ddd; border-radius: 6px; padding: .6rem 1rem; margin: .8rem 0; }
section.archived { opacity: .55; }
h2 { font-size: 1.05rem; margin: .2rem 0; }
.meta { color: #616061; margin: .15rem 0; }
ol { list-style: none; padding: 0; margin: .4rem 0; }
li { margin: .45rem 0; padding: .2rem .3rem; }
time, .notice, .context { color: #868686; font-size: 12px; }
.pinned { background: #fff8e1; }
ol.thread { border-left: 3px solid #ddd; margin-left: 1rem; padding-left: .5rem; }
.mention { background: #e8f5fa; color: #1264a3; border-radius: 3px; padding: 0 2px; }
code { background: #f6f6f6; border: 1px solid #ddd; border-radius: 3px; padding: 0 3px;
  color: #e01e5a; }
pre { background: #f6f6f6; border: 1px solid #ddd; padding: .4rem; white-space: pre-wrap; }
q { display: block; border-left: 4px solid #ddd; padding-left: .5rem; quotes: none; }
.header { font-weight: 700; font-size: 1.1rem; }
.fields { display: grid; grid-template-columns: 1fr 1fr; gap: .2rem 1rem; margin: .3rem 0; }
.actions form, .section form, form.inline { display: inline; }
button { border: 1px solid #bbb; background: #fff; border-radius: 4px; padding: .2rem .7rem;
  margin: .2rem .3rem .2rem 0; cursor: pointer; font-weight: 600; }
button.primary { background: #007a5a; color: #fff; border-color: #007a5a; }
button.danger { background: #e01e5a; color: #fff; border-color: #e01e5a; }
button.shortcut { font-weight: 400; font-size: 11px; padding: 0 .4rem; color: #616061; }
button.shortcut.primary { color: #fff; }  /* a reaction of the person acting */
a.button { border: 1px solid #bbb; border-radius: 4px; padding: .2rem .7rem; text-decoration: none;
  color: #1d1c1d; font-weight: 600; margin-right: .3rem; }
#console { background: #f8f8f8; position: sticky; top: 0; z-index: 1; }
#console input[name=text] { width: 28rem; }
.modal { border: 2px solid #1264a3; background: #fff; }
.modal label { display: block; font-weight: 700; margin-top: .5rem; }
.modal input, .modal textarea, .modal select { width: 100%; box-sizing: border-box; }
.error { color: #e01e5a; }
#home .header { margin-top: .7rem; } #home .section { margin: .35rem 0; }
#home .section form { margin-left: .5rem; }
.ephemeral { background: #f4ede4; border-left: 4px solid #d4a373; }
"""


def render(
    ws: Workspace, console: Console | None = None, acting: str = "", channel_id: str = ""
) -> str:
    user = acting if acting in ws.users else OWNER_ID
    channels = list(ws.channels.values())
    shown = channels[::-1][:SHOWN_CHANNELS]
    body = "".join(_channel(ws, c, user) for c in shown)
    more = len(channels) - len(shown)
    tail = f"<p class='meta'>and {more} older conversations</p>" if more > 0 else ""
    replies = _replies(ws, console, user) if console else ""
    views = [v for v in ws.views.values() if v["open"] and v["user"] in (user, None)]
    key = ",".join(v["view"]["id"] + str(sorted(v["errors"])) for v in views)
    modals = "".join(modal(ws, v, user) for v in views)
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<noscript><meta http-equiv='refresh' content='{REFRESH_SECONDS}'></noscript>"
        "<script src='/_emulator/page.js' defer></script>"
        f"<title>Local Slack: {escape(TEAM_NAME)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>Local Slack: {escape(TEAM_NAME)} <small>({TEAM_ID})</small></h1>"
        f"{_console(ws, console, user, channel_id)}"
        f"<div id='modals' data-key='{escape(key, quote=True)}'>{modals}</div>"
        f"<div id='live'>{home(ws, user, _buttons(user, '', ''))}{replies}{_user_groups(ws)}"
        f"<p class='meta'>{len(channels)} conversations, newest first; "
        f"this page refreshes every {REFRESH_SECONDS} seconds.</p>"
        f"{body}{tail}</div></body></html>"
    )


def _console(ws: Workspace, console: Console | None, user: str, channel_id: str) -> str:
    people = [(u, "@" + ws.users[u].name) for u in HUMAN_IDS if u in ws.users]
    rooms = [
        (c.id, "#" + c.name)
        for c in list(ws.channels.values())[::-1]
        if not c.is_archived and not c.is_im and not c.is_mpim
    ]
    app = console.app_url if console else ""
    where = (
        f"Sends to <code>{escape(app)}</code>, signed like Slack."
        if app
        else "No app to send to: start the emulator with LOCALSLACK_APP_URL (make run does)."
    )
    return (
        "<section id='console'>"
        "<form class='inline' method='get' action='/'>Acting as "
        f"<select name='as' onchange='this.form.submit()'>{options(people, user)}</select> "
        "</form>"
        "<form class='inline' method='post' action='/_emulator/slash'>"
        f"<input type='hidden' name='user' value='{escape(user, quote=True)}'> in "
        f"<select name='channel'>{options(rooms, channel_id or _general(ws))}</select> "
        f"<input name='text' value='{escape(EXAMPLE, quote=True)}' maxlength='3000' "
        "aria-label='slash command'> <button class='primary' type='submit'>Send</button></form>"
        f"<p class='meta'>{where}</p></section>"
    )


def _user_groups(ws: Workspace) -> str:
    """Who is in each user group now: what ``@handle`` reaches (usergroups.users.update)."""
    rows = "".join(
        f"<li><span class='mention'>@{escape(g.handle)}</span> {escape(g.name)} "
        f"<small>{escape(g.id)}</small>: "
        f"{', '.join(escape(_user(ws, u)) for u in g.users) or '<i>nobody</i>'}</li>"
        for g in ws.user_groups.values()
    )
    return f"<section id='user-groups'><h2>User groups</h2><ol>{rows}</ol></section>"


def _general(ws: Workspace) -> str:
    return next((c.id for c in ws.channels.values() if c.is_general), "")


def _replies(ws: Workspace, console: Console, user: str) -> str:
    mine = [r for r in console.replies if r.user == user][-SHOWN_REPLIES:]
    if not mine:
        return ""
    items = "".join(
        f"<li class='ephemeral'><span class='context'>Only visible to you · "
        f"{escape(channel_name(ws, r.channel))} · {_when(r.at)}</span><br>"
        f"{blocks(ws, r.blocks, _buttons(user, r.channel, '')) if r.blocks else mrkdwn(ws, r.text)}"
        "</li>"
        for r in reversed(mine)
    )
    return f"<section id='replies'><h2>Replies to you</h2><ol>{items}</ol></section>"


def _buttons(user: str, channel_id: str, ts: str) -> Button:
    """Buttons of one message, as forms that make the emulator send ``block_actions``."""

    def button(element: dict[str, Any], block_id: str) -> str:
        label = escape(str((element.get("text") or {}).get("text", "")))
        if element.get("url"):
            href = escape(str(element["url"]), quote=True)
            return f"<a class='button' href='{href}' target='_blank' rel='noreferrer'>{label}</a>"
        style = str(element.get("style", ""))
        fields = hidden(
            user=user,
            channel=channel_id,
            ts=ts,
            action_id=str(element.get("action_id", "")),
            block_id=block_id,
            value=str(element.get("value", "")),
        )
        return (
            f"<form method='post' action='/_emulator/click'>{fields}"
            f"<button type='submit' class='{escape(style, quote=True)}'>{label}</button></form>"
        )

    return button


def channel_name(ws: Workspace, channel_id: str) -> str:
    channel = ws.channels.get(channel_id)
    return "#" + channel.name if channel else channel_id


def _user(ws: Workspace, user_id: str) -> str:
    user = ws.users.get(user_id)
    return "@" + (user.name if user else user_id)


def _when(at: float) -> str:
    # With its zone: messages name times in other zones ("until 09:00 Europe/Paris").
    return time.strftime("%H:%M:%S %Z", time.localtime(at))


def _channel(ws: Workspace, channel: Channel, user: str) -> str:
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
        lines.append(f"<p class='meta'>Topic: {mrkdwn(ws, channel.topic)}</p>")
    if channel.purpose:
        lines.append(f"<p class='meta'>Purpose: {mrkdwn(ws, channel.purpose)}</p>")
    join = ""
    if user not in channel.members and channel.is_channel and not channel.is_private:
        fields = hidden(user=user, channel=channel.id)
        join = (
            f" <form class='inline' method='post' action='/_emulator/join'>{fields}"
            "<button class='shortcut'>Join</button></form>"
        )
    lines.append(f"<p class='meta'>Members ({len(channel.members)}): {members}{join}</p>")
    links = [("Bookmark", str(b["link"]), str(b["title"])) for b in channel.bookmarks]
    for canvas in in_channel(ws, channel.id):  # each links to the page showing it
        links.append(("Canvas", f"/_emulator/canvas/{canvas['id']}", canvas["title"]))
    for kind, href, label in links:
        link = f"<a href='{escape(href, quote=True)}'>{escape(label)}</a>"
        lines.append(f"<p class='meta'>{kind}: {link}</p>")
    pinned = [channel.by_ts[ts] for ts in channel.pins if ts in channel.by_ts]
    if pinned:
        items = "".join(_message(ws, channel, m, user) for m in pinned)
        lines.append(f"<p class='meta'>Pinned</p><ol>{items}</ol>")
    # The channel's own messages; replies show in their parent's thread, as Slack shows them.
    shown = [m for m in channel.messages if in_history(m)][-SHOWN_MESSAGES:]
    recent = [m for m in shown if m["ts"] not in channel.pins]
    if recent:
        items = "".join(_message(ws, channel, m, user) for m in reversed(recent))
        lines.append(f"<ol>{items}</ol>")
    archived = " class='archived'" if channel.is_archived else ""
    return f"<section{archived}>{''.join(lines)}</section>"


def _message(ws: Workspace, channel: Channel, message: Message, user: str) -> str:
    when = _when(float(message["ts"]))
    reply = " (in thread)" if message.get("thread_ts", message["ts"]) != message["ts"] else ""
    pinned = " class='pinned'" if message["ts"] in channel.pins else ""
    who = escape(_user(ws, str(message.get("user", ""))))

    button = _buttons(user, channel.id, str(message["ts"]))

    if message.get("blocks"):
        content = blocks(ws, message["blocks"], button)
    else:
        content = mrkdwn(ws, _text(message))
    if "subtype" in message and message["subtype"] != "thread_broadcast":
        content = f"<span class='notice'>{content}</span>"
    shortcut = ""
    if "subtype" not in message and not channel.is_archived:
        fields = hidden(
            user=user, channel=channel.id, ts=str(message["ts"]), callback_id="add_to_timeline"
        )
        shortcut = (
            f" <form class='inline' method='post' action='/_emulator/shortcut'>{fields}"
            "<button class='shortcut' type='submit'>Add to timeline</button></form>"
        )
        shortcut += reacting(channel, message, user)
    thread = ""
    if message.get("thread_ts") == message["ts"]:  # a parent: its latest replies beneath it
        replies = [m for m in channel.messages if m.get("thread_ts") == message["ts"]][1:]
        items = "".join(_message(ws, channel, m, user) for m in replies[-SHOWN_MESSAGES:])
        thread = f"<ol class='thread'>{items}</ol>"
    return (
        f"<li{pinned}><time>{when}</time> <b>{who}</b>{reply}{shortcut}<br>{content}{thread}</li>"
    )


def _text(message: Message) -> str:
    text = str(message.get("text") or "")
    if len(text) > TEXT_CHARS:
        text = text[:TEXT_CHARS] + "..."
    return text

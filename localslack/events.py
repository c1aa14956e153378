"""The Events API as Slack delivers it: what happened in the workspace (a reaction, a pin, a
join) goes to the app's request URL as a signed ``event_callback``, once per event the app's
manifest subscribes to (``settings.event_subscriptions.bot_events``).

Slack wants a 2xx within 3 seconds. A slower or failed answer is sent again, up to 3 times,
with ``X-Slack-Retry-Num`` and ``X-Slack-Retry-Reason``; Slack waits about a minute and then
five before the second and third retries, the emulator a second and five (``RETRY_DELAYS``) so
a person watching the page, or a test, sees them through. An app may say
``X-Slack-No-Retry: 1`` to stop them. A retry carries the same ``event_id``, so the app can
tell it from a new event; Slack also sends some events twice without a retry, which
``redeliver`` does on purpose.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from html import escape
from typing import Any

import aiohttp

from .errors import manifest_events
from .posts import Channel, Message
from .rendering import Button, blocks, hidden
from .seed import APP_ID, BOT_USER_ID, TEAM_ID
from .workspace import Workspace

RETRY_DELAYS = (0.0, 1.0, 5.0)  # before retry 1, 2 and 3
ANSWER_WITHIN = 3.0  # seconds Slack waits for the app's 2xx
MAX_DELIVERIES = 500  # attempts remembered for the page and tests

# POST (body, headers, timeout) to the app's request URL: its status and X-Slack-No-Retry.
Post = Callable[[str, dict[str, str], float], Awaitable[tuple[int, str]]]


@dataclass(frozen=True)
class Attempt:
    """One try at delivering one event: which, the how-many-th, and how the app answered."""

    event_id: str
    type: str
    retry: int  # 0 for the first delivery
    status: int | None  # None: no answer in time, or no connection
    reason: str | None  # why the next try is a retry (Slack's X-Slack-Retry-Reason)
    at: float

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def envelope(event: dict[str, Any], event_id: str) -> dict[str, Any]:
    """The ``event_callback`` wrapping one event, as Slack's Events API sends it."""
    return {
        "token": "local",
        "team_id": TEAM_ID,
        "api_app_id": APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(float(event.get("event_ts", time.time()))),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"local-{event_id}",
    }


@dataclass
class EventDelivery:
    post: Post
    subscribed: frozenset[str] = field(default_factory=manifest_events)
    retry_delays: tuple[float, ...] = RETRY_DELAYS
    answer_within: float = ANSWER_WITHIN
    attempts: list[Attempt] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)  # envelopes, newest last
    _running: set[asyncio.Task[None]] = field(default_factory=set)

    def flush(self, events: list[dict[str, Any]]) -> None:
        """Deliver (in the background) the events that happened, and forget them."""
        pending, events[:] = list(events), []
        for event in pending:
            if event["type"] not in self.subscribed:
                continue
            # Unique across restarts too: the app keeps the ids it applied.
            wrapped = envelope(event, "Ev" + secrets.token_hex(6).upper())
            self.sent.append(wrapped)
            del self.sent[:-MAX_DELIVERIES]
            task = asyncio.ensure_future(self.deliver(wrapped))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def settled(self) -> None:
        """Until every delivery under way has its answer or has run out of retries."""
        while self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)

    async def redeliver(self, event_id: str) -> None:
        """The same event sent again as a new delivery, not a retry: Slack does that too."""
        wrapped = next(e for e in reversed(self.sent) if e["event_id"] == event_id)
        await self.deliver(wrapped)

    async def deliver(self, wrapped: dict[str, Any]) -> None:
        body = json.dumps(wrapped)
        reason: str | None = None
        for retry in range(len(self.retry_delays) + 1):
            if retry:
                await asyncio.sleep(self.retry_delays[retry - 1])
            headers = {"Content-Type": "application/json"}
            if reason is not None:
                headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": reason}
            status, reason, stop = await self._try(body, headers)
            self.attempts.append(
                Attempt(
                    wrapped["event_id"],
                    wrapped["event"]["type"],
                    retry,
                    status,
                    reason,
                    time.time(),
                )
            )
            del self.attempts[:-MAX_DELIVERIES]
            if reason is None or stop:
                return

    async def _try(self, body: str, headers: dict[str, str]) -> tuple[int | None, str | None, bool]:
        """The app's status, why to retry (None: delivered), and whether it asked for none."""
        try:
            status, no_retry = await asyncio.wait_for(
                self.post(body, headers, self.answer_within), self.answer_within
            )
        except TimeoutError:
            return None, "http_timeout", False
        except aiohttp.ClientError:
            return None, "connection_failed", False
        if 200 <= status < 300:
            return status, None, False
        return status, "http_error", no_retry == "1"

    def url_verification(self, challenge: str) -> str:
        """The body Slack sends when the request URL is set: the app must echo the challenge."""
        return json.dumps({"token": "local", "challenge": challenge, "type": "url_verification"})


# The page's controls that make events: a reaction toggled, a message pinned.
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


def home(ws: Workspace, user: str, button: Button) -> str:
    """The person's App Home: what the app last published for them (views.publish), and the
    control that opens it, as clicking the app in Slack's sidebar does (``app_home_opened``)."""
    shown = ws.homes.get(user)
    verb = "Refresh" if shown else "Open"
    opener = (
        f"<form class='inline' method='post' action='/_emulator/home'>{hidden(user=user)}"
        f"<button class='primary'>{verb} App Home</button></form>"
    )
    body = blocks(ws, shown.get("blocks", []), button) if shown else ""
    name = escape(ws.users[user].name) if user in ws.users else escape(user)
    return f"<section id='home'><h2>Home of @{name} {opener}</h2>{body}</section>"

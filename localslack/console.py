"""The emulator as Slack's client side: it drives a Slack app the way Slack does.

It sends signed slash commands, ``block_actions``, ``view_submission`` and message-shortcut
payloads to the app's request URL (``LOCALSLACK_APP_URL`` for ``python -m localslack``,
signed with ``SLACK_SIGNING_SECRET``), and answers the ``response_url`` it hands out,
recording what the app said there. The page and the tests use the same calls.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp

from .api import chat
from .events import EventDelivery
from .seed import APP_ID, TEAM_DOMAIN, TEAM_ID
from .workspace import Workspace

MAX_RESPONSES = 200
TIMEOUT = aiohttp.ClientTimeout(total=10)


def signature(secret: str, timestamp: str, body: str) -> str:
    """Slack's request signature: v0 HMAC-SHA256 of ``v0:{timestamp}:{body}``."""
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass
class Reply:
    """What the app posted to a response_url: who it was for, where, and what it said."""

    user: str
    channel: str
    response_type: str
    text: str
    blocks: list[Any]
    at: float

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Sent:
    """The app's answer to one request the console sent."""

    status: int
    body: str

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body.strip().startswith("{") else None


@dataclass
class Console:
    app_url: str = ""
    signing_secret: str = ""
    origin: str = ""  # the emulator's own http://host:port, set when it starts
    replies: list[Reply] = field(default_factory=list)
    _pending: dict[str, tuple[str, str]] = field(default_factory=dict)
    events: EventDelivery = field(init=False)

    def __post_init__(self) -> None:
        self.events = EventDelivery(self._post_event)

    # --- what people do -------------------------------------------------------------------

    def say(self, ws: Workspace, user: str, channel_id: str, text: str) -> str:
        """A person posts a message; its ts, for a shortcut or a reaction to point at."""
        message = {"type": "message", "ts": ws.next_ts(), "user": user, "text": text[:4000]}
        ws.channels[channel_id].add(message)
        ws.posts.emit({**message, "channel": channel_id})
        self.flush(ws)
        return str(message["ts"])

    def react(
        self, ws: Workspace, user: str, channel_id: str, ts: str, name: str, on: bool
    ) -> None:
        """A person adds (``on``) or takes back an emoji reaction on message ``ts``."""
        chat.react(ws, ws.channel(channel_id, user), ts, user, name, on)
        self.flush(ws)

    def pin(self, ws: Workspace, user: str, channel_id: str, ts: str, on: bool) -> None:
        channel = ws.channel(channel_id, user)
        if on:
            ws.posts.pin(channel, ts, user)
        else:
            ws.posts.unpin(channel, ts, user)
        self.flush(ws)

    def join(self, ws: Workspace, user: str, channel_id: str) -> None:
        ws.join(ws.channel(channel_id, user), user)
        self.flush(ws)

    def home(self, ws: Workspace, user: str) -> None:
        ws.home_opened(user)
        self.flush(ws)

    def flush(self, ws: Workspace) -> None:
        """Deliver what happened in the workspace to the app; with no app, nobody hears it."""
        if self.app_url:
            self.events.flush(ws.events)
        else:
            ws.events.clear()

    # --- what Slack sends the app ---------------------------------------------------------

    async def slash(
        self, ws: Workspace, user: str, channel_id: str, text: str, *, age: float = 0.0
    ) -> Sent:
        """``/incident declare sev1 x`` as typed in ``channel_id`` by ``user``."""
        command, _, rest = text.strip().partition(" ")
        channel = ws.channels[channel_id]
        form = {
            "token": "local",
            "team_id": TEAM_ID,
            "team_domain": TEAM_DOMAIN,
            "channel_id": channel_id,
            "channel_name": "privategroup" if channel.is_private else channel.name,  # as Slack
            "user_id": user,
            "user_name": ws.users[user].name if user in ws.users else user,
            "command": command,
            "text": rest.strip(),
            "api_app_id": APP_ID,
            "response_url": self._response_url(ws, user, channel_id),
            "trigger_id": self._trigger(ws, user),
        }
        return await self.send(urlencode(form), age=age)

    async def click(
        self, ws: Workspace, user: str, channel_id: str, ts: str, action: dict[str, Any]
    ) -> Sent:
        """A button in message ``ts`` pressed (with no channel, one of the person's App Home):
        ``block_actions``."""
        if channel_id:
            channel = ws.channels[channel_id]
            # Slack names a direct message "directmessage" here, never after the person.
            name = "directmessage" if channel.is_im else channel.name
            where = {
                "channel": {"id": channel_id, "name": name},
                "container": {"type": "message", "message_ts": ts, "channel_id": channel_id},
                "message": channel.by_ts.get(ts, {"ts": ts}),
                "response_url": self._response_url(ws, user, channel_id),
            }
        else:  # the Home tab: no channel, no response_url; the view it was pressed in
            home = ws.homes.get(user, {})
            where = {"container": {"type": "view", "view_id": home.get("id", "")}, "view": home}
        payload = {
            "type": "block_actions",
            **self._common(ws, user),
            **where,
            "actions": [{**action, "type": "button", "action_ts": f"{time.time():.6f}"}],
        }
        return await self.send(urlencode({"payload": json.dumps(payload)}))

    async def shortcut(
        self, ws: Workspace, user: str, channel_id: str, ts: str, callback_id: str
    ) -> Sent:
        """A message shortcut (like "Add to timeline") on message ``ts``: ``message_action``."""
        payload = {
            "type": "message_action",
            **self._common(ws, user),
            "callback_id": callback_id,
            "channel": {"id": channel_id, "name": ws.channels[channel_id].name},
            "message": ws.channels[channel_id].by_ts[ts],
            "message_ts": ts,
            "response_url": self._response_url(ws, user, channel_id),
        }
        return await self.send(urlencode({"payload": json.dumps(payload)}))

    async def submit(
        self, ws: Workspace, view_id: str, answers: dict[str, Any], user: str = ""
    ) -> Sent:
        """The open modal ``view_id`` submitted with ``answers`` (block id -> value(s)), by
        whoever opened it (or ``user``, for a modal opened with a trigger we never issued)."""
        opened = ws.views[view_id]
        view = {**opened["view"], "state": {"values": _state(opened["view"], answers)}}
        submitter = opened["user"] or user
        payload = {"type": "view_submission", **self._common(ws, submitter), "view": view}
        sent = await self.send(urlencode({"payload": json.dumps(payload)}))
        answer = sent.json or {}
        if sent.status == 200 and answer.get("response_action") != "errors":
            opened["open"] = False
        opened["errors"] = answer.get("errors", {})
        return sent

    async def send(
        self, body: str, *, age: float = 0.0, headers: dict[str, str] | None = None
    ) -> Sent:
        """POST a signed request to the app; ``age`` back-dates it (stale requests get 401)."""
        status, text, _ = await self._signed(body, headers or {}, age, TIMEOUT)
        return Sent(status, text)

    async def _post_event(
        self, body: str, headers: dict[str, str], within: float
    ) -> tuple[int, str]:
        status, _, no_retry = await self._signed(
            body, headers, 0.0, aiohttp.ClientTimeout(total=within)
        )
        return status, no_retry

    async def _signed(
        self, body: str, headers: dict[str, str], age: float, within: aiohttp.ClientTimeout
    ) -> tuple[int, str, str]:
        """The app's status, its answer and its X-Slack-No-Retry header."""
        if not self.app_url:
            raise ValueError("no app URL: set LOCALSLACK_APP_URL (like http://127.0.0.1:8000)")
        timestamp = str(int(time.time() - age))
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            **headers,
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": signature(self.signing_secret, timestamp, body),
        }
        url = self.app_url.rstrip("/")
        if not url.endswith("/slack/events"):
            url += "/slack/events"
        async with (
            aiohttp.ClientSession(timeout=within) as http,
            http.post(url, data=body.encode(), headers=headers) as response,
        ):
            text = await response.text()
            return response.status, text, response.headers.get("X-Slack-No-Retry", "")

    # --- what the app sends back ----------------------------------------------------------

    def reply(self, key: str, body: dict[str, Any]) -> bool:
        """A post to a response_url we handed out; False for one we never did."""
        found = self._pending.get(key)
        if found is None:
            return False
        user, channel = found
        reply = Reply(
            user=user,
            channel=channel,
            response_type=str(body.get("response_type") or "ephemeral"),
            text=str(body.get("text") or ""),
            blocks=list(body.get("blocks") or []),
            at=time.time(),
        )
        self.replies.append(reply)
        del self.replies[:-MAX_RESPONSES]
        return True

    def _common(self, ws: Workspace, user: str) -> dict[str, Any]:
        name = ws.users[user].name if user in ws.users else user
        return {
            "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
            "user": {"id": user, "username": name, "name": name, "team_id": TEAM_ID},
            "api_app_id": APP_ID,
            "token": "local",
            "trigger_id": self._trigger(ws, user),
        }

    def _response_url(self, ws: Workspace, user: str, channel_id: str) -> str:
        key = ws.new_id("R")
        self._pending[key] = (user, channel_id)
        return f"{self.origin}/_emulator/respond/{key}"

    def _trigger(self, ws: Workspace, user: str) -> str:
        trigger = f"{int(time.time())}.{ws.new_id('')}"
        ws.triggers[trigger] = user
        return trigger


def _state(view: dict[str, Any], answers: dict[str, Any]) -> dict[str, Any]:
    """The ``state.values`` Slack sends with a submission, from plain answers by block id."""
    values: dict[str, Any] = {}
    for block in view.get("blocks", []):
        if block.get("type") != "input":
            continue
        element = block["element"]
        kind = element.get("type")
        given = answers.get(block["block_id"])
        if kind == "static_select":
            chosen = next((o for o in element["options"] if o["value"] == given), None)
            answer: dict[str, Any] = {"type": kind, "selected_option": chosen}
        elif kind == "multi_static_select":
            wanted = given if isinstance(given, list) else [given] if given else []
            chosen_all = [o for o in element["options"] if o["value"] in wanted]
            answer = {"type": kind, "selected_options": chosen_all}
        else:
            answer = {"type": kind, "value": given if given else None}
        values[block["block_id"]] = {element["action_id"]: answer}
    return values

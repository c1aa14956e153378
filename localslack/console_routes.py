"""The routes of the console: the page's forms, the response_url, and what tests read.

The page's POST routes refuse cross-site requests: a browser says where a request comes from
(``Sec-Fetch-Site``, ``Origin``), and only this page may make the emulator send signed
commands to the app. Clients that are not browsers (tests, curl) send neither and are let in.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any, Protocol
from urllib.parse import urlencode, urlparse

from aiohttp import web

from . import page
from .api.files import canvas_url
from .console import Console
from .errors import SlackError
from .rendering import markdown
from .workspace import Workspace


class Emulator(Protocol):
    """What the routes use of the emulator (server.SlackEmulator), which imports them."""

    workspace: Workspace
    console: Console


MAX_FORM = 16_384
CANVAS_STYLE = (
    "body { font: 15px/1.5 system-ui, sans-serif; margin: 2rem auto; max-width: 48rem; }"
    ".meta { color: #616061; font-size: 12px; } li { margin: .2rem 0 .2rem 1rem; }"
    "code { background: #f6f6f6; padding: 0 3px; } q { display: block; border-left: 4px solid #ddd;"
    " padding-left: .5rem; }"
)


def add_console_routes(app: web.Application, emulator: Emulator) -> None:
    routes = ConsoleRoutes(emulator)
    app.router.add_post("/_emulator/respond/{key}", routes.respond)
    app.router.add_post("/_emulator/slash", routes.slash)
    app.router.add_post("/_emulator/click", routes.click)
    app.router.add_post("/_emulator/shortcut", routes.shortcut)
    app.router.add_post("/_emulator/submit", routes.submit)
    app.router.add_post("/_emulator/close", routes.close)
    app.router.add_post("/_emulator/react", routes.react)
    app.router.add_post("/_emulator/pin", routes.pin)
    app.router.add_post("/_emulator/join", routes.join)
    app.router.add_post("/_emulator/home", routes.home)
    app.router.add_get("/_emulator/deliveries", routes.deliveries)
    app.router.add_get("/_emulator/replies", routes.replies)
    app.router.add_get("/_emulator/views", routes.views)
    app.router.add_get("/_emulator/page.js", routes.script)
    app.router.add_get("/_emulator/canvas/{canvas_id}", routes.canvas)
    app.router.add_post("/_emulator/canvases", routes.canvas_plan)


def cross_site(request: web.Request) -> bool:
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return True
    origin = request.headers.get("Origin")
    return origin is not None and urlparse(origin).netloc != request.host


class ConsoleRoutes:
    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    async def respond(self, request: web.Request) -> web.Response:
        """The app answering through a response_url we handed out."""
        try:
            body = await request.json()
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        if not isinstance(body, dict):
            return web.Response(status=400, text="invalid_payload")
        if not self.emulator.console.reply(request.match_info["key"], body):
            return web.Response(status=404, text="no_such_response_url")
        return web.Response(text="ok")

    async def _form(self, request: web.Request) -> dict[str, Any]:
        if cross_site(request):
            raise web.HTTPForbidden(text="cross-site requests are refused")
        if (request.content_length or 0) > MAX_FORM:
            raise web.HTTPRequestEntityTooLarge(MAX_FORM, request.content_length or 0)
        if request.content_type == "application/json":
            body = await request.json()
            if not isinstance(body, dict):
                raise web.HTTPBadRequest(text="a JSON object, please")
            return body
        form = await request.post()
        answers: dict[str, Any] = {}
        for key in form:
            values = [v for v in form.getall(key) if isinstance(v, str)]
            answers[key] = values if key.startswith("multi:") else values[-1]
        return {k.removeprefix("multi:"): v for k, v in answers.items()}

    def _answer(
        self, request: web.Request, status: int, body: str, user: str = "", channel: str = ""
    ) -> web.Response:
        """A form from the page goes back to the page (as the same person, in the same
        channel); a JSON caller gets the app's answer."""
        if request.content_type == "application/json":
            return web.json_response({"status": status, "body": body})
        where = {k: v for k, v in (("as", user), ("in", channel)) if v}
        raise web.HTTPSeeOther("/?" + urlencode(where) if where else "/")

    async def _send(self, request: web.Request, kind: str) -> web.Response:
        form = await self._form(request)
        ws = self.emulator.workspace
        console = self.emulator.console
        try:
            user, channel = str(form.get("user", "")), str(form.get("channel", ""))
            if kind == "slash" and not str(form["text"]).startswith("/"):
                console.say(ws, user, channel, str(form["text"]))  # a plain message
                return self._answer(request, 200, "", user, channel)
            if kind == "slash":
                sent = await console.slash(ws, user, channel, str(form["text"]))
            elif kind == "click":
                action = {
                    "action_id": str(form["action_id"]),
                    "block_id": str(form.get("block_id", "")),
                    "value": str(form.get("value", "")),
                }
                sent = await console.click(ws, user, channel, str(form["ts"]), action)
            elif kind == "shortcut":
                ts, callback = str(form["ts"]), str(form["callback_id"])
                sent = await console.shortcut(ws, user, channel, ts, callback)
            else:
                view_id = str(form.pop("view_id"))
                answers = {k: v for k, v in form.items() if k not in ("user", "channel")}
                sent = await console.submit(ws, view_id, answers, user)
        except (KeyError, ValueError) as error:
            raise web.HTTPBadRequest(text=f"cannot send that: {error}") from None
        return self._answer(request, sent.status, sent.body, user, channel)

    async def _do(self, request: web.Request, kind: str) -> web.Response:
        """What a person does in Slack itself (react, pin, join, open the app's Home): no app
        answers, but the app hears of it as an event."""
        form = await self._form(request)
        ws, console = self.emulator.workspace, self.emulator.console
        user, channel = str(form.get("user", "")), str(form.get("channel", ""))
        on = str(form.get("on", "1")) == "1"
        try:
            if kind == "react":
                console.react(ws, user, channel, str(form["ts"]), str(form["name"]), on)
            elif kind == "pin":
                console.pin(ws, user, channel, str(form["ts"]), on)
            elif kind == "home":
                console.home(ws, user)
            else:
                console.join(ws, user, channel)
        except KeyError as error:
            raise web.HTTPBadRequest(text=f"cannot do that: missing {error}") from None
        except SlackError as error:
            raise web.HTTPBadRequest(text=f"Slack says {error.code}") from None
        return self._answer(request, 200, "", user, channel)

    async def react(self, request: web.Request) -> web.Response:
        return await self._do(request, "react")

    async def pin(self, request: web.Request) -> web.Response:
        return await self._do(request, "pin")

    async def join(self, request: web.Request) -> web.Response:
        return await self._do(request, "join")

    async def home(self, request: web.Request) -> web.Response:
        return await self._do(request, "home")

    async def deliveries(self, request: web.Request) -> web.Response:
        attempts = [a.to_json() for a in self.emulator.console.events.attempts]
        return web.json_response({"deliveries": attempts})

    async def slash(self, request: web.Request) -> web.Response:
        return await self._send(request, "slash")

    async def click(self, request: web.Request) -> web.Response:
        return await self._send(request, "click")

    async def shortcut(self, request: web.Request) -> web.Response:
        return await self._send(request, "shortcut")

    async def submit(self, request: web.Request) -> web.Response:
        return await self._send(request, "submit")

    async def close(self, request: web.Request) -> web.Response:
        form = await self._form(request)
        opened = self.emulator.workspace.views.get(str(form.get("view_id")))
        if opened is not None:
            opened["open"] = False
        return self._answer(request, 200, "", str(form.get("user", "")))

    async def replies(self, request: web.Request) -> web.Response:
        replies = [r.to_json() for r in self.emulator.console.replies]
        return web.json_response({"replies": replies}, dumps=json.dumps)

    async def views(self, request: web.Request) -> web.Response:
        return web.json_response({"views": list(self.emulator.workspace.views.values())})

    async def script(self, request: web.Request) -> web.Response:
        return web.Response(text=page.SCRIPT, content_type="text/javascript")

    async def canvas(self, request: web.Request) -> web.Response:
        """A canvas as a person reads it: its Markdown rendered, every character escaped."""
        canvas = self.emulator.workspace.canvases.get(request.match_info["canvas_id"])
        if canvas is None:
            return web.Response(status=404, text="canvas_not_found")
        kind = "Channel canvas" if canvas["channel_canvas"] else "Canvas"
        where = ", ".join(
            escape(page.channel_name(self.emulator.workspace, c))
            for c in [canvas["channel_id"], *canvas["access"]]
            if c and c[0] in "CG"
        )
        return web.Response(
            text="<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>{escape(canvas['title'])}</title><style>{CANVAS_STYLE}</style></head><body>"
            f"<p class='meta'>{kind} {escape(canvas['id'])} in {where or 'no channel'} · "
            f"{escape(canvas_url(canvas['id']))}</p><h1>{escape(canvas['title'])}</h1>"
            f"<article>{markdown(canvas['markdown'])}</article></body></html>",
            content_type="text/html",
        )

    async def canvas_plan(self, request: web.Request) -> web.Response:
        """Which canvases the workspace allows: "paid" (all), "free" (one tab a channel, no
        standalone canvas) or "off" (disabled, as an admin may): the app then falls back."""
        plan = str((await self._form(request)).get("plan", ""))
        if plan not in ("paid", "free", "off"):
            raise web.HTTPBadRequest(text="plan is paid, free or off")
        self.emulator.workspace.canvas_plan = plan
        return web.json_response({"plan": plan})

"""The emulator over HTTP: Slack's transport rules, auth, faults, and the control surface."""

import asyncio
import contextlib
import functools
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import Any

from aiohttp import web

from . import errors, page
from .api import METHODS, files
from .console import Console
from .console_routes import add_console_routes, cross_site
from .control import Call, Chaos, Fault, FaultBook, workspace_state
from .errors import SlackError
from .posts import Channel, Message
from .seed import BOT_TOKEN, BOT_USER_ID
from .workspace import Workspace

# Arguments Slack takes as JSON text inside form posts (slack_sdk sends dicts as JSON).
JSON_ARGS = ("blocks", "attachments", "metadata", "view", "document_content")
PRIVATE = {"1", "true", "private_channel"}  # is_private=true, or types naming private channels
_dumps = functools.partial(json.dumps, separators=(",", ":"))
_SERVER_ERROR_PAGE = "<html><body><h1>{status}</h1><p>Slack is having trouble.</p></body></html>"


class SlackEmulator:
    """Slack's Web API on a local port, for slack_sdk clients given `base_url`.

    State lives in memory and every call is recorded in `calls`; `inject` makes the
    next calls of a method fail the way Slack fails (429s, 5xx, error codes).
    """

    def __init__(
        self,
        broadcast_channel: str = "incidents",
        per_channel_rate_limit: bool = False,
        tokens: Iterable[str] | None = None,
        scoped_tokens: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self.broadcast_channel = broadcast_channel
        self.per_channel_rate_limit = per_channel_rate_limit
        self.workspace = Workspace(broadcast_channel, per_channel_rate_limit)
        self.calls: list[Call] = []
        self.port = 0
        self.base_url = ""
        # Tokens with the manifest's scopes, and tokens with exactly the scopes given.
        self._tokens = errors.token_scopes({BOT_TOKEN, *(tokens or ())}, scoped_tokens)
        self._faults = FaultBook()
        self._chaos: Chaos | None = None
        self._runner: web.AppRunner | None = None
        # Slack's client side: drives an app at LOCALSLACK_APP_URL (see console.py).
        self.console = Console()

    # --- what tests read and steer ----------------------------------------------------

    @property
    def channels(self) -> dict[str, Channel]:
        return self.workspace.channels

    def channel_by_name(self, name: str) -> Channel | None:
        return self.workspace.channel_by_name(name)

    def messages(self, channel_id: str) -> list[Message]:
        """Every message in the channel, oldest first, Slack's own notices included."""
        return [dict(m) for m in self.workspace.channels[channel_id].messages]

    def pins(self, channel_id: str) -> list[str]:
        return list(self.workspace.channels[channel_id].pins)

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def inject(self, fault: Fault) -> None:
        self._faults.arm(fault)

    def chaos(self, rate: float, seed: int = 0) -> Chaos | None:
        """From now on a share ``rate`` of successful writes commits and then fails."""
        self._chaos = Chaos(rate, seed) if rate else None
        return self._chaos

    def reset(self) -> None:
        kept = self.workspace.upload_base, self.workspace.canvas_plan  # its address and plan
        self.workspace = Workspace(self.broadcast_channel, self.per_channel_rate_limit)
        self.workspace.upload_base, self.workspace.canvas_plan = kept
        self.calls.clear()
        self._faults.clear()
        self._chaos = None

    # --- lifecycle --------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("GET", "/api/{method}", self._api)
        app.router.add_route("POST", "/api/{method}", self._api)
        app.router.add_post("/upload/v1/{file_id}", self._upload)
        app.router.add_get("/", self._page)
        app.router.add_get("/_emulator/calls", self._calls)
        app.router.add_get("/_emulator/state", self._state)
        # A page on another site must not be able to reset or break the workspace.
        app.router.add_post("/_emulator/faults", same_site(self._inject))
        app.router.add_post("/_emulator/chaos", same_site(self._set_chaos))
        app.router.add_post("/_emulator/reset", same_site(self._reset))
        add_console_routes(app, self)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        if self._runner is not None:
            raise RuntimeError("the emulator is already running")
        # No access log: the emulator sits in the hot path of benchmarks.
        runner = web.AppRunner(self.app(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        self.base_url = f"http://{host}:{self.port}/api/"
        self.console.origin = f"http://{host}:{self.port}"
        self.workspace.upload_base = f"http://{host}:{self.port}/upload/v1/"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "SlackEmulator":
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # --- the Web API ------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        name = request.match_info["method"]
        try:
            args = await _read_args(request)
        except SlackError as error:
            self._record(name, {}, error.code)
            return _error_response(error)
        # Never record the token; the header wins, as it does at Slack.
        form_token = args.pop("token", None)
        token = _bearer(request) or form_token
        fault = self._faults.take(name)
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
            fault = None if fault.only_delays else fault
        if fault is not None and not fault.commit:
            self._record(name, args, fault.code)
            return _fault_response(request, fault)
        try:
            body = self._invoke(name, args, token)
        except SlackError as error:
            self._record(name, args, error.code)
            return _error_response(error)
        # The write happened; a commit-then-fail fault only loses the answer.
        fault = fault or (self._chaos.fault(name) if self._chaos else None)
        self._record(name, args, None)
        self.console.flush(self.workspace)  # the events the call set off
        if fault is not None:
            return _fault_response(request, fault)
        return web.json_response(body, dumps=_dumps)

    def _invoke(self, name: str, args: dict[str, Any], token: str | None) -> dict[str, Any]:
        method = METHODS.get(name)
        if method is None:
            raise SlackError("unknown_method")
        if not token:
            raise SlackError("not_authed")
        granted = self._tokens.get(token)
        if granted is None:
            raise SlackError("invalid_auth")
        errors.check(name, granted, self._is_private(args))
        return method.invoke(self.workspace, args, BOT_USER_ID, granted)

    def _is_private(self, args: dict[str, Any]) -> bool:
        """On a private channel, or making or listing one: Slack asks for groups:* then."""
        asked = {str(args.get("is_private")).lower(), *str(args.get("types")).split(",")}
        channel = self.workspace.channels.get(str(args.get("channel") or args.get("channel_id")))
        return bool(asked & PRIVATE) or (channel is not None and channel.is_private)

    def _record(self, method: str, args: dict[str, Any], error: str | None) -> None:
        self.calls.append(Call(method, args, error is None, error, time.time()))

    async def _upload(self, request: web.Request) -> web.Response:
        """An upload URL handed out by files.getUploadURLExternal receives the bytes."""
        data = await request.read()
        if not files.receive_upload(self.workspace, request.match_info["file_id"], data):
            return web.Response(status=404, text="upload not found")
        return web.Response(text=f"OK - {len(data)}")

    # --- the control surface ----------------------------------------------------------

    async def _page(self, request: web.Request) -> web.Response:
        query = request.query
        html = page.render(self.workspace, self.console, query.get("as", ""), query.get("in", ""))
        return web.Response(text=html, content_type="text/html")

    async def _calls(self, request: web.Request) -> web.Response:
        method = request.query.get("method")
        calls = self.calls_to(method) if method else self.calls
        return web.json_response({"calls": [c.to_json() for c in calls]}, dumps=_dumps)

    async def _state(self, request: web.Request) -> web.Response:
        return web.json_response(workspace_state(self.workspace), dumps=_dumps)

    async def _inject(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise TypeError("the fault must be a JSON object")
            self.inject(Fault.from_json(body))
        except (ValueError, TypeError) as error:
            return web.json_response({"ok": False, "error": str(error)}, status=400)
        return web.json_response({"ok": True})

    async def _set_chaos(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise TypeError("chaos must be a JSON object")
            chaos = Chaos.from_json(body)
        except (ValueError, TypeError, KeyError) as error:
            return web.json_response({"ok": False, "error": str(error)}, status=400)
        self._chaos = chaos if chaos.rate else None
        return web.json_response({"ok": True})

    async def _reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def same_site(handler: Handler) -> Handler:
    async def checked(request: web.Request) -> web.StreamResponse:
        if cross_site(request):
            return web.json_response({"ok": False, "error": "cross-site request"}, status=403)
        return await handler(request)

    return checked


async def _read_args(request: web.Request) -> dict[str, Any]:
    """Query string and body merged: slack_sdk sends GETs, forms, JSON, and POSTs with
    the arguments in the query string."""
    args: dict[str, Any] = dict(request.query)
    if request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise SlackError("invalid_json") from None
            if not isinstance(body, dict):
                raise SlackError("invalid_json")
            args.update(body)
        else:
            form = await request.post()
            args.update((k, v) for k, v in form.items() if isinstance(v, str))
    for key in JSON_ARGS:
        value = args.get(key)
        if isinstance(value, str):
            # Undecodable text stays text, so the method answers with Slack's format error.
            with contextlib.suppress(ValueError):
                args[key] = json.loads(value)
    return args


def _bearer(request: web.Request) -> str | None:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return credentials.strip() or None


def _fault_response(request: web.Request, fault: Fault) -> web.Response:
    if fault.drop:
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=503)  # never arrives: the connection is gone
    if fault.is_server_error:
        text = _SERVER_ERROR_PAGE.format(status=fault.status)
        return web.Response(status=fault.status or 500, text=text, content_type="text/html")
    return _error_response(fault.as_error())


def _error_response(error: SlackError) -> web.Response:
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else None
    return web.json_response(error.body(), status=error.status, headers=headers, dumps=_dumps)

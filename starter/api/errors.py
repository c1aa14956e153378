"""What the API refuses, and how it says so: one place for every error answer.

The desk's exceptions become HTTP answers, each with a ``detail`` for people (403, 404, 409,
422, 503 with Retry-After, 504). A body larger than the limit is refused with 413 before it is
read into memory, whether the client announced its length or streams it chunked. A 422 names
the field and the problem but repeats at most a short prefix of what was sent: an error must
not echo a 20 MB body back. Routes anyone may call without a token (subscribing) also count
each client's requests (``ClientBudget``).
"""

from __future__ import annotations

import ipaddress
import time
from typing import Any

import structlog
from fastapi import FastAPI, HTTPException, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import RPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from clients.tokens import AuditKind
from starter.api.identity import Caller, audit_event, audited
from starter.desk import IncidentNotFound
from starter.intake import Contended
from starter.reading import NoWorkerAnswered
from workflows.lifecycle.commands import InvalidDeclaration
from workflows.lifecycle.notices import CommandRefused, PermissionRefused

log = structlog.get_logger()


RETRY_AFTER = "1"
# What every route on one incident may answer besides its own: documented once, for all of them.
ONE_INCIDENT: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such incident (or not an incident id)."},
    409: {"description": "The incident refused the command; `detail` says why."},
}


def invalid(field: str, message: str, where: str = "body") -> HTTPException:
    """A 422 shaped like FastAPI's own validation errors, so clients read one format."""
    detail = [{"loc": [where, field], "msg": message, "type": "value_error"}]
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=detail)


def _answer(code: int, detail: str) -> JSONResponse:
    headers = {"Retry-After": RETRY_AFTER} if code == status.HTTP_503_SERVICE_UNAVAILABLE else None
    return JSONResponse({"detail": detail}, status_code=code, headers=headers)


async def incident_not_found(request: Request, error: Exception) -> JSONResponse:
    return _answer(status.HTTP_404_NOT_FOUND, str(error))


async def command_refused(request: Request, error: Exception) -> JSONResponse:
    log.info("incident_command_refused", reason=str(error))
    return _answer(status.HTTP_409_CONFLICT, str(error))


async def refusal_audited(request: Request, detail: str) -> None:
    """A 403 kept in the audit log, with who was refused; nobody verified is a 401, not here."""
    caller = getattr(request.state, "caller", None)
    if isinstance(caller, Caller):
        subject = f"{request.method} {request.url.path}"
        await audited(request, [audit_event(request, caller, AuditKind.REFUSED, subject, detail)])


async def permission_refused(request: Request, error: Exception) -> JSONResponse:
    """The policy's [permissions] refuse who acts: 403 naming the rule, wherever it was checked
    (the workflow's validator, or the desk for declaring, schedules and tokens)."""
    log.info("permission_refused", reason=str(error))
    await refusal_audited(request, str(error))
    return _answer(status.HTTP_403_FORBIDDEN, str(error))


async def http_refused(request: Request, error: Exception) -> Response:
    """FastAPI's own answer; a 403 (a scope lacking, a `by` naming someone else) audited
    first. ``openapi.every_method_allowed``, the handler of them all, answers with this."""
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == status.HTTP_403_FORBIDDEN:
        await refusal_audited(request, str(error.detail))
    return await http_exception_handler(request, error)


async def declaration_invalid(request: Request, error: Exception) -> JSONResponse:
    """Incomplete after its template, or against the policy: the field, before any number is
    spent; shaped like FastAPI's own 422."""
    assert isinstance(error, InvalidDeclaration)
    detail = [{"loc": ["body", *error.loc], "msg": error.message, "type": error.kind}]
    return JSONResponse({"detail": detail}, status.HTTP_422_UNPROCESSABLE_CONTENT)


async def incident_timed_out(request: Request, error: Exception) -> JSONResponse:
    # An Update waits for a worker to run it; no answer usually means no worker is polling.
    queue = request.app.state.desk.task_queue
    log.warning("incident_timed_out", task_queue=queue)
    detail = f"the incident did not answer in time; is a worker running on task queue {queue!r}?"
    return _answer(status.HTTP_504_GATEWAY_TIMEOUT, detail)


def connect_failure(error: Exception) -> bool:
    """The lazily connected client raises a bare RuntimeError while Temporal cannot be reached."""
    return isinstance(error, RuntimeError) and str(error).startswith("Failed client connect")


async def temporal_unavailable(request: Request, error: Exception) -> JSONResponse:
    if not isinstance(error, RPCError) and not connect_failure(error):
        raise error  # any other RuntimeError is a bug: a 500 with its traceback in the log
    log.warning("temporal_unavailable", error=str(error))
    if isinstance(error, RPCError) and error.status == RPCStatusCode.RESOURCE_EXHAUSTED:
        detail = f"Temporal is busy and refused the request for now: {error}"
    else:
        detail = f"Temporal did not answer: {error}"
    return _answer(status.HTTP_503_SERVICE_UNAVAILABLE, detail)


async def declaration_contended(request: Request, error: Exception) -> JSONResponse:
    log.warning("declaration_contended", reason=str(error))
    return _answer(status.HTTP_503_SERVICE_UNAVAILABLE, f"declaration not taken yet: {error}")


async def no_worker_answered(request: Request, error: Exception) -> JSONResponse:
    queue = request.app.state.desk.task_queue
    log.warning("incident_query_timed_out", task_queue=queue)
    detail = f"no worker answered for the incident; is one running on task queue {queue!r}?"
    return _answer(status.HTTP_503_SERVICE_UNAVAILABLE, detail)


MAX_BODY_BYTES = 256 * 1024
# Per path prefix, first match wins. Alertmanager sends a whole group in one notification: a
# storm is megabytes. Subscribing takes an address and a few component names, from anyone.
# PagerDuty sends one event of a few kilobytes per delivery.
BODY_LIMITS = {
    "/alerts/": 8 * 1024 * 1024,
    "/status/subscribe": 16 * 1024,
    "/integrations/": 64 * 1024,
}
ECHO_CHARS = 80


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: 413 for bodies over ``limit`` bytes, announced or streamed."""

    def __init__(
        self, app: ASGIApp, limit: int = MAX_BODY_BYTES, by_path: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.default = limit
        self.by_path = BODY_LIMITS if by_path is None else by_path

    def _limit(self, path: str) -> int:
        return next((n for p, n in self.by_path.items() if path.startswith(p)), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope["path"])
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await self._refuse(scope, receive, send, limit)
            return
        seen = 0
        overflowed = refused = False

        async def counted() -> Message:
            nonlocal seen, overflowed
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    overflowed = True
                    raise BodyTooLarge
            return message

        async def answered(message: Message) -> None:
            # The framework may turn the interrupted read into its own 400; the real reason
            # is the size, so that is what the client hears.
            nonlocal refused
            if not overflowed:
                await send(message)
            elif message["type"] == "http.response.start" and not refused:
                refused = True
                await self._refuse(scope, receive, send, limit)

        try:
            await self.app(scope, counted, answered)
        except BodyTooLarge:
            if not refused:
                await self._refuse(scope, receive, send, limit)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        detail = f"request body larger than the limit of {limit} bytes"
        response = JSONResponse({"detail": detail}, status.HTTP_413_CONTENT_TOO_LARGE)
        await response(scope, receive, send)


def _short(value: Any) -> Any:
    """What a 422 may repeat of the input: scalars cut short, containers only described."""
    if isinstance(value, str):
        return value if len(value) <= ECHO_CHARS else value[:ECHO_CHARS] + "…"
    if isinstance(value, dict | list):
        return f"<{type(value).__name__} of {len(value)} items>"
    return value


async def validation_failed(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    detail = []
    for problem in error.errors():
        shown = {k: v for k, v in problem.items() if k not in ("input", "ctx", "url")}
        if "input" in problem:
            shown["input"] = _short(problem["input"])
        detail.append(shown)
    return JSONResponse({"detail": jsonable_encoder(detail)}, status.HTTP_422_UNPROCESSABLE_CONTENT)


class ClientBudget:
    """At most ``allowed`` requests per client in each fixed window, counted in this process.

    The counts are dropped whole when a window ends, so memory holds one window's clients at
    most. An IPv6 client is counted by its /64: one host usually has the whole network.
    """

    def __init__(self, allowed: int, window: float) -> None:
        self.allowed = allowed
        self.window = window
        self._started = time.monotonic()
        self._spent: dict[str, int] = {}

    @staticmethod
    def _client(host: str) -> str:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return host
        if isinstance(address, ipaddress.IPv6Address):
            return str(ipaddress.IPv6Network((address, 64), strict=False))
        return str(address)

    def spend(self, host: str) -> int | None:
        """None when the client may go on; else the seconds until its next window."""
        now = time.monotonic()
        if now - self._started >= self.window:
            self._started, self._spent = now, {}
        client = self._client(host)
        self._spent[client] = spent = self._spent.get(client, 0) + 1
        if spent <= self.allowed:
            return None
        return max(1, round(self._started + self.window - now))


def install(app: FastAPI, limit: int = MAX_BODY_BYTES) -> None:
    app.add_exception_handler(RequestValidationError, validation_failed)
    app.add_exception_handler(Contended, declaration_contended)
    app.add_exception_handler(NoWorkerAnswered, no_worker_answered)
    app.add_exception_handler(IncidentNotFound, incident_not_found)
    app.add_exception_handler(CommandRefused, command_refused)
    # A subclass of CommandRefused: Starlette picks the handler of the nearest class.
    app.add_exception_handler(PermissionRefused, permission_refused)
    app.add_exception_handler(InvalidDeclaration, declaration_invalid)
    app.add_exception_handler(RPCTimeoutOrCancelledError, incident_timed_out)
    app.add_exception_handler(RPCError, temporal_unavailable)
    app.add_exception_handler(RuntimeError, temporal_unavailable)
    app.add_middleware(BodyLimit, limit=limit)

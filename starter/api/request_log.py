"""One structlog line per request, carrying whatever the route bound (the incident id)."""

from __future__ import annotations

import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("starter.api")


class RequestLog:
    """Plain ASGI rather than BaseHTTPMiddleware: that one runs the route in another task, so
    the context the route binds (``incident_id``) would not be seen here."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            request_id=uuid.uuid4().hex[:12], method=scope["method"], path=scope["path"]
        )
        started = time.perf_counter()
        code = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            took = round((time.perf_counter() - started) * 1000, 1)
            log.info("request", status=code, duration_ms=took)
            structlog.contextvars.clear_contextvars()

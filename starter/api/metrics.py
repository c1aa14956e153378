"""How the API is watched: /healthz, Prometheus metrics at /metrics, a log line per request.

/healthz asks whether Temporal answers, with no token, so load balancers and `make run` can
ask. Routes are labelled by their template (``/incidents/{incident_id}``), never by the
concrete path, so an incident id never becomes a label value (cardinality stays bounded).
``/metrics`` takes the API's bearer token like every other route: Prometheus sends it with
``authorization: {credentials_file: ...}`` in its scrape config.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import structlog
from fastapi import APIRouter, Depends, HTTPException, Response, status
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import Client
from temporalio.service import RPCError

from starter.api.dependencies import Desk, require_token
from starter.api.schemas import Health

log = structlog.get_logger("starter.api")


async def temporal_problem(client: Client) -> str | None:
    """What is wrong with the Temporal connection, or None when Temporal answers."""
    # The address stays in the log, not in the answer: /healthz is unauthenticated.
    try:
        serving = await client.service_client.check_health(timeout=timedelta(seconds=3))
    except (RPCError, RuntimeError):  # RuntimeError: the lazy connection failed
        return "Temporal does not answer"
    return None if serving else "Temporal is not serving"


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "incident_api_requests",
            "HTTP requests answered, by route template, method and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "incident_api_request_seconds",
            "Time to answer, by route template and method.",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.declared = Counter(
            "incident_declarations",
            "Declarations accepted, by severity and whether they created a new incident.",
            ["severity", "created"],
            registry=self.registry,
        )
        self.commands = Counter(
            "incident_commands",
            "Commands sent to incidents, by command and outcome (applied or refused).",
            ["command", "outcome"],
            registry=self.registry,
        )


def _route(scope: Scope) -> str:
    """The matched route's template, rebuilt from the path and the parameters the router
    filled in (``/incidents/incident-7`` -> ``/incidents/{incident_id}``)."""
    if "route" not in scope:
        return "unmatched"
    names = {str(v): f"{{{k}}}" for k, v in scope.get("path_params", {}).items()}
    return "/".join(names.get(part, part) for part in scope["path"].split("/"))


class RequestRecord:
    """ASGI middleware: one structlog line and one observation per answered request.

    Plain ASGI rather than BaseHTTPMiddleware: that one runs the route in another task, so
    the context the route binds (``incident_id``) would not reach the log line.
    """

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

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

        async def noted(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, noted)
        finally:
            took = time.perf_counter() - started
            route, method = _route(scope), scope["method"]
            self.metrics.requests.labels(method, route, str(code)).inc()
            self.metrics.latency.labels(method, route).observe(took)
            log.info("request", status=code, duration_ms=round(took * 1000, 1))
            structlog.contextvars.clear_contextvars()


def router(metrics: ApiMetrics) -> APIRouter:
    """/healthz for anyone, /metrics with the API's token."""
    routes = APIRouter(tags=["health"])

    @routes.get(
        "/healthz",
        summary="200 when Temporal answers",
        responses={503: {"description": "Temporal does not answer; `detail` says what failed."}},
    )
    async def healthz(desk: Desk) -> Health:
        problem = await temporal_problem(desk.client)
        if problem:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=problem)
        return Health(status="ok", temporal="serving")

    @routes.get(
        "/metrics",
        summary="Prometheus metrics of the API",
        response_class=Response,
        dependencies=[Depends(require_token)],
    )
    async def scrape() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return routes

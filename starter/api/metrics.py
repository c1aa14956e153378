"""Prometheus metrics of the API: requests by route and outcome, and what people did.

Routes are labelled by their template (``/incidents/{incident_id}``), never by the concrete
path, so an incident id never becomes a label value (cardinality stays bounded). ``/metrics``
takes the API's bearer token like every other route: Prometheus sends it with
``authorization: {credentials_file: ...}`` in its scrape config.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from starter.api.auth import require_token


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


class MeasureRequests:
    """ASGI middleware: one observation per answered request."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def noted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, noted)
        finally:
            route, method = _route(scope), scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)


def router(metrics: ApiMetrics) -> APIRouter:
    routes = APIRouter(tags=["health"], dependencies=[Depends(require_token)])

    @routes.get("/metrics", summary="Prometheus metrics of the API", response_class=Response)
    async def scrape() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return routes

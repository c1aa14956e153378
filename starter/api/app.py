"""The application factory: settings and the desk in, a FastAPI app out.

Tests pass their own desk (bound to the session's Temporal and worker); in production the
lifespan connects to Temporal and builds the desk from the environment.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI

from clients.slack_people import SlackPeople
from config import Settings, connect
from starter.api import errors, openapi
from starter.api.metrics import ApiMetrics, RequestRecord, temporal_problem
from starter.api.metrics import router as watching
from starter.api.routes import alerts, incidents, integrations, oncall, reports, tokens
from starter.desk import IncidentDesk
from starter.slack.app import bot_client, install_slack, socket_mode
from starter.status import page, subscribers, subscribing

log = structlog.get_logger()

DESCRIPTION = """
Declare and drive incidents. Each incident is one Temporal workflow; every command here is a
workflow Update, answered with the incident as the workflow has it afterwards.

Every route needs `Authorization: Bearer <token>`: a service token from
`INCIDENT_API_TOKENS` (every scope; may act for anyone), or a person's own token from
`POST /tokens`, `/incident token` in Slack or `incident login` (its scopes; acts as its
person only: a `by` naming someone else is 403). Reading needs `read`, anything else
`write`, the token routes and `/audit` `admin`. Not needed by `/healthz`, the public status page,
`/slack/events` (Slack's signature), `/integrations/pagerduty` (PagerDuty's signature) and
`/alerts/*` (which take a service token, or a source's own token or HMAC signature from the
policy). People are given
as Slack user ids (like `U024BE7LH`), mentions
(`<@U024BE7LH>`), handles (`@bob`) or emails, and resolved to ids; an unknown one gets 422
naming it. Incident ids are
`incident-42`; `INC-42` and `42` are accepted too.

The timeline names, for each command, who acted (`actor`), the token (`via`) and where it came
in (`source`: `api`; `cli` when the request carries `Incident-Client: cli`, as the `incident`
CLI's do). Token changes, refusals (403) and admins' reads of private incidents are in
`GET /audit`.
"""


def create_app(settings: Settings | None = None, desk: IncidentDesk | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not settings.bearer_tokens:
            log.warning("api_tokens_missing", hint="set INCIDENT_API_TOKENS; all requests get 401")
        if desk is None:
            # Lazily: the API starts (and /healthz says 503) while Temporal is still coming
            # up, as it may under `make run` or docker-compose, instead of crashing.
            client = await connect(settings, lazy=True)
            app.state.desk = IncidentDesk(
                client, settings.task_queue, settings.policy, people=app.state.people
            )
            problem = await temporal_problem(client)
            if problem:
                log.warning("temporal_unavailable", problem=problem, hint="/healthz answers 503")
            log.info("api_started", temporal=settings.temporal.address, queue=settings.task_queue)
        async with socket_mode(app, settings):
            try:
                yield
            finally:
                for task in app.state.slack_background:  # the App Home kept current
                    task.cancel()

    app = FastAPI(
        title="Incident automation API",
        summary="Incidents as durable Temporal workflows, driven over HTTP.",
        description=DESCRIPTION,
        version="0.1.0",
        lifespan=lifespan,
        openapi_tags=[
            {"name": "incidents", "description": "Declare, find and drive incidents."},
            {"name": "health", "description": "Liveness of the API and of Temporal."},
            {"name": "policy", "description": "What the policy in force would do."},
            {"name": "alerts", "description": "Monitoring declares incidents and feeds them."},
            {"name": "on call", "description": "Who is on call, shifts, overrides, calendars."},
            {"name": "integrations", "description": "Paging services report back (PagerDuty)."},
            {"name": "tokens", "description": "Personal API tokens: who acts, with what scopes."},
        ],
    )
    app.state.settings = settings
    app.state.people = SlackPeople(bot_client(settings))
    if desk is not None:
        app.state.desk = desk
    app.state.metrics = metrics = ApiMetrics()
    app.include_router(incidents.router)
    app.include_router(incidents.commanding)
    app.include_router(alerts.router)
    app.include_router(integrations.router)
    app.include_router(watching(metrics))
    install_slack(app, settings, lambda: app.state.desk, app.state.people)
    app.include_router(reports.router)
    app.include_router(oncall.router)
    app.include_router(oncall.feeds)
    app.include_router(tokens.router)
    app.include_router(tokens.audit)
    app.state.subscribe_budget = subscribing.subscribe_budget()
    for router in (page.public, page.operate, subscribers.router):
        app.include_router(router)
    errors.install(app)
    openapi.install(app, desk.policy if desk is not None else settings.policy)
    app.add_middleware(RequestRecord, metrics=metrics)
    return app

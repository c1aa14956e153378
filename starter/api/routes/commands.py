"""POST /incidents/{incident_id}/<path>: one route per row of the command table.

The body is the command model itself (``workflows.commands``): one definition, validated once.
People in it may be named by id, mention, @handle or email; ``PeopleRoute`` turns them into
ids before validation. An item's number comes from the path. Refusals (409) and unknown
incidents (404) come from the desk's exceptions, answered in one place (``starter.api.errors``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from enum import Enum
from inspect import Parameter, Signature
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Body, Depends, Header, Path

from config import Settings
from starter.api.dependencies import (
    UNAUTHORIZED,
    AppSettings,
    Desk,
    IncidentRef,
    PeopleRoute,
    require_token,
)
from starter.api.errors import ONE_INCIDENT, invalid
from starter.api.schemas import IncidentOut
from starter.command_table import COMMANDS, CommandRow
from starter.desk import IncidentDesk
from workflows.lifecycle import commands as cmd

log = structlog.get_logger()

MAX_ITEM = 10_000  # far more action items than an incident holds: bounds the path's number
# Set per request by ``command_key``: the client's name for a command it may send again.
COMMAND_KEY: ContextVar[str | None] = ContextVar("command_key", default=None)


async def command_key(
    idempotency_key: Annotated[
        str | None,
        Header(
            max_length=200,
            pattern=r"^[\x21-\x7e]+$",
            description="Retrying with the same key applies the command once, whatever happens.",
        ),
    ] = None,
) -> None:
    """Async, so the key set here is seen by the route (same task, same context)."""
    COMMAND_KEY.set(idempotency_key)


def incident_router(tags: list[str | Enum]) -> APIRouter:
    """Routes on one incident: the same token, people by name and Idempotency-Key handling."""
    return APIRouter(
        prefix="/incidents/{incident_id}",
        tags=tags,
        dependencies=[Depends(require_token), Depends(command_key)],
        responses={**UNAUTHORIZED, **ONE_INCIDENT},
        route_class=PeopleRoute,
    )


async def run(
    desk: IncidentDesk, settings: Settings, ref: str, command: cmd.Command
) -> IncidentOut:
    state = await desk.command(ref, command, request_key=COMMAND_KEY.get())
    log.info("incident_command", command=type(command).__name__, status=state.status.value)
    return IncidentOut.of(state, settings.incident_url(state.id))


def known_to_policy(desk: IncidentDesk, command: cmd.Command) -> None:
    """A severity the policy lacks is a 422 naming the field, like FastAPI's own."""
    severity = getattr(command, "severity", None)
    if severity is not None:
        try:
            desk.policy.severity(severity)
        except ValueError as error:
            raise invalid("severity", str(error)) from None


def carrying_out(row: CommandRow[Any]) -> Callable[..., Awaitable[IncidentOut]]:
    """The route function of one row: its signature is built from the row, for FastAPI."""
    model = row.model
    everything_optional = not any(f.is_required() for f in model.model_fields.values())
    # A command with nothing required may be sent with no body at all.
    body: Any = Annotated[model, Body(default_factory=model)] if everything_optional else model
    parameters = [
        Parameter("ref", Parameter.KEYWORD_ONLY, annotation=IncidentRef),
        Parameter("desk", Parameter.KEYWORD_ONLY, annotation=Desk),
        Parameter("settings", Parameter.KEYWORD_ONLY, annotation=AppSettings),
        Parameter("body", Parameter.KEYWORD_ONLY, annotation=body),
    ]
    if "{item_id}" in row.path:
        item = Annotated[int, Path(ge=0, le=MAX_ITEM, description="The action item's number.")]
        parameters.append(Parameter("item_id", Parameter.KEYWORD_ONLY, annotation=item))

    async def carry_out(
        ref: str, desk: IncidentDesk, settings: Settings, body: cmd.Command, **path: Any
    ) -> IncidentOut:
        command = body.model_copy(update=path) if path else body
        known_to_policy(desk, command)
        return await run(desk, settings, ref, command)

    carry_out.__signature__ = Signature(parameters, return_annotation=IncidentOut)  # type: ignore[attr-defined]
    carry_out.__name__ = row.name  # the operation's id, as it was when routes were hand-written
    carry_out.__doc__ = f"`{row.usage}` in Slack and the CLI."
    return carry_out


router = incident_router(["incidents"])
for row in COMMANDS:
    router.add_api_route(
        f"/{row.path}",
        carrying_out(row),
        methods=["POST"],
        summary=row.help[0].upper() + row.help[1:],
        response_model=IncidentOut,
    )

"""/policy: the policy in force, and a preview of the timeline it would give an incident."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, ValidationError

from starter.api.auth import require_token
from starter.api.dependencies import Desk
from starter.oncall import OnCallDesk
from workflows.preview import Scenario, Step, preview

router = APIRouter(prefix="/policy", tags=["policy"], dependencies=[Depends(require_token)])

DURATION = "seconds, or like 90s, 15m, 2h, 3d; leave out: never"
# What ``parse_duration`` reads, without the spaces it forgives: seconds, or a number and a unit.
LENGTH = r"^\d{1,6}(\.\d{1,3})?(ms|s|m|h|d|w)?$"
# Updates every zero seconds would be no cadence: at least one digit that is not zero.
POSITIVE_LENGTH = (
    r"^(0{0,5}[1-9]\d{0,5}(\.\d{1,3})?|0{1,6}\.([1-9]\d{0,2}|0[1-9]\d?|00[1-9]))(ms|s|m|h|d|w)?$"
)


class Preview(BaseModel):
    scenario: Scenario
    steps: list[Step]


@router.get("/preview", summary="What the policy would do to an incident, declaring nothing")
async def policy_preview(
    desk: Desk,
    severity: Annotated[str, Query(max_length=50, description="like sev1")],
    ack_after: Annotated[str | None, Query(pattern=LENGTH, description=DURATION)] = None,
    updates_every: Annotated[
        str | None, Query(pattern=POSITIVE_LENGTH, description=DURATION)
    ] = None,
    resolve_after: Annotated[str | None, Query(pattern=LENGTH, description=DURATION)] = None,
    horizon: Annotated[str, Query(pattern=LENGTH, description="how far to look")] = "1d",
) -> Preview:
    """Runs the workflow's own deadline and command functions on a simulated clock: who is
    notified and paged when, which reminders fire, when the retrospective and archive come.
    The incident is declared now: a tier naming ``oncall:`` reaches who the schedule says then,
    overrides included when every schedule answered (each answer says which)."""
    given = {
        "severity": severity,
        "ack_after": ack_after,
        "updates_every": updates_every,
        "resolve_after": resolve_after,
        "horizon": horizon,
    }
    try:
        scenario = Scenario.model_validate({k: v for k, v in given.items() if v is not None})
    except ValidationError as error:
        detail = [
            {"loc": ["query", *e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in error.errors()
        ]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=detail) from None
    rosters = await OnCallDesk(desk.client, desk.policy).rosters(datetime.now(UTC))
    try:
        return Preview(scenario=scenario, steps=preview(desk.policy, scenario, rosters))
    except ValueError as error:  # a severity this policy does not know
        detail = [{"loc": ["query", "severity"], "msg": str(error), "type": "value_error"}]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=detail) from None

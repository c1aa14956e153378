"""/healthz: is Temporal answering? No auth, so load balancers and `make run` can ask."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, HTTPException, status
from temporalio.client import Client
from temporalio.service import RPCError

from starter.api.dependencies import Desk
from starter.api.schemas import Health

router = APIRouter(tags=["health"])


async def temporal_problem(client: Client) -> str | None:
    """What is wrong with the Temporal connection, or None when Temporal answers."""
    # The address stays in the log, not in the answer: /healthz is unauthenticated.
    try:
        serving = await client.service_client.check_health(timeout=timedelta(seconds=3))
    except (RPCError, RuntimeError):  # RuntimeError: the lazy connection failed
        return "Temporal does not answer"
    return None if serving else "Temporal is not serving"


@router.get(
    "/healthz",
    summary="200 when Temporal answers",
    responses={503: {"description": "Temporal does not answer; `detail` says what failed."}},
)
async def healthz(desk: Desk) -> Health:
    problem = await temporal_problem(desk.client)
    if problem:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=problem)
    return Health(status="ok", temporal="serving")

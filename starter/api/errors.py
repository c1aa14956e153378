"""The desk's exceptions as HTTP answers, in one place, each with a ``detail`` for people."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, HTTPException, Request, status
from fastapi.responses import JSONResponse
from temporalio.client import RPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from starter.desk import IncidentNotFound
from starter.intake import Contended
from starter.snapshot import NoWorkerAnswered
from workflows.lifecycle.commands import InvalidDeclaration
from workflows.lifecycle.notices import CommandRefused

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


def install(app: FastAPI) -> None:
    app.add_exception_handler(Contended, declaration_contended)
    app.add_exception_handler(NoWorkerAnswered, no_worker_answered)
    app.add_exception_handler(IncidentNotFound, incident_not_found)
    app.add_exception_handler(CommandRefused, command_refused)
    app.add_exception_handler(InvalidDeclaration, declaration_invalid)
    app.add_exception_handler(RPCTimeoutOrCancelledError, incident_timed_out)
    app.add_exception_handler(RPCError, temporal_unavailable)
    app.add_exception_handler(RuntimeError, temporal_unavailable)

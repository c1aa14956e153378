"""/oncall and /schedules: who is on call, the shifts, overrides, and calendar feeds.

Plain routes, not rows of the command table: a row there is a command on one incident (an
``IncidentWorkflow`` Update at ``POST /incidents/{id}/...``, answered with the incident), and
the CLI and Slack words are generated from that shape. These act on a schedule's workflow and
answer with an override, a list or a calendar: two commands (add and remove an override) and
four reads, which share nothing with an incident command but the auth.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import (
    APIRouter,
    Depends,
    Header,
    HTTPException,
    Path,
    Query,
    Request,
    Response,
    status,
)
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field

from clients.documents import shifts_calendar
from clients.slack_people import SlackPeople, UnknownPerson
from starter.api.dependencies import (
    AppSettings,
    Desk,
    Verified,
    bearer,
    known_token,
    require_token,
)
from starter.api.errors import RETRY_AFTER, invalid
from starter.api.identity import acting_for
from starter.api.openapi import PERSON
from starter.command_words import ISO_WITH_ZONE
from starter.oncall import (
    FEED_AFTER,
    FEED_BEFORE,
    OnCallDesk,
    OnCallNow,
    OverrideRefused,
    ScheduleUnavailable,
    UnknownOverride,
    UnknownSchedule,
)
from workflows.oncall.schedules import Override, Shift
from workflows.policy import SCHEDULE_NAME

router = APIRouter(tags=["on call"], dependencies=[Depends(require_token)])
feeds = APIRouter(tags=["on call"])  # calendar apps cannot send a header: ?token= also does
CALENDAR = "text/calendar; charset=utf-8"
Answers = dict[int | str, dict[str, Any]]
SCHEDULE: Answers = {404: {"description": "No such schedule in the policy."}}
UNAVAILABLE: Answers = {503: {"description": "The schedule did not answer (no worker yet)."}}
FEED: Answers = {200: {"content": {"text/calendar": {"schema": {"type": "string"}}}}}
ZERO, WEEK = timedelta(0), timedelta(days=7)
PEOPLE = "Slack user id (U024BE7LH), mention, @handle or email"
ScheduleName = Annotated[str, Path(pattern=SCHEDULE_NAME, max_length=63, examples=["payments"])]
When = Annotated[str, Field(pattern=ISO_WITH_ZONE, max_length=40, examples=["2026-12-08T09:00Z"])]


class OverrideRequest(BaseModel):
    user: str = Field(max_length=254, description=PEOPLE, json_schema_extra={"pattern": PERSON})
    start: When  # may be past: the override then covers from now
    end: When
    by: str | None = Field(
        default=None, max_length=254, description=PEOPLE, json_schema_extra={"pattern": PERSON}
    )


class OnCallList(BaseModel):
    schedules: list[OnCallNow]


class Shifts(BaseModel):
    shifts: list[Shift]


async def on_call_desk(desk: Desk) -> OnCallDesk:
    return OnCallDesk(desk.client, desk.policy, desk.people)


OnCall = Annotated[OnCallDesk, Depends(on_call_desk)]


@contextmanager
def answering() -> Iterator[None]:
    """The on-call desk's refusals as HTTP answers."""
    try:
        yield
    except (UnknownSchedule, UnknownOverride, UnknownPerson) as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(error)) from None
    except OverrideRefused as error:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(error)) from None
    except ScheduleUnavailable as error:
        headers = {"Retry-After": RETRY_AFTER}
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(error), headers) from None


def _time(given: str, field: str, where: str = "body") -> datetime:
    try:
        return datetime.fromisoformat(given.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(field, "not a time with a zone, like 2026-12-08T09:00+01:00", where) from None


async def _person(request: Request, given: str, field: str) -> str:
    people: SlackPeople = request.app.state.people
    try:
        return await people.resolve(given)
    except UnknownPerson as error:
        raise invalid(field, str(error)) from None


@router.get(
    "/oncall",
    summary="Who is on call now for each schedule, until when, who next",
    responses=UNAVAILABLE,
)
async def who_is_on_call(oncall: OnCall) -> OnCallList:
    with answering():
        return OnCallList(schedules=await oncall.now(datetime.now(UTC)))


@router.post(
    "/schedules/{name}/overrides",
    summary="Put someone on call for a window (durable once answered)",
    status_code=status.HTTP_201_CREATED,
    responses={
        **SCHEDULE,
        409: {"description": "The schedule refused it (over already, too long); `detail`."},
        **UNAVAILABLE,
    },
)
async def add_override(
    name: ScheduleName,
    body: OverrideRequest,
    request: Request,
    oncall: OnCall,
    caller: Verified,
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=200,
            pattern=r"^[\x21-\x7e]+$",
            description="Retrying with the same key makes the override once.",
        ),
    ] = None,
) -> Override:
    """A start in the past covers from now (someone stepping in late); the next tier that
    fires reaches them."""
    start, end = _time(body.start, "start"), _time(body.end, "end")
    user = await _person(request, body.user, "user")
    by = acting_for(caller, await _person(request, body.by, "by") if body.by else None)
    with answering():
        return await oncall.add_override(name, user, start, end, by, key)


@router.delete(
    "/schedules/{name}/overrides/{override_id}",
    summary="Remove an override; answers it as it was",
    responses={404: {"description": "No such schedule or override."}, **UNAVAILABLE},
)
async def remove_override(
    name: ScheduleName,
    override_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")],
    oncall: OnCall,
    caller: Verified,
) -> Override:
    with answering():
        return await oncall.remove_override(name, override_id, acting_for(caller, None))


Since = Annotated[
    str | None, Query(alias="from", pattern=ISO_WITH_ZONE, max_length=40, description="ISO")
]
Until = Annotated[
    str | None, Query(alias="to", pattern=ISO_WITH_ZONE, max_length=40, description="ISO")
]


Window = tuple[datetime, datetime]


def _window(start: str | None, end: str | None, before: timedelta, after: timedelta) -> Window:
    """``from`` and ``to`` as given, else ``before`` now and ``after`` the start."""
    begin = _time(start, "from", "query") if start else datetime.now(UTC) - before
    return begin, _time(end, "to", "query") if end else begin + before + after


@router.get(
    "/schedules/{name}/shifts",
    summary="Who is on call when, overrides applied (at most 2,000 shifts)",
    responses={**SCHEDULE, **UNAVAILABLE},
)
async def schedule_shifts(
    name: ScheduleName, oncall: OnCall, start: Since = None, end: Until = None
) -> Shifts:
    """From ``from`` (default now) to ``to`` (default a week after ``from``)."""
    with answering():
        return Shifts(shifts=await oncall.shifts(name, *_window(start, end, ZERO, WEEK)))


async def feed_token(
    settings: AppSettings,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    token: Annotated[
        str | None, Query(max_length=200, description="The bearer token, for calendar apps")
    ] = None,
) -> None:
    given = credentials.credentials if credentials else token
    if given is None or not known_token(given, settings.bearer_tokens):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="send Authorization: Bearer <token>, or ?token=<token> in the feed's URL",
            headers={"WWW-Authenticate": "Bearer"},
        )


def _calendar(name: str, shifts: list[tuple[str, Shift]]) -> Response:
    return Response(shifts_calendar(name, shifts), media_type=CALENDAR)


@feeds.get(
    "/schedules/{name}.ics",
    summary="A schedule's shifts as iCalendar (default: two weeks back, eight ahead)",
    response_class=Response,
    dependencies=[Depends(feed_token)],
    responses={**FEED, **SCHEDULE, **UNAVAILABLE},
)
async def schedule_feed(
    name: ScheduleName, oncall: OnCall, start: Since = None, end: Until = None
) -> Response:
    with answering():
        shifts = await oncall.shifts(name, *_window(start, end, FEED_BEFORE, FEED_AFTER))
    return _calendar(f"On call: {name}", [(f"{s.user} on call for {name}", s) for s in shifts])


@feeds.get(
    "/people/{user}/oncall.ics",
    summary="One person's shifts across every schedule, as an iCalendar feed",
    response_class=Response,
    dependencies=[Depends(feed_token)],
    responses={
        **FEED,
        404: {"description": "Nobody in the workspace answers to that."},
        **UNAVAILABLE,
    },
)
async def person_feed(
    user: Annotated[str, Path(max_length=254, description=PEOPLE)],
    request: Request,
    oncall: OnCall,
    start: Since = None,
    end: Until = None,
) -> Response:
    people: SlackPeople = request.app.state.people
    window = _window(start, end, FEED_BEFORE, FEED_AFTER)
    with answering():
        person = await people.resolve(user)
        shifts = await oncall.person_shifts(person, *window)
    return _calendar(f"On call: {person}", [(f"On call for {s.user}", s) for s in shifts])

"""One workflow per on-call schedule: its definitions, its overrides, its handoffs.

The next handoff is the workflow's own durable timer, so no process polls: at each handoff the
incoming person is told until when they are on call, the outgoing one who took over, and the
schedule's user group follows. The workflow remembers whom it last announced, so a handoff
missed while every worker was down happens once, late, when one comes back; a person handing
to themselves (one shift after another) hears nothing.

Callers answer "who is on call" with the pure functions of ``schedules`` over one ``roster()``
query. An edit of the schedule applies from when it is made (``Definition``): shifts already
past stay as they were.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import NoReturn

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.slack import OncallActivities
    from workflows.oncall.schedules import (
        MAX_OVERRIDES,
        MAX_SHIFTS,
        Override,
        Schedule,
        Shift,
        next_handoff,
        on_call,
        shifts,
    )
    from workflows.requests import DirectMessage, ResolvePeople, SetUserGroup
    from workflows.text import SLACK_USER_ID

WORKFLOW_PREFIX = "oncall-"
CHECK_IN = timedelta(hours=1)  # an idle schedule wakes this often: a new build takes it over
MAX_HISTORY, MAX_DEFINITIONS = 2000, 50  # events before continuing as new; edits kept
MAX_OVERRIDE_LENGTH = timedelta(days=90)
KEEP_PAST = timedelta(days=30)  # an override over stays this long: calendars still show it
SLACK_CALL = timedelta(seconds=30)
# A few minutes of Slack trouble: a later handoff message is noise and would hold the next
# handoff. Resolving people waits for Slack instead: without ids nobody can be told anything.
SLACK_RETRY = RetryPolicy(maximum_attempts=8, maximum_interval=timedelta(seconds=30))
PATIENT = RetryPolicy(maximum_interval=timedelta(minutes=1))


def schedule_workflow_id(name: str) -> str:
    return f"{WORKFLOW_PREFIX}{name}"


class Definition(BaseModel):
    """A schedule from ``since``: an edit applies from when it is made, not to past shifts."""

    schedule: Schedule
    since: datetime


class ScheduleInput(BaseModel):
    name: str
    written: Schedule  # as the policy says it (people as @handles, emails or ids)
    definitions: list[Definition] = Field(default_factory=list)  # resolved: a continued run
    overrides: list[Override] = Field(default_factory=list)
    announced: str | None = None  # who was last told they are on call (and put in the group)
    last_override: int = 0  # override ids are "1", "2"...: short enough to type in Slack


class AddOverride(BaseModel):
    user: str = Field(max_length=254)  # an id, @handle or email
    start: datetime
    end: datetime
    by: str | None = Field(default=None, max_length=64)


class RemoveOverride(BaseModel):
    id: str = Field(max_length=64)
    by: str | None = Field(default=None, max_length=64)


class Roster(BaseModel):
    name: str
    schedule: Schedule  # the current definition, people as user ids
    written: Schedule  # the current definition as the policy wrote it
    definitions: list[Definition]
    overrides: list[Override]
    announced: str | None = None

    def shifts(self, start: datetime, end: datetime, limit: int = MAX_SHIFTS) -> list[Shift]:
        """Shifts across the schedule's edits, each definition where it applied."""
        found: list[Shift] = []
        for i, definition in enumerate(self.definitions):
            since = definition.since.astimezone(UTC) if i > 0 else start
            until = self.definitions[i + 1].since if i + 1 < len(self.definitions) else end
            low, high = max(start, since), min(end, until)
            if low >= high:
                continue
            for shift in shifts(definition.schedule, self.overrides, low, high, limit):
                shift.start = max(shift.start, since)
                last = found[-1] if found else None
                if last and (last.user, last.override, last.end) == (
                    shift.user,
                    shift.override,
                    shift.start,
                ):
                    last.end = shift.end
                elif len(found) < limit:
                    found.append(shift)
        return found


def _when(at: datetime, schedule: Schedule, now: datetime) -> str:
    """'Mon 09:00 Europe/Paris', with the date when it is more than a week away."""
    local = at.astimezone(schedule.zone)
    shape = "%a %H:%M" + (":%S" if local.second else "")
    shape = "%a %d %b %H:%M" if at - now > timedelta(days=7) else shape
    return f"{local.strftime(shape)} {schedule.timezone}"


@workflow.defn
class ScheduleWorkflow:
    @workflow.init
    def __init__(self, input: ScheduleInput) -> None:
        self.name = input.name
        self.written = input.written
        self.definitions = list(input.definitions)
        self.overrides = list(input.overrides)
        self.announced = input.announced
        self.last_override = input.last_override
        self.changes = 0

    @property
    def schedule(self) -> Schedule:
        return self.definitions[-1].schedule if self.definitions else self.written

    @workflow.run
    async def run(self, input: ScheduleInput) -> None:
        if not self.definitions:
            await self._define(self.written, workflow.now())
        while True:
            await self._hand_off()
            if self._should_continue():
                await workflow.wait_condition(workflow.all_handlers_finished)
                self._continue_as_new()
            await self._sleep_until_handoff()

    async def _sleep_until_handoff(self) -> None:
        now = workflow.now()
        handoff = next_handoff(self.schedule, self.overrides, now)
        wake = min(handoff or now + CHECK_IN, now + CHECK_IN)
        seen = self.changes
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self.changes != seen,
                timeout=max(wake - now, timedelta(0)),
                timeout_summary="next on-call handoff",
            )

    def _should_continue(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() > MAX_HISTORY
            or info.is_target_worker_deployment_version_changed()
        )

    def _continue_as_new(self) -> NoReturn:
        now = workflow.now()
        carried = ScheduleInput(
            name=self.name,
            written=self.written,
            definitions=self.definitions,
            overrides=[o for o in self.overrides if o.end > now - KEEP_PAST],
            announced=self.announced,
            last_override=self.last_override,
        )
        workflow.continue_as_new(
            carried,
            initial_versioning_behavior=workflow.ContinueAsNewVersioningBehavior.AUTO_UPGRADE,
        )

    async def _resolve(self, people: list[str], retry: RetryPolicy = PATIENT) -> list[str]:
        return await workflow.execute_activity_method(
            OncallActivities.resolve_people,
            ResolvePeople(people=people),
            start_to_close_timeout=SLACK_CALL,
            retry_policy=retry,
        )

    async def _define(self, written: Schedule, since: datetime) -> None:
        resolved = written.model_copy(deep=True)
        for layer in resolved.layers:
            layer.people = await self._resolve(layer.people)
        self.written = written
        self.definitions = [*self.definitions, Definition(schedule=resolved, since=since)]
        self.definitions = self.definitions[-MAX_DEFINITIONS:]
        self.changes += 1

    async def _hand_off(self) -> None:
        now = workflow.now()
        shift = on_call(self.schedule, self.overrides, now)
        incoming = shift.user if shift else None
        outgoing = self.announced
        if incoming == outgoing:
            return
        self.announced = incoming  # before any await: a concurrent wake must not repeat it
        key = f"{self.name}:{now.isoformat()}"
        sends = []
        if incoming and SLACK_USER_ID.match(incoming):
            until = next_handoff(self.schedule, self.overrides, now)
            when = f"until {_when(until, self.schedule, now)}" if until else "for now"
            text = f"You are on call for {self.name} {when}."
            sends.append(self._message(incoming, text, f"{key}:in"))
        if outgoing and SLACK_USER_ID.match(outgoing):
            taker = f"<@{incoming}> is" if incoming else "nobody is"
            text = f"Your on-call shift for {self.name} is over: {taker} on call now."
            sends.append(self._message(outgoing, text, f"{key}:out"))
        group = self.schedule.user_group
        if group and incoming and SLACK_USER_ID.match(incoming):
            sends.append(
                workflow.execute_activity_method(
                    OncallActivities.set_user_group,
                    SetUserGroup(handle=group, users=[incoming]),
                    start_to_close_timeout=SLACK_CALL,
                    retry_policy=SLACK_RETRY,
                )
            )
        workflow.logger.info("oncall_handoff %s: %s -> %s", self.name, outgoing, incoming)
        for failed in await asyncio.gather(*sends, return_exceptions=True):
            if isinstance(failed, BaseException):  # noted; the next handoff tries afresh
                workflow.logger.warning("oncall_handoff_failed %s: %s", self.name, failed)

    async def _message(self, user: str, text: str, key: str) -> None:
        await workflow.execute_activity_method(
            OncallActivities.direct_message,
            DirectMessage(user=user, text=text, key=key),
            start_to_close_timeout=SLACK_CALL,
            retry_policy=SLACK_RETRY,
        )

    @workflow.update
    async def add_override(self, request: AddOverride) -> Override:
        user = (await self._resolve([request.user], SLACK_RETRY))[0]  # the caller waits
        if not SLACK_USER_ID.match(user):
            raise ApplicationError(f"Slack does not know {request.user!r}", type="UnknownPerson")
        self.last_override += 1
        override = Override(
            id=str(self.last_override),
            user=user,
            start=request.start,
            end=request.end,
            by=request.by,
        )
        kept = [o for o in self.overrides if o.end > workflow.now() - KEEP_PAST]
        self.overrides = [*kept, override]
        self.changes += 1
        return override

    @add_override.validator
    def _check_override(self, request: AddOverride) -> None:
        if request.start.tzinfo is None or request.end.tzinfo is None:
            raise ValueError("an override's start and end need a time zone")
        if request.end <= request.start:
            raise ValueError("an override must end after it starts")
        if request.end <= workflow.now():
            raise ValueError("this override is already over")
        if request.end - request.start > MAX_OVERRIDE_LENGTH:
            raise ValueError(f"an override lasts at most {MAX_OVERRIDE_LENGTH.days} days")
        if len(self.overrides) >= MAX_OVERRIDES:
            raise ValueError(f"{self.name} has {MAX_OVERRIDES} overrides: remove some first")

    @workflow.update
    def remove_override(self, request: RemoveOverride) -> None:
        self.overrides = [o for o in self.overrides if o.id != request.id]
        self.changes += 1

    @remove_override.validator
    def _check_removal(self, request: RemoveOverride) -> None:
        if all(o.id != request.id for o in self.overrides):
            known = ", ".join(o.id for o in self.overrides) or "none"
            raise ValueError(f"{self.name} has no override {request.id!r} (it has {known})")

    @workflow.update
    async def set_schedule(self, written: Schedule) -> None:
        await self._define(written, workflow.now())

    @workflow.query
    def roster(self) -> Roster:
        return Roster(
            name=self.name,
            schedule=self.schedule,
            written=self.written,
            definitions=self.definitions,
            overrides=self.overrides,
            announced=self.announced,
        )

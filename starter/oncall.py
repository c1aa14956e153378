"""On call as the entry points see it: who is on call, the shifts, overrides and swaps.

Each schedule is a ``ScheduleWorkflow``: one ``roster()`` query reads it, and the answer is the
pure shift arithmetic of ``workflows.oncall.schedules``, the same the incident workflow runs
when a tier fires. Overrides are the workflow's Updates, so one is durable once answered. The
API, the CLI (through the API) and Slack's ``/oncall`` all come here; the words people type
for a window of time (``for 2h``, ``until ...``) are read here once for all of them.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from workflows.oncall.rotation import (
    AddOverride,
    RemoveOverride,
    Roster,
    ScheduleWorkflow,
    schedule_workflow_id,
)
from workflows.oncall.schedules import Override, Shift, next_handoff, on_call
from workflows.policy import Policy
from workflows.preview import Rosters
from workflows.text import parse_duration

ASK_TIMEOUT = timedelta(seconds=5)  # a schedule's workflow answers a query or an Update in this
FEED_BEFORE = timedelta(days=14)  # a calendar feed shows the past two weeks...
FEED_AFTER = timedelta(days=56)  # ...and the next eight
AT_ONCE = 20  # schedules asked side by side for "who is on call" across all of them
# A time with its zone (a bare date or time is refused), this century or the last: only dates
# that exist (a 29 February aside), and times whose arithmetic stays within a datetime's range.
ISO_WITH_ZONE = (
    r"^(19|20)\d{2}-((0[13578]|1[02])-(0[1-9]|[12]\d|3[01])|(0[469]|11)-(0[1-9]|[12]\d|30)"
    r"|02-(0[1-9]|[12]\d))T([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?"
    r"(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$"
)
WHEN_USAGE = "`for 2h`, `until <time>`, `<time> for 8h` or `<time> <time>` (ISO, with a zone)"


class UnknownSchedule(LookupError):
    """No schedule by that name in the policy."""


class UnknownOverride(LookupError):
    """No override by that id on the schedule (never made, or removed already)."""


class ScheduleUnavailable(RuntimeError):
    """The schedule's workflow did not answer: not started yet, or no worker is running."""


class OverrideRefused(ValueError):
    """The schedule refused the override (over already, too long, unknown id...)."""


class OnCallNow(BaseModel):
    name: str
    on_call: str | None  # a user id; None: nobody (a gap)
    until: datetime | None  # when that changes (None: not within the horizon)
    next: str | None  # who comes on then (None: nobody)


def current(roster: Roster, at: datetime) -> OnCallNow:
    """Who is on call at ``at``, until when, and who next, from one roster."""
    schedule, overrides = roster.schedule, roster.overrides
    shift = on_call(schedule, overrides, at)
    until = next_handoff(schedule, overrides, at)
    following = on_call(schedule, overrides, until) if until else None
    return OnCallNow(
        name=roster.name,
        on_call=shift.user if shift else None,
        until=until,
        next=following.user if following else None,
    )


def window(words: str, now: datetime) -> tuple[datetime, datetime]:
    """``for 2h``, ``until <time>``, ``<time> for 8h``, ``<time> <time>`` or ``<time> until
    <time>``: a window from now or from a time, ISO with a zone; ``now`` is a time too."""
    parts = words.split()
    if parts and parts[0] in ("for", "until"):
        parts.insert(0, "now")
    if len(parts) == 3 and parts[1] in ("until", "to"):
        parts.pop(1)
    if len(parts) == 3 and parts[1] == "for":
        start = _time(parts[0], now)
        return start, start + _length(parts[2])
    if len(parts) == 2:
        return _time(parts[0], now), _time(parts[1], now)
    raise ValueError(f"say when: {WHEN_USAGE}")


def _time(word: str, now: datetime) -> datetime:
    if word == "now":
        return now
    if not re.match(ISO_WITH_ZONE, word):
        raise ValueError(f"{word!r} is not a time with a zone, like 2026-12-08T09:00+01:00")
    return datetime.fromisoformat(word.replace("Z", "+00:00"))


def _length(word: str) -> timedelta:
    length = parse_duration(word)
    if not isinstance(length, timedelta) or length <= timedelta(0):
        raise ValueError(f"{word!r} is not a length of time, like 30m, 2h or 3d")
    return length


class OnCallDesk:
    """The schedules of the policy in force, read and changed through their workflows."""

    def __init__(self, client: Client, policy: Policy) -> None:
        self.client = client
        self.policy = policy

    def _handle(self, name: str) -> WorkflowHandle[Any, Any]:
        if name not in self.policy.schedules:
            known = ", ".join(self.policy.schedules) or "none"
            raise UnknownSchedule(f"no schedule {name!r} (the policy has {known})")
        return self.client.get_workflow_handle_for(ScheduleWorkflow.run, schedule_workflow_id(name))

    async def roster(self, name: str) -> Roster:
        try:
            roster: Roster = await self._handle(name).query(
                ScheduleWorkflow.roster, rpc_timeout=ASK_TIMEOUT
            )
        except (RPCError, RPCTimeoutOrCancelledError) as error:
            raise _unavailable(name, error) from None
        return roster

    async def every_roster(self) -> dict[str, Roster]:
        """Every schedule's roster, asked ``AT_ONCE`` at a time."""
        gate = asyncio.Semaphore(AT_ONCE)

        async def one(name: str) -> Roster:
            async with gate:
                return await self.roster(name)

        names = list(self.policy.schedules)
        found = await asyncio.gather(*(one(name) for name in names))
        return dict(zip(names, found, strict=True))

    async def now(self, at: datetime) -> list[OnCallNow]:
        """Every schedule: who is on call at ``at``, until when, and who next."""
        return [current(roster, at) for roster in (await self.every_roster()).values()]

    async def rosters(self, at: datetime) -> Rosters:
        """What the policy preview knows of who is on call: every schedule's overrides, or
        none at all when a schedule did not answer (the preview then says so)."""
        try:
            found = await self.every_roster()
        except ScheduleUnavailable:
            return Rosters(at=at)
        return Rosters(at=at, overrides={name: r.overrides for name, r in found.items()})

    async def shifts(self, name: str, start: datetime, end: datetime) -> list[Shift]:
        """Overrides applied, each edit of the schedule where it applied."""
        return (await self.roster(name)).shifts(start, end) if end > start else []

    async def person_shifts(self, user: str, start: datetime, end: datetime) -> list[Shift]:
        """One person's shifts across every schedule, each named in ``user`` as the schedule."""
        if end <= start:
            return []
        found = [
            shift.model_copy(update={"user": name})
            for name, roster in (await self.every_roster()).items()
            for shift in roster.shifts(start, end)
            if shift.user == user
        ]
        return sorted(found, key=lambda s: s.start)

    async def add_override(
        self,
        name: str,
        user: str,
        start: datetime,
        end: datetime,
        by: str | None,
        key: str | None = None,
    ) -> Override:
        """``key``: a retry with the same one gets the same override (the Update's id), for as
        long as the schedule's run lasts."""
        request = AddOverride(user=user, start=start, end=end, by=by)
        update_id = f"add_override:{key}" if key else None
        override: Override = await self._update(
            name, ScheduleWorkflow.add_override, request, update_id
        )
        return override

    async def remove_override(self, name: str, override_id: str, by: str | None) -> Override:
        """The override removed, as it was."""
        overrides = (await self.roster(name)).overrides
        removed = next((o for o in overrides if o.id == override_id), None)
        if removed is None:
            raise UnknownOverride(f"{name} has no override {override_id!r}")
        await self._update(
            name, ScheduleWorkflow.remove_override, RemoveOverride(id=override_id, by=by)
        )
        return removed

    async def swap(self, name: str, asker: str, other: str, now: datetime) -> list[Override]:
        """The asker's next shift (or the one they are on) goes to ``other`` and ``other``'s
        next shift to the asker: two overrides, each a whole shift."""
        ahead = await self.shifts(name, now, now + FEED_AFTER)
        mine = next((s for s in ahead if s.user == asker), None)
        theirs = next((s for s in ahead if s.user == other), None)
        if mine is None or theirs is None:
            whose = "you have" if mine is None else f"<@{other}> has"
            raise OverrideRefused(f"{whose} no shift on {name} in the next eight weeks")
        return [
            await self.add_override(name, other, max(mine.start, now), mine.end, asker),
            await self.add_override(name, asker, max(theirs.start, now), theirs.end, asker),
        ]

    async def _update(
        self, name: str, update: Any, request: BaseModel, update_id: str | None = None
    ) -> Any:
        try:
            return await self._handle(name).execute_update(
                update, request, id=update_id, rpc_timeout=ASK_TIMEOUT
            )
        except WorkflowUpdateFailedError as error:
            cause = error.cause
            reason = cause.message if isinstance(cause, ApplicationError) else str(cause)
            raise OverrideRefused(reason) from None
        except (RPCError, RPCTimeoutOrCancelledError) as error:
            raise _unavailable(name, error) from None


def _unavailable(name: str, error: Exception) -> ScheduleUnavailable:
    if isinstance(error, RPCError) and error.status is RPCStatusCode.NOT_FOUND:
        return ScheduleUnavailable(f"schedule {name!r} is not running yet: a worker starts it")
    return ScheduleUnavailable(f"schedule {name!r} did not answer: is a worker running?")

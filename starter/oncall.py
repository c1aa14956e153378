"""On call as the entry points see it: who is on call, the shifts, overrides and swaps; and
Slack's ``/oncall``.

Each schedule is a ``ScheduleWorkflow``: one ``roster()`` query reads it, and the answer is the
pure shift arithmetic of ``workflows.oncall.schedules``, the same the incident workflow runs
when a tier fires. Overrides are the workflow's Updates, so one is durable once answered. The
API's routes (``starter.api.routes.oncall``) and Slack come here; the CLI goes through the API.
In Slack, answered ephemerally:

    /oncall                                     who is on call now, until when, who next
    /oncall override <schedule> <@user> <when>  put someone on call for a window
    /oncall swap <schedule> <@user>             you and they trade your next shifts
    /oncall remove <schedule> <override id>     take an override back

``<when>`` is read by ``starter.command_words.window``, for Slack and the CLI alike.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from pydantic import BaseModel
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from clients.slack_people import SlackPeople
from starter.command_words import WHEN_USAGE, window
from starter.desk import permit
from starter.reading import person_shifts
from starter.slack import blocks
from starter.slack.commands import SlackDesk
from workflows.lifecycle.notices import PermissionRefused
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

log = structlog.get_logger()
ASK_TIMEOUT = timedelta(seconds=5)  # a schedule's workflow answers a query or an Update in this
FEED_BEFORE = timedelta(days=14)  # a calendar feed shows the past two weeks...
FEED_AFTER = timedelta(days=56)  # ...and the next eight
AT_ONCE = 20  # schedules asked side by side for "who is on call" across all of them


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


class OnCallDesk:
    """The schedules of the policy in force, read and changed through their workflows."""

    def __init__(self, client: Client, policy: Policy, people: SlackPeople | None = None) -> None:
        self.client, self.policy = client, policy
        self.people = people or SlackPeople(None)  # who stands for whom in [permissions]

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
        rosters = await self.every_roster()
        return person_shifts({n: r.shifts(start, end) for n, r in rosters.items()}, user)

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
        await permit(self.policy, self.people, "schedules", by)
        request = AddOverride(user=user, start=start, end=end, by=by)
        update_id = f"add_override:{key}" if key else None
        override: Override = await self._update(
            name, ScheduleWorkflow.add_override, request, update_id
        )
        return override

    async def remove_override(self, name: str, override_id: str, by: str | None) -> Override:
        """The override removed, as it was."""
        await permit(self.policy, self.people, "schedules", by)
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
        next shift to the asker: two overrides, each a whole shift (and permitted as one)."""
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


# -- /oncall in Slack ---------------------------------------------------------------------

USAGE = (
    "*/oncall* shows who is on call. Also:\n"
    "`/oncall override <schedule> <@user> <when>`: put someone on call; <when> is "
    f"{WHEN_USAGE}\n"
    "`/oncall swap <schedule> <@user>`: you and they trade your next shifts\n"
    "`/oncall remove <schedule> <override id>`: take an override back"
)
# What people are told the reason of (an unknown person and a refused override are ValueErrors).
REFUSALS = (UnknownSchedule, UnknownOverride, ScheduleUnavailable, PermissionRefused, ValueError)


def _who(user: str | None) -> str:
    return f"<@{user}>" if user else "nobody"


def listing(schedules: list[OnCallNow]) -> str:
    if not schedules:
        return "The policy has no on-call schedules."
    return "\n".join(
        f"*{s.name}*: {_who(s.on_call)} until {blocks.when(s.until)}, then {_who(s.next)}"
        for s in schedules
    )


def made(name: str, override: Override) -> str:
    return (
        f"Override {override.id} on *{name}*: {_who(override.user)} on call from "
        f"{blocks.when(override.start)} to {blocks.when(override.end)}"
    )


async def answer(slack: SlackDesk, text: str, user: str) -> str:
    """The reply to ``/oncall <text>`` typed by ``user``."""
    desk = slack.desk
    oncall = OnCallDesk(desk.client, desk.policy, desk.people)
    words, now = text.split(), datetime.now(UTC)
    verb = words[0].lower() if words else ""
    if not words:
        return listing(await oncall.now(now))
    if verb == "override" and len(words) >= 4:
        start, end = window(" ".join(words[3:]), now)
        person = await slack.people.resolve(words[2])
        return made(words[1], await oncall.add_override(words[1], person, start, end, user))
    if verb == "swap" and len(words) == 3:
        other = await slack.people.resolve(words[2])
        overrides = await oncall.swap(words[1], user, other, now)
        return "\n".join(made(words[1], override) for override in overrides)
    if verb == "remove" and len(words) == 3:
        await oncall.remove_override(words[1], words[2], user)
        return f"Override {words[2]} on *{words[1]}* removed."
    return USAGE


def register_oncall(app: AsyncApp, slack: SlackDesk) -> None:
    @app.command("/oncall")
    async def oncall(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        try:
            text = await answer(slack, str(body.get("text", "")), str(body.get("user_id", "")))
        except REFUSALS as error:
            text = blocks.refused(str(error))
        except Exception:
            log.exception("slack_oncall_failed")
            text = blocks.FAILED
        if respond.response_url:
            await respond(text=text, response_type="ephemeral", replace_original=False)

"""``/oncall`` in Slack: who is on call (answered ephemerally), overrides, swaps.

    /oncall                                     who is on call now, until when, who next
    /oncall override <schedule> <@user> <when>  put someone on call for a window
    /oncall swap <schedule> <@user>             you and they trade your next shifts
    /oncall remove <schedule> <override id>     take an override back
    /oncall help

``<when>`` is ``for 2h``, ``until <time>``, ``<time> for 8h`` or ``<time> <time>``, times in
ISO with a zone (``2026-12-08T09:00+01:00``) or ``now``. The same desk as the API's routes
(``starter.oncall``): an override answered here is durable and reaches the next tier.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from clients.slack_people import UnknownPerson
from starter.oncall import (
    WHEN_USAGE,
    OnCallDesk,
    OnCallNow,
    OverrideRefused,
    ScheduleUnavailable,
    UnknownOverride,
    UnknownSchedule,
    window,
)
from starter.slack import blocks
from starter.slack.commands import SlackDesk
from workflows.oncall.schedules import Override

log = structlog.get_logger()

USAGE = (
    "*/oncall* shows who is on call. Also:\n"
    "`/oncall override <schedule> <@user> <when>`: put someone on call; <when> is "
    f"{WHEN_USAGE}\n"
    "`/oncall swap <schedule> <@user>`: you and they trade your next shifts\n"
    "`/oncall remove <schedule> <override id>`: take an override back"
)
REFUSALS = (
    UnknownSchedule,
    UnknownOverride,
    UnknownPerson,
    OverrideRefused,
    ScheduleUnavailable,
    ValueError,
)


def _when(at: datetime | None) -> str:
    """A time each reader sees in their own zone (Slack's date token), UTC as the fallback."""
    if at is None:
        return "for now"
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{at:%Y-%m-%d %H:%M} UTC>"


def _who(user: str | None) -> str:
    return f"<@{user}>" if user else "nobody"


def listing(schedules: list[OnCallNow]) -> str:
    if not schedules:
        return "The policy has no on-call schedules."
    return "\n".join(
        f"*{s.name}*: {_who(s.on_call)} until {_when(s.until)}, then {_who(s.next)}"
        for s in schedules
    )


def made(name: str, override: Override) -> str:
    return (
        f"Override {override.id} on *{name}*: {_who(override.user)} on call from "
        f"{_when(override.start)} to {_when(override.end)}"
    )


async def answer(slack: SlackDesk, text: str, user: str) -> str:
    """The reply to ``/oncall <text>`` typed by ``user``."""
    desk = slack.desk
    oncall = OnCallDesk(desk.client, desk.policy)
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

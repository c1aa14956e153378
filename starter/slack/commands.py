"""`/incident` text into a command, carried out through the desk; the answer is text for people.

Parsing is pure (no Slack, no Temporal): the sub-commands, their words and their usage texts
come from the command table (``starter.command_table``); declaring, drills, ``list`` and
``help`` are the Slack app's own. The command models (``workflows.lifecycle.commands``)
validate what was typed, and people named in it are resolved afterwards, as at every entry
point. ``SlackDesk`` is the one place that turns `/incident ...` into a desk call: listeners
only ack, call it, and respond. Every refusal (the workflow's, an unknown person, a malformed
command) comes back as an answer with the reason; nothing here lets a stack trace reach Slack.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from pydantic import BaseModel, ValidationError
from slack_sdk.web.async_client import AsyncWebClient

from clients.messages import escape
from clients.slack_people import SlackPeople, UnknownPerson
from clients.tokens import (
    DEFAULT_LIFETIME,
    PERSONAL,
    AuditEvent,
    AuditKind,
    AuditLog,
    TokenStore,
    made_event,
    ordered,
)
from starter.command_table import BY_VERB, COMMANDS, GROUPS, CommandRow, group_usage
from starter.command_words import Malformed, resolve_fields
from starter.command_words import error_text as error_text
from starter.desk import IncidentDesk, IncidentNotFound
from starter.slack import blocks
from workflows.incident_types import members
from workflows.lifecycle import commands as cmd
from workflows.lifecycle.commands import complete
from workflows.lifecycle.notices import CommandRefused, PermissionRefused
from workflows.models import Declaration, DeclarationRequest, IncidentState
from workflows.text import parse_incident_ref

MAX_TEXT = 3000  # Slack sends at most 4,000 characters; our longest field takes 3,000


def usage() -> str:
    """The help text: declaring, then every row of the command table, then the rest."""
    lines = [
        "*`/incident` commands*",
        "`declare [sev] <title>`  declare an incident (no title: a form opens)",
        "`drill [sev] <title>`  declare a drill: marked DRILL, on a faster clock, no pages",
        *(f"`{row.usage}`  {row.described}" for row in COMMANDS),
        "`automations`  the rules that ran and wait  ·  `list`  open incidents  ·  "
        "`token`  your own API token, for `incident login`  ·  "
        "`help`  this text",
        "In an incident's channel the command is for that incident; elsewhere put its number "
        "first: `/incident ack 42`. `/escalate` and `/resolve` work as "
        "`/incident escalate|resolve`.",
    ]
    return "\n".join(lines)


USAGE = usage()


@dataclass(frozen=True)
class Asked:
    """A parsed sub-command: which one, for which incident, and its still-raw fields."""

    name: str
    model: type[BaseModel] | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    incident: str | None = None  # the incident id, when the text named one


def parse(text: str, in_incident_channel: bool, severities: list[str]) -> Asked:
    """What ``/incident <text>`` asks; ``Malformed`` with the reason when it asks nothing.

    Outside an incident's channel, a sub-command about one incident takes its number right
    after its verb: `/incident ack 42`, `/incident action done 42 1`.
    """
    if len(text) > MAX_TEXT + 200:
        raise Malformed(f"that is {len(text)} characters; keep it under {MAX_TEXT}")
    words = text.split()
    if not words or words[0].lower() == "help":
        return Asked("help")
    first = words[0].lower()
    rest = text.strip()[len(words[0]) :].strip()
    if first in ("list", "token"):
        return Asked(first)
    if first in ("declare", "drill"):
        return _declare(rest, severities, first == "drill")
    # `automations` alone lists an incident's rules; `automations skip` is a row.
    listing = first == "automations" and not rest.lower().startswith("skip")
    row, rest = (None, rest) if listing else _row(first, rest)
    incident = None
    if not in_incident_channel:
        ref, _, rest = rest.partition(" ")
        try:
            incident = parse_incident_ref(ref)
        except ValueError:
            raise Malformed(
                f"this is not an incident channel: say which incident, like "
                f"`/incident {row.verb if row else first} 42 ...`"
            ) from None
    if row is None:
        return Asked(first, incident=incident)
    fields = row.fields(rest.strip())
    if fields is None:
        shown = group_usage(row.group) if row.group in GROUPS else f"`{row.usage}`"
        raise Malformed(f"{row.prompt} {shown}".strip())
    return Asked(row.verb, row.model, fields, incident)


def _row(first: str, rest: str) -> tuple[CommandRow[Any], str]:
    """The row the first word (or two, for ``action add``) names, and the words after them."""
    if first in GROUPS:
        verb, _, after = rest.partition(" ")
        row = BY_VERB.get(f"{first} {verb.lower()}")
        if row is None:
            raise Malformed(group_usage(first))
        return row, after.strip()
    row = BY_VERB.get(first)
    if row is None:
        raise Malformed(f"there is no `/incident {first}`; try `/incident help`")
    return row, rest


def _declare(rest: str, severities: list[str], drill: bool) -> Asked:
    """Without a severity, the least severe: someone can always raise it. No title opens the
    declare form, but a drill is always typed out: the form has no place to say it is one."""
    verb = "drill" if drill else "declare"
    if not rest and drill:
        raise Malformed("give the drill a title: `/incident drill [sev] <title>`")
    if not rest:
        return Asked("declare")
    first, _, after = rest.partition(" ")
    if first.lower() in severities:
        severity, title = first.lower(), after.strip()
        if not title:
            raise Malformed(f"give the incident a title: `/incident {verb} {severity} <title>`")
    else:
        severity, title = severities[-1], rest
    drilled = {"drill": True} if drill else {}
    return Asked("declare", Declaration, {"title": title, "severity": severity, **drilled})


def automations(state: IncidentState) -> str:
    """`/incident automations`: the rules waiting (each with its number, to skip it, and when it
    fires) and the newest lines the rules wrote on the timeline; rule names escaped."""
    waiting = sorted(state.automations, key=lambda w: w.due_at)[: blocks.MAX_LISTED]
    ran = [e for e in state.timeline if e.text.startswith("Automation '")][-blocks.MAX_LISTED :]
    lines = [f"*Automations of {state.label}*"]
    lines += ["*Waiting* (the commander skips: `/incident automations skip <n>`)"] * bool(waiting)
    lines += [f"• #{w.id} *{escape(w.rule)}* fires {blocks.when(w.due_at)}" for w in waiting]
    lines += ["*Ran*"] * bool(ran)
    lines += [f"• {blocks.when(e.at)} {blocks.timeline_text(e.text)}" for e in ran]
    return "\n".join(lines if len(lines) > 1 else [*lines, "No rule has run or waits here."])


log = structlog.get_logger()

# What people may be told: the reason, never a traceback.
REFUSALS = (CommandRefused, IncidentNotFound, UnknownPerson, Malformed, ValidationError, ValueError)


@dataclass(frozen=True)
class Answer:
    """What the asker sees: mrkdwn text, and blocks when there is more than text to show."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Where:
    """Who asked, from which channel, with which trigger (a modal may open from it)."""

    user: str
    channel_id: str
    channel_name: str = ""  # only for incidents from builds that did not record the channel's id
    trigger_id: str = ""


class SlackDesk:
    """The desk and the people resolver, as the Slack listeners use them."""

    def __init__(
        self,
        desk: Callable[[], IncidentDesk],
        people: SlackPeople,
        tokens: Callable[[], TokenStore] | None = None,
    ) -> None:
        self._desk = desk
        self.people = people
        self.tokens = tokens  # None: the API has no token store, so no personal tokens
        self.background: set[asyncio.Task[None]] = set()  # beside requests; ends with the API

    @property
    def desk(self) -> IncidentDesk:
        return self._desk()

    async def slash(self, text: str, where: Where, client: AsyncWebClient) -> Answer | None:
        """The answer to ``/incident <text>``; None when a modal opened instead."""
        try:
            return await self._slash(text, where, client)
        except REFUSALS as error:
            return Answer(blocks.refused(error_text(error)))
        except Exception:
            # Temporal or Slack down, a bug: the person gets a plain word, the log the trace.
            log.exception("slack_command_failed")
            return Answer(blocks.FAILED)

    async def _slash(self, text: str, where: Where, client: AsyncWebClient) -> Answer | None:
        here = await self.incident_here(where)
        asked = parse(text, here is not None, list(self.desk.policy.severities))
        if asked.name == "help":
            return Answer(USAGE)
        if asked.name == "list":
            # Slack has no admins: a private incident is listed to its members only.
            listed = await self.desk.list(open=True, sees=lambda s: where.user in members(s))
            return Answer(blocks.listing(listed))
        if asked.name == "declare":
            return await self._declare(asked, where, client)
        if asked.name == "token":
            return await self.personal_token(where.user)
        ref = asked.incident or here
        assert ref is not None  # parse demands it
        if asked.name == "automations":
            state = await self.desk.get(ref)
            if state.private and where.user not in members(state):
                raise IncidentNotFound(f"no incident {ref}")  # as the API answers a stranger
            return Answer(automations(state))
        assert asked.model is not None
        state = await self.command(ref, asked.model, {**asked.fields, "by": where.user})
        return Answer(blocks.result(state))

    async def personal_token(self, user: str) -> Answer:
        """A new token for the person typing, answered to them alone (the slash command's
        answers are ephemeral): Slack has verified who they are, as the API cannot."""
        if self.tokens is None:
            raise Malformed("personal tokens are not available: the API has no database")
        store = self.tokens()
        made, secret = await asyncio.to_thread(
            store.issue, user, PERSONAL, DEFAULT_LIFETIME, f"slack:{user}"
        )
        audit = AuditLog(lambda: store.engine)  # never fails the token it records
        await asyncio.to_thread(audit.record, [made_event(made, user, None, "slack")])
        until = made.expires_at.strftime("%Y-%m-%d %H:%M UTC")
        return Answer(
            f"Your personal API token ({', '.join(ordered(made.scopes))}; until {until}), "
            f"shown this once, to you alone: `{secret}`\n"
            f"On the command line: `incident login {secret}`. It acts as you only; revoke it "
            f"with `DELETE /tokens/{made.id}`."
        )

    async def incident_here(self, where: Where) -> str | None:
        return await self.desk.in_channel(where.channel_id, where.channel_name)

    async def command(self, ref: str, model: type[Any], fields: dict[str, Any]) -> IncidentState:
        """Resolve the people named, validate the command, run its Update (come in by Slack)."""
        data = await resolve_fields(self.people, model, fields)
        command: cmd.Command = model.model_validate({**data, "source": "slack"})
        what = f"{type(command).__name__} {ref}"
        log.info("slack_command", command=type(command).__name__, incident_id=ref)
        try:
            return await self.desk.command(ref, command)
        except PermissionRefused as error:
            if (tokens := self.tokens) is not None:  # audited, as the API's refusals are
                event = AuditEvent(AuditKind.REFUSED, command.by, None, "slack", what, str(error))
                await asyncio.to_thread(AuditLog(lambda: tokens().engine).record, [event])
            raise

    async def _declare(self, asked: Asked, where: Where, client: AsyncWebClient) -> Answer | None:
        if asked.model is None:
            view = blocks.declare_modal(self.desk.policy, where.channel_id)
            await client.views_open(trigger_id=where.trigger_id, view=view)
            return None
        state, created = await self.declare(asked.fields, where.user, where.trigger_id)
        return Answer(blocks.declared(state, created), blocks.declared_blocks(state, created))

    async def declare(
        self, fields: dict[str, Any], user: str, trigger_id: str
    ) -> tuple[IncidentState, bool]:
        """Declared by the Slack user; the trigger id keeps a retried request to one incident."""
        declaration = self.declaration(fields, user, trigger_id)
        state, created = await self.desk.declare(declaration)
        log.info("slack_declared", incident_id=state.id, created=created)
        return state, created

    def declaration(self, fields: dict[str, Any], user: str, trigger_id: str) -> Declaration:
        """The declaration, completed from its template and checked against the policy
        (``ValueError`` names the field: ``title: Field required: ...``)."""
        key = f"slack-{trigger_id}" if trigger_id else None
        data = {**fields, "declared_by": user, "source": "slack", "idempotency_key": key}
        return complete(DeclarationRequest.model_validate(data), self.desk.policy)

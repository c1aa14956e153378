"""What a slash command asks, carried out through the desk; the answer is text for people.

The one place that turns `/incident ...` into a desk call: listeners only ack, call this, and
respond. Every refusal (the workflow's, an unknown person, a malformed command) comes back as
an answer with the reason; nothing here lets a stack trace reach Slack.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from pydantic import ValidationError
from slack_sdk.web.async_client import AsyncWebClient

from clients.slack_people import SlackPeople, UnknownPerson
from starter.command_words import resolve_fields
from starter.desk import IncidentDesk, IncidentNotFound
from starter.slack import replies, views
from starter.slack.parse import USAGE, Asked, Malformed, error_text, parse
from workflows.lifecycle import commands as cmd
from workflows.lifecycle.commands import complete
from workflows.lifecycle.notices import CommandRefused
from workflows.models import Declaration, DeclarationRequest, IncidentState

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
    channel_name: str
    trigger_id: str = ""


class SlackDesk:
    """The desk and the people resolver, as the Slack listeners use them."""

    def __init__(self, desk: Callable[[], IncidentDesk], people: SlackPeople) -> None:
        self._desk = desk
        self.people = people

    @property
    def desk(self) -> IncidentDesk:
        return self._desk()

    async def slash(self, text: str, where: Where, client: AsyncWebClient) -> Answer | None:
        """The answer to ``/incident <text>``; None when a modal opened instead."""
        try:
            return await self._slash(text, where, client)
        except REFUSALS as error:
            return Answer(replies.refused(error_text(error)))
        except Exception:
            # Temporal or Slack down, a bug: the person gets a plain word, the log the trace.
            log.exception("slack_command_failed")
            return Answer(replies.FAILED)

    async def _slash(self, text: str, where: Where, client: AsyncWebClient) -> Answer | None:
        here = await self.incident_here(where.channel_name)
        asked = parse(text, here is not None, list(self.desk.policy.severities))
        if asked.name == "help":
            return Answer(USAGE)
        if asked.name == "list":
            return Answer(replies.listing(await self.desk.list(open=True)))
        if asked.name == "declare":
            return await self._declare(asked, where, client)
        ref = asked.incident or here
        assert ref is not None and asked.model is not None  # parse demands both
        state = await self.command(ref, asked.model, {**asked.fields, "by": where.user})
        return Answer(replies.result(state))

    async def incident_here(self, channel_name: str) -> str | None:
        return await self.desk.in_channel(channel_name) if channel_name else None

    async def command(self, ref: str, model: type[Any], fields: dict[str, Any]) -> IncidentState:
        """Resolve the people named, validate the command, run its Update."""
        data = await resolve_fields(self.people, model, fields)
        command: cmd.Command = model.model_validate(data)
        log.info("slack_command", command=type(command).__name__, incident_id=ref)
        return await self.desk.command(ref, command)

    async def _declare(self, asked: Asked, where: Where, client: AsyncWebClient) -> Answer | None:
        if asked.model is None:
            view = views.declare_modal(self.desk.policy, where.channel_id)
            await client.views_open(trigger_id=where.trigger_id, view=view)
            return None
        state, created = await self.declare(asked.fields, where.user, where.trigger_id)
        return Answer(replies.declared(state, created), replies.declared_blocks(state, created))

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

"""The command table: every command on one incident, defined once, one row each.

A row names the command's model (``workflows.lifecycle.commands``), the IncidentWorkflow Update
that carries it (a typed method reference), its verb (its name for people), its help, its HTTP
path (its name in the API) and how its words read. The API's routes, the CLI's sub-commands,
Slack's ``/incident`` sub-commands and usage, and the docs' command tables (a test holds them)
are all made from these rows. Adding a command: docs/architecture.md ("Adding a command").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from temporalio.workflow import UpdateMethodMultiParam

from starter.command_words import Grammar, action_item, write_up
from workflows.incident import IncidentWorkflow
from workflows.lifecycle import commands as cmd
from workflows.models import IncidentState

C = TypeVar("C", bound=cmd.Command)


@dataclass(frozen=True)
class CommandRow(Generic[C]):
    verb: str  # what people type: "ack", "action add"
    model: type[C]
    update: UpdateMethodMultiParam[[IncidentWorkflow, C], IncidentState]
    path: str  # POST /incidents/{incident_id}/<path>
    help: str  # one line: the CLI's help, the route's summary, the usage text, the docs
    grammar: Grammar = field(default_factory=Grammar)
    aliases: tuple[str, ...] = ()  # other spellings people may type
    prompt: str = ""  # said before the usage when the words do not fit: "which status?"
    # The words after the verb, as in the docs; a test parses each into the row's model.
    example: str = ""
    # The irregular ones: their words as fields (None: they do not fit), and their usage.
    parse: Callable[[str], dict[str, Any] | None] | None = None
    shown: str = ""
    # A field Slack and the CLI fill with the time the person spoke (a client of the API says).
    now: str | None = None
    # CLI option names for fields the words leave out, where the field's own name is clumsy.
    flags: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The Update's name as registered: the first half of an Idempotency-Key's update id."""
        name = self.update._defn.name
        assert name is not None  # a row names a fixed Update, never the dynamic handler
        return name

    @property
    def described(self) -> str:
        """Its help, with the other spellings people may type."""
        also = ", ".join(f"`{alias}`" for alias in self.aliases)
        return f"{self.help} (also {also})" if also else self.help

    @property
    def group(self) -> str:
        """``action`` for ``action add``: verbs of one group share their usage text."""
        return self.verb.split()[0]

    @property
    def usage(self) -> str:
        """``status <investigating|identified|monitoring|resolved> [message]``"""
        words = self.shown or self.grammar.usage(self.model)
        return f"{self.verb} {words}".strip()

    def fields(self, rest: str) -> dict[str, Any] | None:
        """The command's fields from the words after its verb; None when they do not fit."""
        fields = self.parse(rest) if self.parse else self.grammar.fields(self.model, rest)
        if fields is not None and self.now:
            fields[self.now] = datetime.now(UTC)
        return fields


ITEM = "action-items/{item_id}"
COMMANDS: tuple[CommandRow[Any], ...] = (
    CommandRow(
        "ack",
        cmd.Acknowledge,
        IncidentWorkflow.acknowledge,
        "acknowledge",
        "acknowledge: escalation stops (and you become commander if there is none)",
        aliases=("acknowledge",),
    ),
    CommandRow(
        "status",
        cmd.SetStatus,
        IncidentWorkflow.set_status,
        "status",
        "move the status forward (skipping ahead is fine, back is not)",
        Grammar(("status",), "message"),
        prompt="which status?",
        example="identified bad deploy found",
    ),
    CommandRow(
        "update",
        cmd.PostUpdate,
        IncidentWorkflow.post_update,
        "updates",
        "post a status update (resets the update reminder)",
        Grammar(text="message", text_required=True),
        prompt="say what is new:",
        example="rolled back, errors falling",
    ),
    CommandRow(
        "severity",
        cmd.SetSeverity,
        IncidentWorkflow.set_severity,
        "severity",
        "change the severity",
        Grammar(("severity",), "reason"),
        aliases=("sev",),
        prompt="which severity?",
        example="sev1 checkout down for everyone",
    ),
    CommandRow(
        "rename",
        cmd.Rename,
        IncidentWorkflow.rename,
        "rename",
        "change the title (the channel keeps its name)",
        Grammar(text="title", text_required=True),
        prompt="what is it called now?",
        example="Checkout fails for EU cards",
    ),
    CommandRow(
        "role",
        cmd.AssignRole,
        IncidentWorkflow.assign_role,
        "roles",
        "give a role to someone",
        Grammar(("role", "user")),
        aliases=("roles",),
        prompt="give a role and one person:",
        example="comms_lead <@U0BOB0002>",
    ),
    CommandRow(
        "responders",
        cmd.AddResponders,
        IncidentWorkflow.add_responders,
        "responders",
        "add responders: they are invited to the channel",
        Grammar(text="users", text_required=True),
        prompt="who?",
        example="<@U0BOB0002> <@U0CAROL03>",
    ),
    CommandRow(
        "escalate",
        cmd.Escalate,
        IncidentWorkflow.escalate,
        "escalate",
        "escalate to the next tier now",
        Grammar(text="reason"),
        example="nobody answers",
    ),
    CommandRow(
        "resolve",
        cmd.Resolve,
        IncidentWorkflow.resolve,
        "resolve",
        "resolve the incident",
        Grammar(text="message"),
        example="rolled back",
    ),
    CommandRow(
        "reopen",
        cmd.Reopen,
        IncidentWorkflow.reopen,
        "reopen",
        "reopen a resolved incident",
        Grammar(text="reason"),
        example="errors again",
    ),
    CommandRow(
        "timeline",
        cmd.AddTimelineEntry,
        IncidentWorkflow.add_timeline_entry,
        "timeline",
        "put a note on the timeline",
        Grammar(text="text", text_required=True),
        prompt="say what to note:",
        now="at",
        example="deploy 4312 went out at 14:02",
    ),
    CommandRow(
        "public",
        cmd.PostPublicUpdate,
        IncidentWorkflow.post_public_update,
        "public",
        "post a public update: the incident goes on the status page",
        Grammar(text="message", text_required=True),
        prompt="say what is new:",
        flags={"components": "--component"},
        example="Payments fail for some customers",
    ),
    CommandRow(
        "action add",
        cmd.AddActionItem,
        IncidentWorkflow.add_action_item,
        "action-items",
        "add an action item",
        Grammar(text="text", text_required=True),
        parse=action_item,
        shown="<text> [@owner] [due <when>]",
        example="rotate keys <@U0BOB0002> due 3d",
    ),
    CommandRow(
        "action assign",
        cmd.AssignActionItem,
        IncidentWorkflow.assign_action_item,
        f"{ITEM}/assign",
        "give an action item an owner",
        Grammar(("item_id", "owner")),
        example="1 <@U0CAROL03>",
    ),
    CommandRow(
        "action due",
        cmd.SetActionItemDue,
        IncidentWorkflow.set_action_item_due,
        f"{ITEM}/due",
        "set when an action item is due (2026-12-01 is 09:00 UTC, an ISO time, or 3d)",
        Grammar(("item_id", "due")),
        example="1 2026-12-01",
    ),
    CommandRow(
        "action done",
        cmd.CompleteActionItem,
        IncidentWorkflow.complete_action_item,
        f"{ITEM}/complete",
        "mark an action item done",
        Grammar(("item_id",)),
        example="1",
    ),
    CommandRow(
        "action drop",
        cmd.DropActionItem,
        IncidentWorkflow.drop_action_item,
        f"{ITEM}/drop",
        "drop an action item nobody will do",
        Grammar(("item_id",), "reason"),
        example="1 not needed",
    ),
    CommandRow(
        "retro done",
        cmd.CompleteRetrospective,
        IncidentWorkflow.complete_retrospective,
        "retrospective/complete",
        "mark the retrospective done: its reminders stop",
        Grammar(text="document_url"),
        parse=write_up,
        shown="[link to the write-up]",
        flags={"document_url": "--url"},
        example="<https://docs.example.com/retro>",
    ),
    CommandRow(
        "automations skip",
        cmd.SkipAutomation,
        IncidentWorkflow.skip_automation,
        "automations/skip",
        "call off a rule waiting for its `after` (`automations` lists them; the commander's)",
        Grammar(("wait",)),
        example="4",
    ),
)

# Commands only Slack's events send (``starter.slack.events``): no route, no CLI sub-command,
# no `/incident` word, since each states what Slack saw happen; the desk runs them like any.
HEARD: tuple[CommandRow[Any], ...] = (
    CommandRow(
        "",
        cmd.MarkMessage,
        IncidentWorkflow.mark_message,
        "",
        "a channel message pinned or given a timeline reaction, or no longer",
    ),
    CommandRow(
        "", cmd.JoinChannel, IncidentWorkflow.join_channel, "", "someone joined the channel"
    ),
)

BY_MODEL: dict[type[cmd.Command], CommandRow[Any]] = {row.model: row for row in (*COMMANDS, *HEARD)}
# Every spelling people may type, aliases included, to its row.
BY_VERB: dict[str, CommandRow[Any]] = {
    spelling: row for row in COMMANDS for spelling in (row.verb, *row.aliases)
}
GROUPS = {row.group for row in COMMANDS if " " in row.verb}


def row_of(command: cmd.Command) -> CommandRow[Any]:
    return BY_MODEL[type(command)]


def group_usage(group: str) -> str:
    """Every usage of a group (``action ...``), for the person who typed only its first word."""
    return ", ".join(f"`{row.usage}`" for row in COMMANDS if row.group == group)

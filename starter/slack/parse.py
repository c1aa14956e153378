"""`/incident` text into a command: pure functions, no Slack and no Temporal.

The sub-commands, their words and their usage texts come from the command table
(``starter.command_table``); declaring, drills, ``list`` and ``help`` are the Slack app's own.
What people type is only parsed here; the command models (``workflows.commands``) validate it,
and people named in it are resolved by the people resolver afterwards, as at every entry point.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from starter.command_table import BY_VERB, COMMANDS, GROUPS, CommandRow, group_usage
from starter.command_words import Malformed, due_time
from workflows.models import Declaration, parse_incident_ref

__all__ = ["USAGE", "Asked", "Malformed", "due_time", "error_text", "parse"]

MAX_TEXT = 3000  # Slack sends at most 4,000 characters; our longest field takes 3,000


def usage() -> str:
    """The help text: declaring, then every row of the command table, then the rest."""
    lines = [
        "*`/incident` commands*",
        "`declare [sev] <title>`  declare an incident (no title: a form opens)",
        "`drill [sev] <title>`  declare a drill: marked DRILL, on a faster clock, no pages",
        *(f"`{row.usage}`  {row.described}" for row in COMMANDS),
        "`list`  open incidents  ·  `help`  this text",
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
    if first == "list":
        return Asked("list")
    if first == "declare":
        return _declare(rest, severities)
    if first == "drill":
        return _drill(rest, severities)
    row, rest = _row(first, rest)
    incident = None
    if not in_incident_channel:
        ref, _, rest = rest.partition(" ")
        try:
            incident = parse_incident_ref(ref)
        except ValueError:
            raise Malformed(
                f"this is not an incident channel: say which incident, like "
                f"`/incident {row.verb} 42 ...`"
            ) from None
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


def _declare(rest: str, severities: list[str]) -> Asked:
    if not rest:
        return Asked("declare")  # no title: the declare form opens
    first, _, after = rest.partition(" ")
    if first.lower() in severities:
        severity, title = first.lower(), after.strip()
        if not title:
            raise Malformed(f"give the incident a title: `/incident declare {severity} <title>`")
    else:
        severity, title = default_severity(severities), rest
    return Asked("declare", Declaration, {"title": title, "severity": severity})


def _drill(rest: str, severities: list[str]) -> Asked:
    """A drill is always typed out: the declare form has no place to say it is one."""
    if not rest:
        raise Malformed("give the drill a title: `/incident drill [sev] <title>`")
    asked = _declare(rest, severities)
    return Asked(asked.name, asked.model, {**asked.fields, "drill": True})


def default_severity(severities: list[str]) -> str:
    """Without a severity, the least severe: someone can always raise it."""
    return severities[-1]


def error_text(error: Exception) -> str:
    """A pydantic validation error as one line per field, for a person."""
    from pydantic import ValidationError

    if not isinstance(error, ValidationError):
        return str(error)
    lines = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"])
        message = str(item["msg"]).removeprefix("Value error, ")
        lines.append(f"{where}: {message}" if where else message)
    return "; ".join(lines)

"""`/incident` text into a command: pure functions, no Slack and no Temporal.

What people type is only parsed here; the command models (``workflows.commands``) validate it,
and people named in it are resolved by the directory afterwards, as at every entry point.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from workflows import commands as cmd
from workflows.models import Declaration, parse_incident_ref
from workflows.policy import parse_duration

MAX_TEXT = 3000  # Slack sends at most 4,000 characters; our longest field takes 3,000
# A person at the end of `action add`: <@U123>, <@U123|bob>, @bob, or an email.
OWNER = re.compile(r"^(<@[UW][A-Z0-9]+(\|[^>]*)?>|@[\w.\-]+|[^\s@]+@[^\s@]+\.[^\s@]+)$")

USAGE = """\
*`/incident` commands*
`declare [sev] <title>`  declare an incident (no title: a form opens)
`drill [sev] <title>`  declare a drill: marked DRILL, on a faster clock, no pages
`ack`  acknowledge: escalation stops
`status <investigating|identified|monitoring|resolved> [message]`
`update <message>`  post a status update
`public <message>`  post a public update: the incident goes on the status page
`severity <sev> [reason]`
`role <commander|tech_lead|comms_lead> <@user>`
`escalate [reason]`  ·  `resolve [message]`  ·  `reopen [reason]`
`action add <text> [@owner] [due <when>]`  ·  `action done|drop <n>`
`action assign <n> <@owner>`  ·  `action due <n> <when>`  (when: 2026-12-01, an ISO time, 3d)
`retro done [link to the write-up]`
`list`  open incidents  ·  `help`  this text
In an incident's channel the command is for that incident; elsewhere put its number \
first: `/incident ack 42`. `/escalate` and `/resolve` work as `/incident escalate|resolve`."""


class Malformed(ValueError):
    """Text that is no command; the message is the reason, with the usage that fits."""


@dataclass(frozen=True)
class Asked:
    """A parsed sub-command: which one, for which incident, and its still-raw fields."""

    name: str
    model: type[BaseModel] | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    incident: str | None = None  # the incident id, when the text named one


# sub-command -> (model, usage of its arguments, how its words become fields)
FREE_TEXT: dict[str, tuple[type[cmd.Command], str]] = {
    "update": (cmd.PostUpdate, "message"),
    "escalate": (cmd.Escalate, "reason"),
    "resolve": (cmd.Resolve, "message"),
    "reopen": (cmd.Reopen, "reason"),
    "public": (cmd.PostPublicUpdate, "message"),
}
ALIASES = {"ack": "ack", "acknowledge": "ack", "sev": "severity", "roles": "role"}
NEEDS_INCIDENT = {"ack", "status", "update", "severity", "role", "escalate", "resolve", "reopen"}
NEEDS_INCIDENT |= {"action", "retro", "public"}
VERB_FIRST = {"action", "retro"}  # `/incident action done 42 1`, `/incident retro done 42`
USAGES = {
    "status": "`status <investigating|identified|monitoring|resolved> [message]`",
    "update": "`update <message>`",
    "public": "`public <message>`",
    "severity": "`severity <sev> [reason]`",
    "role": "`role <commander|tech_lead|comms_lead> <@user>`",
    "action": "`action add <text> [@owner] [due <when>]`, `action done|drop <n>`, "
    "`action assign <n> <@owner>` or `action due <n> <when>`",
    "retro": "`retro done [link to the write-up]`",
}
DUE = re.compile(r"^(?P<text>.*?)\s+due\s+(?P<when>\S+)$", re.IGNORECASE)


def parse(text: str, in_incident_channel: bool, severities: list[str]) -> Asked:
    """What ``/incident <text>`` asks; ``Malformed`` with the reason when it asks nothing.

    Outside an incident's channel, a sub-command about one incident takes its number first.
    """
    if len(text) > MAX_TEXT + 200:
        raise Malformed(f"that is {len(text)} characters; keep it under {MAX_TEXT}")
    words = text.split()
    if not words or words[0].lower() == "help":
        return Asked("help")
    name = ALIASES.get(words[0].lower(), words[0].lower())
    rest = text.strip()[len(words[0]) :].strip()
    if name == "list":
        return Asked("list")
    if name == "declare":
        return _declare(rest, severities)
    if name == "drill":
        return _drill(rest, severities)
    if name not in NEEDS_INCIDENT:
        raise Malformed(f"there is no `/incident {words[0]}`; try `/incident help`")
    incident = None
    if not in_incident_channel:
        # `action` has its verb first: `/incident action done 42 1`.
        verb, _, after = rest.partition(" ") if name in VERB_FIRST else ("", "", rest)
        ref, _, rest = after.strip().partition(" ")
        try:
            incident = parse_incident_ref(ref)
        except ValueError:
            example = f"{name} {verb} 42" if verb else f"{name} 42"
            raise Malformed(
                f"this is not an incident channel: say which incident, like "
                f"`/incident {example} ...`"
            ) from None
        rest = f"{verb} {rest.strip()}".strip()
    asked = _arguments(name, rest)
    return Asked(asked.name, asked.model, asked.fields, incident)


def _arguments(name: str, rest: str) -> Asked:
    if name == "ack":
        return Asked(name, cmd.Acknowledge)
    if name in FREE_TEXT:
        model, key = FREE_TEXT[name]
        if name in ("update", "public") and not rest:
            raise Malformed(f"say what is new: {USAGES[name]}")
        return Asked(name, model, {key: rest})
    first, _, after = rest.partition(" ")
    after = after.strip()
    if name == "status":
        if not first:
            raise Malformed(f"which status? {USAGES['status']}")
        return Asked(name, cmd.SetStatus, {"status": first.lower(), "message": after})
    if name == "severity":
        if not first:
            raise Malformed(f"which severity? {USAGES['severity']}")
        return Asked(name, cmd.SetSeverity, {"severity": first.lower(), "reason": after})
    if name == "role":
        if not first or not after or len(after.split()) != 1:
            raise Malformed(f"give a role and one person: {USAGES['role']}")
        return Asked(name, cmd.AssignRole, {"role": first.lower(), "user": after})
    if name == "retro":
        if first.lower() != "done" or len(after.split()) > 1:
            raise Malformed(USAGES["retro"])
        return Asked(name, cmd.CompleteRetrospective, {"document_url": after.strip("<>") or None})
    return _action(first.lower(), after)


def _action(verb: str, rest: str) -> Asked:
    number, _, after = rest.partition(" ")
    item = int(number.lstrip("#")) if number.lstrip("#").isdigit() else None
    after = after.strip()
    if verb == "add" and rest:
        fields: dict[str, Any] = {}
        due = DUE.match(rest)
        if due:
            rest, fields["due"] = due["text"].strip(), due_time(due["when"])
        text, _, last = rest.rpartition(" ")
        if text and OWNER.match(last):
            fields["owner"], rest = last, text.strip()
        return Asked("action", cmd.AddActionItem, {"text": rest, **fields})
    if verb in ("done", "drop") and item is not None and (verb == "drop" or not after):
        if verb == "done":
            return Asked("action", cmd.CompleteActionItem, {"item_id": item})
        return Asked("action", cmd.DropActionItem, {"item_id": item, "reason": after})
    if verb == "assign" and item is not None and OWNER.match(after):
        return Asked("action", cmd.AssignActionItem, {"item_id": item, "owner": after})
    if verb == "due" and item is not None and after and len(after.split()) == 1:
        return Asked("action", cmd.SetActionItemDue, {"item_id": item, "due": due_time(after)})
    raise Malformed(f"{USAGES['action']}")


def due_time(when: str, now: datetime | None = None) -> datetime:
    """``2026-12-01`` (09:00 UTC that day), an ISO time with a zone, or ``3d`` from now."""
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", when):
            return datetime.fromisoformat(f"{when}T09:00:00+00:00")
        if re.fullmatch(r"\d+(\.\d+)?[smhdw]", when):
            later: timedelta = parse_duration(when)
            return (now or datetime.now(UTC)) + later
        at = datetime.fromisoformat(when.replace("Z", "+00:00"))
    except ValueError:
        raise Malformed(f"`{when}` is no date: say 2026-12-01, 2026-12-01T17:00Z or 3d") from None
    if at.tzinfo is None:
        raise Malformed(f"`{when}` needs a time zone, like 2026-12-01T17:00Z")
    return at


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

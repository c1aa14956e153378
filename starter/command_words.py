"""How the words typed after a command's verb (in Slack or the CLI) become its fields, and
who the people named in them are.

A command's ``Grammar`` says which fields take one word each and which takes the rest of the
text; a field's type in the command model says how its word reads (a number, a time, a person
kept as typed, any other word in lower case). The few irregular commands (``action add <text>
[@owner] [due <when>]``) have a parse function instead. The command model validates what
comes out. The fields that name people are known by their type (``person_fields``); every
entry point resolves them to Slack user ids (``resolve_fields``, through the one resolver in
``clients.slack_people``) before a command reaches an incident, so the workflow only ever
sees ids and an unknown person is refused at the door, naming what was given.
"""

from __future__ import annotations

import re
import types
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import AliasChoices, AwareDatetime, BaseModel, ValidationError

from clients.slack_people import SlackPeople, UnknownPerson
from workflows.policy import parse_duration
from workflows.text import MENTION, slack_user_id

# A person at the end of `action add`: <@U123>, <@U123|bob>, @bob, or an email.
OWNER = re.compile(rf"^({MENTION.pattern}|@[\w.\-]+|[^\s@]+@[^\s@]+\.[^\s@]+)$")
DUE = re.compile(r"^(?P<text>.*?)\s+due\s+(?P<when>\S+)$", re.IGNORECASE)
# How a field's place shows in a usage line, when its name alone says too little.
SHOWN = {"item_id": "n", "wait": "n", "severity": "sev", "due": "when", "users": "@user ..."}


class Malformed(ValueError):
    """Text that is no command; the message is the reason, with the usage that fits."""


def error_text(error: Exception) -> str:
    """A refusal for a person: a pydantic validation error as one line per field."""
    if not isinstance(error, ValidationError):
        return str(error)
    lines = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"])
        message = str(item["msg"]).removeprefix("Value error, ")
        lines.append(f"{where}: {message}" if where else message)
    return "; ".join(lines)


@dataclass(frozen=True)
class Grammar:
    """One word for each of ``words`` (in order), then the rest of the text for ``text``."""

    words: tuple[str, ...] = ()
    text: str | None = None
    text_required: bool = False

    def fields(self, model: type[BaseModel], rest: str) -> dict[str, Any] | None:
        """The fields these words give, or None when they do not fit the grammar."""
        parts = rest.split(maxsplit=len(self.words))
        given, text = parts[: len(self.words)], " ".join(parts[len(self.words) :])
        if len(given) < len(self.words) or (self.text is None and text):
            return None
        if self.text_required and not text:
            return None
        fields: dict[str, Any] = {}
        for name, word in zip(self.words, given, strict=True):
            value = read_word(model, name, word)
            if value is None:
                return None
            fields[name] = value
        if self.text is not None:
            listed = get_origin(plain(model.model_fields[self.text].annotation)) is list
            fields[self.text] = text.split() if listed else text
        return fields

    def usage(self, model: type[BaseModel]) -> str:
        shown = [f"<{placeholder(model, name)}>" for name in self.words]
        if self.text is not None:
            name = placeholder(model, self.text)
            shown.append(f"<{name}>" if self.text_required else f"[{name}]")
        return " ".join(shown)


def plain(annotation: Any) -> Any:
    """``X | None`` as ``X``: an optional field reads its word like a required one."""
    if get_origin(annotation) in (Union, types.UnionType):
        kept = [a for a in get_args(annotation) if a is not type(None)]
        return kept[0] if len(kept) == 1 else annotation
    return annotation


def read_word(model: type[BaseModel], name: str, word: str) -> Any:
    """One typed word as its field reads it; None when it cannot be that field."""
    kind = plain(model.model_fields[name].annotation)
    if name in person_fields(model):
        return word
    if kind is int:
        number = word.lstrip("#")
        return int(number) if number.isdigit() else None
    if kind is AwareDatetime or (isinstance(kind, type) and issubclass(kind, datetime)):
        return due_time(word)
    return word.lower()


def placeholder(model: type[BaseModel], name: str) -> str:
    kind = plain(model.model_fields[name].annotation)
    if isinstance(kind, type) and issubclass(kind, Enum):
        return "|".join(str(member.value) for member in kind)
    if name in person_fields(model) and name not in SHOWN:
        return f"@{name}"
    return SHOWN.get(name, name)


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


# -- the irregular ones -------------------------------------------------------------------


def action_item(rest: str) -> dict[str, Any] | None:
    """``<text> [@owner] [due <when>]``: the owner and the time are read off the end."""
    if not rest:
        return None
    fields: dict[str, Any] = {}
    due = DUE.match(rest)
    if due:
        rest, fields["due"] = due["text"].strip(), due_time(due["when"])
    text, _, last = rest.rpartition(" ")
    if text and OWNER.match(last):
        fields["owner"], rest = last, text.strip()
    return {"text": rest, **fields}


def write_up(rest: str) -> dict[str, Any] | None:
    """``[link]``: Slack wraps a link it recognised in angle brackets."""
    if len(rest.split()) > 1:
        return None
    return {"document_url": rest.strip("<>") or None}


# -- an on-call window (`/oncall override`, `incident oncall override`) ------------------------

# A time with its zone (a bare date or time is refused), this century or the last: only dates
# that exist (a 29 February aside), and times whose arithmetic stays within a datetime's range.
ISO_WITH_ZONE = (
    r"^(19|20)\d{2}-((0[13578]|1[02])-(0[1-9]|[12]\d|3[01])|(0[469]|11)-(0[1-9]|[12]\d|30)"
    r"|02-(0[1-9]|[12]\d))T([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?"
    r"(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$"
)
WHEN_USAGE = "`for 2h`, `until <time>`, `<time> for 8h` or `<time> <time>` (ISO, with a zone)"


def window(words: str, now: datetime) -> tuple[datetime, datetime]:
    """``for 2h``, ``until <time>``, ``<time> for 8h``, ``<time> <time>`` or ``<time> until
    <time>``: a window from now or from a time, ISO with a zone; ``now`` is a time too."""
    parts = words.split()
    if parts and parts[0] in ("for", "until"):
        parts.insert(0, "now")
    if len(parts) == 3 and parts[1] in ("until", "to"):
        parts.pop(1)
    if len(parts) == 3 and parts[1] == "for":
        start = _moment(parts[0], now)
        return start, start + _stretch(parts[2])
    if len(parts) == 2:
        return _moment(parts[0], now), _moment(parts[1], now)
    raise ValueError(f"say when: {WHEN_USAGE}")


def _moment(word: str, now: datetime) -> datetime:
    if word == "now":
        return now
    if not re.match(ISO_WITH_ZONE, word):
        raise ValueError(f"{word!r} is not a time with a zone, like 2026-12-08T09:00+01:00")
    return datetime.fromisoformat(word.replace("Z", "+00:00"))


def _stretch(word: str) -> timedelta:
    length = parse_duration(word)
    if not isinstance(length, timedelta) or length <= timedelta(0):
        raise ValueError(f"{word!r} is not a length of time, like 30m, 2h or 3d")
    return length


# -- the people named ---------------------------------------------------------------------


def person_fields(model: type[BaseModel]) -> list[str]:
    """The keys of a command (or declaration) that name people, found by their type."""
    keys: list[str] = []
    for name, field in model.model_fields.items():
        if _names_people(field.annotation) or any(_is_user_id(m) for m in field.metadata):
            keys.append(name)
            if isinstance(field.validation_alias, AliasChoices):
                keys.extend(c for c in field.validation_alias.choices if isinstance(c, str))
    return list(dict.fromkeys(keys))


def _is_user_id(metadata: object) -> bool:
    return getattr(metadata, "func", None) is slack_user_id


def _names_people(annotation: object) -> bool:
    if get_origin(annotation) is Annotated:
        return any(_is_user_id(m) for m in get_args(annotation)[1:])
    return any(_names_people(arg) for arg in get_args(annotation))


async def resolve_fields(
    people: SlackPeople, model: type[BaseModel], data: dict[str, Any]
) -> dict[str, Any]:
    """``data`` with every person in ``model``'s people fields given as a user id."""
    resolved = dict(data)
    for field in person_fields(model):
        value = data.get(field)
        try:
            if isinstance(value, str):
                resolved[field] = await people.resolve(value)
            elif isinstance(value, list) and all(isinstance(v, str) for v in value):
                resolved[field] = [await people.resolve(v) for v in value]
        except UnknownPerson as error:
            error.field = field
            raise
    return resolved

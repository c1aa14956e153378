"""People's text, normalised before it becomes part of an incident.

A title of only spaces or zero-width characters names nothing; control characters break logs
and terminals; a right-to-left override makes ``gnp.exe`` read as ``exe.png``. Titles become
one line of visible text; longer texts keep their line breaks and lose the rest.
"""

from __future__ import annotations

import re
import string
import unicodedata
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, PlainSerializer

# Slack channel names for incidents: ``^[a-z0-9_-]{1,80}$`` from a template.
MAX_CHANNEL_NAME = 80
TEMPLATE_FIELDS = frozenset({"yymmdd", "yyyymmdd", "hhmm", "number", "slug", "severity"})
_NOT_ALLOWED = re.compile(r"[^a-z0-9_-]+")
_DASHES = re.compile(r"-{2,}")


def check_template(template: str, *, private: bool = False) -> None:
    """A private incident's template names no word of its title: {slug} is refused there."""
    used = {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}
    if private and "slug" in used:
        raise ValueError("a private incident's channel name template may not use {slug}")
    unknown = used - TEMPLATE_FIELDS
    if unknown:
        known = ", ".join(sorted(TEMPLATE_FIELDS))
        raise ValueError(f"channel name template uses unknown {sorted(unknown)}; known: {known}")
    if "slug" not in used and "number" not in used:
        raise ValueError("channel name template needs {slug} or {number} to tell incidents apart")


def slugify(text: str) -> str:
    return _NOT_ALLOWED.sub("-", text.lower()).strip("-_")


def channel_name(template: str, *, title: str, number: int, severity: str, at: datetime) -> str:
    """The preferred channel name; suffixes for taken names are the activity's business."""
    # Not strftime: it imports ``time`` on each call, which the workflow sandbox intercepts.
    fields = {
        "yymmdd": f"{at.year % 100:02}{at.month:02}{at.day:02}",
        "yyyymmdd": f"{at.year:04}{at.month:02}{at.day:02}",
        "hhmm": f"{at.hour:02}{at.minute:02}",
        "number": str(number),
        "severity": severity,
        "slug": "",
    }
    # Leave room for a "-99" suffix so a taken name can still be made unique within 80.
    room = MAX_CHANNEL_NAME - 3 - len(slugify(template.format(**fields)))
    fields["slug"] = slugify(title)[: max(room, 0)].strip("-_") or f"incident-{number}"
    name = slugify(template.format(**fields))
    return _DASHES.sub("-", name)[: MAX_CHANNEL_NAME - 3].strip("-_")


def with_suffix(name: str, attempt: int) -> str:
    """``name``, then ``name-2``, ``name-3`` ... for names Slack says are taken."""
    return name if attempt <= 1 else f"{name}-{attempt}"


# Format characters (Cf) hide text or reorder it: zero-width spaces and joiners, bidi
# embeddings, overrides and isolates, the BOM. Emoji sequences need ZWJ (U+200D) only between
# pictographs, where it is kept. Lone surrogates (Cs) cannot even be encoded as UTF-8.
_ZWJ = "\u200d"
_SPACES = re.compile(r"[^\S\n]+")
_LINES = re.compile(r"\n{3,}")


def _visible(char: str, keep_newlines: bool) -> str:
    category = unicodedata.category(char)
    if char == "\n" and keep_newlines:
        return char
    if char == "\t" or category in ("Zs", "Zl", "Zp") or (char == "\n" and not keep_newlines):
        return " "
    if category in ("Cc", "Cs") or (category == "Cf" and char != _ZWJ):
        return ""
    return char


def _clean(value: str, keep_newlines: bool) -> str:
    if value.isascii() and value.isprintable():  # most text: nothing to change, char by char
        return value
    value = unicodedata.normalize("NFC", value.replace("\r\n", "\n").replace("\r", "\n"))
    value = "".join(_visible(c, keep_newlines) for c in value)
    value = value.replace(" " + _ZWJ, " ").replace(_ZWJ + " ", " ").strip(_ZWJ)
    return value


def clean_line(value: str) -> str:
    """One line of visible text; refused when nothing visible is left."""
    cleaned = _SPACES.sub(" ", _clean(value, keep_newlines=False)).strip()
    if not cleaned:
        raise ValueError("must contain visible text")
    return cleaned


def clean_text(value: str) -> str:
    """Free text (summaries, updates, reasons): line breaks kept, runs of blank lines cut."""
    lines = [_SPACES.sub(" ", line).strip() for line in _clean(value, True).split("\n")]
    return _LINES.sub("\n\n", "\n".join(lines)).strip()


def clean_required_text(value: str) -> str:
    cleaned = clean_text(value)
    if not cleaned:
        raise ValueError("must contain visible text")
    return cleaned


Line = Annotated[str, AfterValidator(clean_line)]
Text = Annotated[str, AfterValidator(clean_text)]
RequiredText = Annotated[str, AfterValidator(clean_required_text)]
# An emoji by its Slack name, without colons: "pushpin", "white_check_mark", "+1".
Emoji = Annotated[str, Field(pattern=r"^[a-z0-9_+'-]{1,100}$")]
# Where a command or a declaration came in: the API, the CLI (through the API), the Slack app,
# or an alert source or paging service ("alert:grafana", "alert:pagerduty"). Each entry point
# sets it itself; the API replaces what a body says, so it is never a caller's claim.
EntryPoint = Annotated[str, Field(pattern=r"^(api|cli|slack|alert:[a-z0-9_-]{1,58})$")]
# The HTTP header the CLI names itself in; it acts with its person's own token, so claiming
# to be the CLI gains nothing, and any other value (or none) is the API.
CLIENT_HEADER = "Incident-Client"


# People are Slack user ids everywhere; these are the one spelling of what one looks like.
USER_ID = r"[UW][A-Z0-9]{2,20}"
SLACK_USER_ID = re.compile(rf"^{USER_ID}$")
# A mention in Slack's markup, ``<@U024BE7LH>`` or ``<@U024BE7LH|bob>``: group 1 is the id.
MENTION = re.compile(rf"<@({USER_ID})(?:\|[^>]*)?>")


def slack_user_id(value: str) -> str:
    """Users are Slack user ids everywhere (``U024BE7LH``); a name or an email is a mistake."""
    value = value.strip().removeprefix("<@").removesuffix(">").split("|")[0]
    if not SLACK_USER_ID.match(value):
        raise ValueError(f"{value!r} is not a Slack user id (like U024BE7LH)")
    return value


def fields_problem(text: str, known: set[str]) -> str | None:
    """A text names ``known`` fields only, plainly: no format spec (``{title:>9999}``)."""
    try:
        fields = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(text) if f]
    except ValueError as error:  # a lone brace
        return f"text {text[:40]!r}: {error}"
    if unknown := {f for f, _, _ in fields} - known:
        return f"text uses {sorted(unknown)}; known: {', '.join(sorted(known))}"
    if any(spec or conv for _, spec, conv in fields):
        return f"text {text[:40]!r}: fields are named plainly, like {{label}}"
    return None


# Durations in the policy, as people write them.
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


def parse_duration(value: Any) -> Any:
    """Seconds as a number, or ``"90s"``, ``"15m"``, ``"2h"``, ``"3d"``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(
                f"{value!r} is not a duration (use seconds or '90s', '15m', '2h', '3d')"
            )
        return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    return value


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(lambda d: d.total_seconds(), return_type=float),
]


def at_most(limit: timedelta) -> AfterValidator:
    """A duration no longer than ``limit``, refused in its own words (not a timedelta's repr)."""

    def within(value: timedelta) -> timedelta:
        if value > limit:
            raise ValueError(f"at most {limit.days} days, not {value / timedelta(days=1):g} days")
        return value

    return AfterValidator(within)


# What an incident is called, and what people may type to name one.
def incident_id(number: int) -> str:
    """The incident id is the workflow id, so the API, Slack and the Temporal UI agree."""
    return f"incident-{number}"


def incident_label(number: int) -> str:
    """What people call an incident: ``INC-42``."""
    return f"INC-{number}"


def parse_incident_ref(ref: str) -> str:
    """Accept what people type: ``incident-42``, ``INC-42``, ``inc42`` or ``42``."""
    match = re.fullmatch(r"(?:incident-|inc-?)?(\d+)", ref.strip().lower())
    if not match:
        raise ValueError(f"{ref!r} is not an incident id (like INC-42 or incident-42)")
    return incident_id(int(match.group(1)))


# Drills (see workflows/policy.py): marked in every name and message.
DRILL_MARKER = "DRILL"
DRILL_CHANNEL_PREFIX = "drill-"
DRILL_MESSAGE_MARKER = f":construction: {DRILL_MARKER}"  # leads every message and topic


def drill_channel_name(name: str, limit: int) -> str:
    """The drill's channel says what it is in its name, within Slack's length limit."""
    return (DRILL_CHANNEL_PREFIX + name)[:limit].strip("-_")


def drill_marked(text: str, is_drill: bool) -> str:
    """Nobody mistakes a drill for the real thing, whichever message they see first."""
    return f"{DRILL_MESSAGE_MARKER} · {text}" if is_drill else text

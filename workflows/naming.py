"""Slack channel names for incidents: ``^[a-z0-9_-]{1,80}$`` from a template."""

from __future__ import annotations

import re
import string
from datetime import datetime

MAX_CHANNEL_NAME = 80
TEMPLATE_FIELDS = frozenset({"yymmdd", "yyyymmdd", "hhmm", "number", "slug", "severity"})
_NOT_ALLOWED = re.compile(r"[^a-z0-9_-]+")


def check_template(template: str) -> None:
    used = {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}
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
    fields = {
        "yymmdd": at.strftime("%y%m%d"),
        "yyyymmdd": at.strftime("%Y%m%d"),
        "hhmm": at.strftime("%H%M"),
        "number": str(number),
        "severity": severity,
        "slug": "",
    }
    # Leave room for a "-99" suffix so a taken name can still be made unique within 80.
    room = MAX_CHANNEL_NAME - 3 - len(slugify(template.format(**fields)))
    fields["slug"] = slugify(title)[: max(room, 0)].strip("-_") or f"incident-{number}"
    name = slugify(template.format(**fields))
    return re.sub(r"-{2,}", "-", name)[: MAX_CHANNEL_NAME - 3].strip("-_")


def with_suffix(name: str, attempt: int) -> str:
    """``name``, then ``name-2``, ``name-3`` ... for names Slack says are taken."""
    return name if attempt <= 1 else f"{name}-{attempt}"

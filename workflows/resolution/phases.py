"""How long an incident spent in each status before resolution: investigating, identified,
monitoring (the phases the practice asks to measure).

Derived from the timeline, which already records every change of status with its time, so no
state is added and incidents declared before this existed are measured too. The incident is
investigating from its declaration; a status change names the status it moved to; a
resolution ends the status of the moment; a reopening starts investigating again. The time
between a resolution and its reopening counts in no status, and a reopened incident's time
counts again from the reopening, added to what each status had before. The status of the
moment counts up to ``now`` while the incident is open; a resolved incident's figures end at
its resolution, whatever ``now`` is. Pure, so it is checked against scripted histories.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from workflows.models import IncidentState, Status, TimelineEntry

PHASES = (Status.INVESTIGATING, Status.IDENTIFIED, Status.MONITORING)
# The timeline's words for a change of status, as ``lifecycle.states.apply_set_status`` writes
# them ("Status: investigating → identified. <message>"): the status it moved to comes second.
# The first match is ours, as people's message only ever follows it.
STATUS_CHANGE = re.compile(r"Status: [a-z]+ → ([a-z]+)")


def entered(entry: TimelineEntry) -> Status | None:
    """The status a timeline entry moved the incident into; None for every other entry."""
    if entry.kind == "reopened":
        return Status.INVESTIGATING
    if entry.kind == "resolved":
        return Status.RESOLVED
    if entry.kind == "status" and (change := STATUS_CHANGE.search(entry.text)):
        return next((s for s in Status if s.value == change.group(1)), None)
    return None


def time_in_status(state: IncidentState, now: datetime) -> dict[Status, timedelta]:
    """Time spent in each status the incident was ever in, in the order of ``PHASES``; a
    status it never entered (an incident never identified) is left out."""
    spent: dict[Status, timedelta] = {}
    current, since = Status.INVESTIGATING, state.declared_at
    for entry in state.timeline:
        status = entered(entry)
        if status is None:
            continue
        if current is not Status.RESOLVED:
            spent[current] = spent.get(current, timedelta()) + (entry.at - since)
        current, since = status, entry.at
    if current is not Status.RESOLVED:
        spent[current] = spent.get(current, timedelta()) + max(now - since, timedelta())
    return {status: spent[status] for status in PHASES if status in spent}


def reopenings(state: IncidentState) -> int:
    return sum(1 for entry in state.timeline if entry.kind == "reopened")

"""What people put on an incident's timeline by hand ("Add to timeline" in Slack). Pure."""

from __future__ import annotations

from datetime import datetime

from workflows import commands as cmd
from workflows.effects import Effect
from workflows.models import IncidentState, TimelineEntry
from workflows.policy import Policy


def check_add_timeline_entry(state: IncidentState, policy: Policy, c: cmd.AddTimelineEntry) -> None:
    """A message from the channel may join the timeline at any time, even after resolution."""


def apply_add_timeline_entry(
    state: IncidentState, policy: Policy, c: cmd.AddTimelineEntry, now: datetime
) -> list[Effect]:
    # In its place by time, so the timeline reads in the order things were said.
    entry = TimelineEntry(at=c.at, kind="message", actor=c.author, text=c.text)
    later = next((i for i, e in enumerate(state.timeline) if e.at > c.at), len(state.timeline))
    state.timeline.insert(later, entry)
    return []

"""What people note on an incident as it runs: timeline entries by hand ("Add to timeline" in
Slack) and action items as they come up (their follow-up is in ``followup.py``). Pure."""

from __future__ import annotations

from datetime import datetime

from workflows.effects import Effect, Notice
from workflows.lifecycle import commands as cmd
from workflows.lifecycle.notices import CHANNEL, CommandRefused, post_notice
from workflows.models import ActionItem, IncidentState, TimelineEntry
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


def check_add_action_item(state: IncidentState, policy: Policy, c: cmd.AddActionItem) -> None:
    """Action items are welcome at any time."""


def apply_add_action_item(
    state: IncidentState, policy: Policy, c: cmd.AddActionItem, now: datetime
) -> list[Effect]:
    item = ActionItem(
        id=len(state.action_items) + 1, text=c.text, owner=c.owner, created_at=now, due_at=c.due
    )
    state.action_items.append(item)
    owner = f" (owner <@{c.owner}>)" if c.owner else ""
    text = f"Action item #{item.id}: {c.text}{owner}"
    said = f"Action item #{item.id}: {c.text}" + (" · owner" if c.owner else "")
    post = post_notice(state, Notice.ACTION_ITEM, CHANNEL, c.by, said, [c.owner] if c.owner else [])
    state.note(now, "action_item", c.by, text)
    return [post]


def open_action_item(state: IncidentState, item_id: int) -> ActionItem:
    """The action item a command names, refused unless it is still open."""
    item = next((i for i in state.action_items if i.id == item_id), None)
    if item is None:
        raise CommandRefused(f"{state.label} has no action item #{item_id}")
    if item.done_at is not None:
        raise CommandRefused(f"action item #{item_id} is already done")
    if item.dropped_at is not None:
        raise CommandRefused(f"action item #{item_id} was dropped")
    return item


def check_complete_action_item(
    state: IncidentState, policy: Policy, c: cmd.CompleteActionItem
) -> None:
    open_action_item(state, c.item_id)


def apply_complete_action_item(
    state: IncidentState, policy: Policy, c: cmd.CompleteActionItem, now: datetime
) -> list[Effect]:
    item = open_action_item(state, c.item_id)
    item.done_at = now
    text = f"Action item #{item.id} done: {item.text}"
    post = post_notice(state, Notice.ACTION_ITEM, CHANNEL, c.by, text)
    state.note(now, "action_item_done", c.by, text)
    return [post]

"""What people note on an incident as it runs: timeline entries by hand ("Add to timeline" in
Slack), messages of the channel pinned or given a timeline reaction (Slack's events), people
joining the channel, and action items as they come up (their follow-up is in
``followup.py``); and what the timeline tells afterwards, the time spent in each status
(``time_in_status``). Pure."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from workflows.effects import Effect, Notice
from workflows.lifecycle import commands as cmd
from workflows.lifecycle.notices import CHANNEL, CommandRefused, post_notice
from workflows.models import ActionItem, IncidentState, Status, TimelineEntry
from workflows.policy import Policy

# How long an incident spent in each status: derived from the timeline, which records every
# change of status with its time, so no state is added and incidents declared before this are
# measured too. Investigating from the declaration; a status change names the status it moved
# to; a resolution ends the status of the moment; a reopening starts investigating again. The
# time between a resolution and its reopening counts in no status, and a reopened incident's
# time adds to what each status had. The status of the moment counts up to ``now`` while the
# incident is open; a resolved incident's figures end at its resolution.
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


MAX_MARKED = 500  # messages on the timeline by pins and reactions
MAX_MARKS = 100  # pins and reactions counted on one message


def _mark_key(c: cmd.MarkMessage) -> str:
    """One pin per message, whoever pinned it; one reaction per emoji and person."""
    return "pin" if c.mark == "pin" else f":{c.mark}:{c.by}"


def check_mark_message(state: IncidentState, policy: Policy, c: cmd.MarkMessage) -> None:
    """Refused when it changes nothing (a retried or repeated event): nothing is written."""
    marks = state.marked.get(c.ts, [])
    if c.on == (_mark_key(c) in marks):
        raise CommandRefused("the message is already marked so" if c.on else "no such mark")
    if c.on and not marks and len(state.marked) >= MAX_MARKED:
        raise CommandRefused(f"{MAX_MARKED} messages are on the timeline already")
    if c.on and len(marks) >= MAX_MARKS:
        raise CommandRefused("that message has enough marks")


def apply_mark_message(
    state: IncidentState, policy: Policy, c: cmd.MarkMessage, now: datetime
) -> list[Effect]:
    """The message joins the timeline with its first mark, in its place by its own time, and
    leaves it with its last."""
    check_mark_message(state, policy, c)
    key, marks = _mark_key(c), state.marked.get(c.ts, [])
    at = datetime.fromtimestamp(float(c.ts), UTC)
    if c.on:
        state.marked[c.ts] = [*marks, key]
        if not marks:
            text = c.text or "(a message with no text)"
            entry = TimelineEntry(at=at, kind="marked_message", actor=c.author, text=text)
            later = next((i for i, e in enumerate(state.timeline) if e.at > at), None)
            state.timeline.insert(len(state.timeline) if later is None else later, entry)
        return []
    state.marked[c.ts] = [m for m in marks if m != key]
    if not state.marked[c.ts]:
        del state.marked[c.ts]
        state.timeline = [
            e for e in state.timeline if not (e.kind == "marked_message" and e.at == at)
        ]
    return []


def check_join_channel(state: IncidentState, policy: Policy, c: cmd.JoinChannel) -> None:
    roles = state.roles
    if c.by is None or c.by in {
        *state.responders,
        roles.commander,
        roles.tech_lead,
        roles.comms_lead,
    }:
        raise CommandRefused(f"already responding to {state.label}")


def apply_join_channel(
    state: IncidentState, policy: Policy, c: cmd.JoinChannel, now: datetime
) -> list[Effect]:
    check_join_channel(state, policy, c)
    assert c.by is not None
    state.responders.append(c.by)
    state.note(now, "joined", c.by, f"<@{c.by}> joined")
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

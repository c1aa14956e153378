"""Public incidents: what the comms lead puts on the status page, and what follows by itself.

Pure: the workflow applies these and queues ``PublishStatus``; an activity writes the public
incident to the status page's database and tells the subscribers.
"""

from __future__ import annotations

from datetime import datetime

from workflows import commands as cmd
from workflows.effects import Effect, Notice, PublishStatus
from workflows.models import IncidentState, PublicInfo, PublicStart, PublicUpdate, Status
from workflows.notices import CHANNEL, CommandRefused, post_notice
from workflows.policy import Policy
from workflows.statuspage import PublicIncident

MAX_PUBLIC_UPDATES = 200
RESOLVED_MESSAGE = "This incident has been resolved."
REOPENED_MESSAGE = "The problem is back; we are investigating it again."


def check_post_public_update(state: IncidentState, policy: Policy, c: cmd.PostPublicUpdate) -> None:
    if state.drill:
        raise CommandRefused(f"{state.label} is a drill; drills never go on the status page")
    if state.public and len(state.public.updates) >= MAX_PUBLIC_UPDATES:
        raise CommandRefused(f"{state.label} has {MAX_PUBLIC_UPDATES} public updates already")
    unknown = sorted(set(c.components or []) - set(policy.components))
    if policy.components and unknown:
        known = ", ".join(sorted(policy.components))
        raise CommandRefused(f"unknown components {', '.join(unknown)} (known: {known})")


def apply_post_public_update(
    state: IncidentState, policy: Policy, c: cmd.PostPublicUpdate, now: datetime
) -> list[Effect]:
    check_post_public_update(state, policy, c)
    public = state.public or PublicInfo(components=list(state.components), impact=state.impact)
    if c.components is not None:
        public.components = list(c.components)
    public.impact = c.impact or public.impact
    status = c.status or state.status
    public.updates.append(PublicUpdate(at=now, status=status, message=c.message))
    public.published_status = state.status
    state.public = public
    text = f"On the status page ({status.value}): {c.message}"
    state.note(now, "public_update", c.by, text)
    return [post_notice(state, Notice.PUBLIC_UPDATE, CHANNEL, c.by, text), PublishStatus()]


def start_public(
    state: IncidentState, policy: Policy, start: PublicStart, now: datetime
) -> list[Effect]:
    """Declared public (a template's ``public``): the first public update goes out at once."""
    first = cmd.PostPublicUpdate(
        message=start.message,
        impact=start.impact,
        components=start.components,
        by=state.declared_by,
    )
    try:
        return apply_post_public_update(state, policy, first, now)
    except CommandRefused as refused:  # the entry points refuse these first; never fail a start
        state.note(now, "problem", None, f"not put on the status page: {refused.message}")
        return []


def follow_resolution(state: IncidentState, now: datetime) -> list[Effect]:
    """A public incident resolved (or reopened) says so on the page without anyone asking."""
    public = state.public
    if public is None or public.published_status is state.status:
        return []
    was_resolved = public.published_status is Status.RESOLVED
    public.published_status = state.status
    if state.status is Status.RESOLVED:
        message = RESOLVED_MESSAGE
    elif was_resolved:
        message = REOPENED_MESSAGE
    else:
        return []  # an internal status change: the public hears of it from the comms lead
    public.updates.append(PublicUpdate(at=now, status=state.status, message=message))
    state.note(now, "public_update", None, f"On the status page: {message}")
    return [PublishStatus()]


def public_incident(state: IncidentState) -> PublicIncident:
    """The incident as the public sees it: no channel, no people, no internal timeline."""
    assert state.public is not None, "only a public incident is published"
    updates = state.public.updates
    status = updates[-1].status if updates else state.status
    return PublicIncident(
        id=state.id,
        number=state.number,
        title=state.title,
        impact=state.public.impact,
        components=state.public.components,
        status=status,
        declared_at=state.declared_at,
        resolved_at=updates[-1].at if status is Status.RESOLVED else None,
        updates=updates,
    )

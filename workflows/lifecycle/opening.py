"""Opening an incident in Slack as one activity: what goes into it and what comes back.

Pure, so the workflow only sequences: ``request`` takes the declaration's opening effects out
of the outbox, ``apply`` writes the outcome into the state, and ``again`` makes the effect
that runs the same opening once more if Slack refused for longer than an opening may take
(its posts check for an earlier copy first, as the opening may have posted).
"""

from __future__ import annotations

from datetime import datetime

from workflows.effects import (
    Effect,
    FillRoles,
    Invite,
    Opened,
    OpenIncident,
    Post,
    RefreshTopic,
    RetryOpening,
)
from workflows.lifecycle.channel import declared_links
from workflows.models import IncidentState, MessageRef
from workflows.policy import Policy, drill_channel_name
from workflows.requests import IncidentBrief, OpenChannel
from workflows.text import MAX_CHANNEL_NAME, SLACK_USER_ID, channel_name

# What an invitation that failed changes: pure, so it is unit-tested without a server.
UNKNOWN_USER = ("user_not_found", "users_not_found")


def invite_failed(state: IncidentState, user: str, error: str, forget: bool) -> str:
    """What to note when someone could not be invited. With ``forget`` (as the workflow asks), a
    person Slack does not know stops being a responder: nobody can reach them, and every
    later invitation would fail the same way."""
    if forget and error in UNKNOWN_USER and user in state.responders:
        state.responders.remove(user)
    who = f"<@{user}>" if SLACK_USER_ID.match(user) else user
    return f"could not invite {who}: {error}"


OPENING_POSTS = ("kickoff", "announcement")


def channel(state: IncidentState, policy: Policy) -> OpenChannel:
    """The channel to create (or find again): its name from its type's template, else the
    policy's."""
    kind = policy.types.get(state.type) if state.type else None
    name = channel_name(
        (kind.channel_name_template if kind else None) or policy.channel.name_template,
        title=state.title,
        number=state.number,
        severity=state.severity,
        at=state.declared_at,
    )
    if state.drill:
        name = drill_channel_name(name, MAX_CHANNEL_NAME - 3)
    return OpenChannel(
        incident_id=state.id, label=state.label, title=state.title, name=name, drill=state.drill
    )


def take_roles(outbox: list[Effect]) -> list[FillRoles]:
    """The roles a type fills, taken out of the outbox: the runner asks for them before the
    opening (they are never left for its lanes), so the kickoff and invitations have them."""
    fills = [effect for effect in outbox if isinstance(effect, FillRoles)]
    outbox[:] = [effect for effect in outbox if not isinstance(effect, FillRoles)]
    return fills


def request(
    state: IncidentState,
    policy: Policy,
    channel: OpenChannel,
    brief: IncidentBrief,
    outbox: list[Effect],
) -> tuple[OpenIncident, list[Effect]]:
    """One request for the channel and the opening effects; the rest of the outbox stays."""
    topic, invite, posts, rest = False, list[str](), list[Post](), list[Effect]()
    for effect in outbox:
        if isinstance(effect, RefreshTopic):
            topic = True
        elif isinstance(effect, Invite):
            invite += [user for user in effect.users if user not in invite]
        elif isinstance(effect, Post) and effect.key in OPENING_POSTS:
            posts.append(effect)
        else:
            rest.append(effect)
    opening = OpenIncident(
        channel=channel,
        brief=brief,
        topic=topic,
        invite=invite,
        posts=posts,
        conference_url=policy.channel.conference_url,
        links=declared_links(state, policy),
    )
    return opening, rest


def apply(state: IncidentState, opened: Opened, now: datetime) -> list[str]:
    """Write the opening's outcome into the state; the problems to put on the timeline."""
    problems = list(opened.problems)
    if opened.channel is not None:
        state.channel = opened.channel
        state.note(now, "channel", None, f"Channel #{opened.channel.name}")
    kickoff = opened.posted.get("kickoff")
    if kickoff is not None:
        state.kickoff = MessageRef(channel_id=kickoff.channel_id, ts=kickoff.ts)
    for user, error in opened.invited.failed.items():
        problems.append(invite_failed(state, user, error, forget=True))
    return problems


def again(opening: OpenIncident) -> RetryOpening:
    """The opening to run again; the archive hears of the incident from its own effect then."""
    posts = [post.model_copy(update={"check_first": True}) for post in opening.posts]
    return RetryOpening(request=opening.model_copy(update={"posts": posts, "record": None}))

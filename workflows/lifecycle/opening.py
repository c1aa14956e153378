"""Opening an incident in Slack as one activity: what goes into it and what comes back.

Pure, so the workflow only sequences: ``request`` takes the declaration's opening effects out
of the outbox, ``apply`` writes the outcome into the state, and ``again`` makes the effect
that runs the same opening once more if Slack refused for longer than an opening may take
(its posts check for an earlier copy first, as the opening may have posted). The roles an
incident type fills are part of the opening too: ``declared_roles`` at the start, ``fill``
with what ``FillRoles`` found before the kickoff is posted.
"""

from __future__ import annotations

from datetime import datetime

from workflows.effects import (
    Audience,
    BookmarkLinks,
    Effect,
    FillRoles,
    Invite,
    Opened,
    OpenIncident,
    Post,
    RefreshTopic,
    RetryOpening,
    Step,
    UpdateKickoff,
)
from workflows.incident_types import ONCALL
from workflows.lifecycle.channel import conference, declared_links, unique
from workflows.models import Channel, Declaration, IncidentState, Link, MessageRef, Role, Roles
from workflows.policy import Policy
from workflows.requests import (
    IncidentBrief,
    OpenChannel,
    Posted,
    RoleHolders,
    WhoHoldsRoles,
    WhoIsOnCall,
)
from workflows.text import MAX_CHANNEL_NAME, SLACK_USER_ID, channel_name, drill_channel_name


# The roles an incident type fills at declaration. A person the type names by id holds the role
# from the start (``declared_roles``); one named by ``oncall:<schedule>``, a user group (its
# first member), an @handle or an email is asked when the incident opens (``FillRoles``, before
# the kickoff is posted, so the kickoff shows them), and ``fill`` writes the answer, as
# escalation tiers reach whoever is on call (``escalation.tiers.reach``).
def declared_roles(
    declaration: Declaration, policy: Policy, now: datetime
) -> tuple[Roles, list[Effect]]:
    """The roles held from the start, and what asks for the rest. A commander the declaration
    names wins over the type's; with neither, whoever declares commands, as without a type."""
    kind = policy.types.get(declaration.type) if declaration.type else None
    holders = dict(kind.roles) if kind else {}
    if declaration.commander:
        holders[Role.COMMANDER] = declaration.commander
    known = {role: who for role, who in holders.items() if SLACK_USER_ID.match(who)}
    roles = Roles(**{role.value: who for role, who in known.items()})
    if Role.COMMANDER not in holders:
        roles.commander = declaration.declared_by
    asked = {role: who for role, who in holders.items() if role not in known}
    if not asked:
        return roles, []
    schedules = [w.removeprefix(ONCALL) for w in asked.values() if w.startswith(ONCALL)]
    on_call = WhoIsOnCall(schedules={n: policy.schedules[n] for n in schedules}, at=now)
    people = list(dict.fromkeys(w for w in asked.values() if not w.startswith(ONCALL)))
    who = WhoHoldsRoles(on_call=on_call if schedules else None, people=people)
    return roles, [FillRoles(roles=asked, asked=who)]


def fill(state: IncidentState, asked: FillRoles, found: RoleHolders, now: datetime) -> list[Effect]:
    """Each role its holder, said on the timeline with why; a role someone took meanwhile
    stays theirs, and a holder nobody answers to is said too. A commander nobody was found
    for is whoever declared, as without a type."""
    filled: list[str] = []
    for role, holder in asked.roles.items():
        schedule = holder.removeprefix(ONCALL) if holder.startswith(ONCALL) else None
        person = found.on_call.get(schedule) if schedule else found.people.get(holder)
        if state.roles.holder(role) is not None:
            continue
        if person is None or not SLACK_USER_ID.match(person):
            why = f"nobody on call for {schedule}" if schedule else f"nobody found for {holder}"
            state.note(now, "role", None, f"{role.display}: {why}")
            continue
        why = f"on call for {schedule}" if schedule else f"from {holder}"
        setattr(state.roles, role.value, person)
        state.note(now, "role", None, f"{role.display}: <@{person}>, {why}")
        filled.append(person)
    if state.roles.commander is None and state.declared_by:
        state.roles.commander = state.declared_by
        filled.append(state.declared_by)
    effects: list[Effect] = [Invite(users=list(dict.fromkeys(filled)))] if filled else []
    return [
        *effects,
        RefreshTopic(),
        *([UpdateKickoff()] if state.kickoff or state.announcement else []),
    ]


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
    policy's (its private one for a private incident, whose title is never in the name)."""
    kind = policy.types.get(state.type) if state.type else None
    names = policy.channel
    default = names.private_name_template if state.private else names.name_template
    name = channel_name(
        (kind.channel_name_template if kind else None) or default,
        title="" if state.private else state.title,
        number=state.number,
        severity=state.severity,
        at=state.declared_at,
    )
    if state.drill:
        name = drill_channel_name(name, MAX_CHANNEL_NAME - 3)
    return OpenChannel(
        incident_id=state.id,
        label=state.label,
        title=state.title,
        name=name,
        drill=state.drill,
        private=state.private,
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
    for key, posted in opened.posted.items():
        remember(state, key, posted)
    if opened.similar is not None:
        state.similar, state.recurrences = opened.similar.closest, opened.similar.total
    for user, error in opened.invited.failed.items():
        problems.append(invite_failed(state, user, error, forget=True))
    return problems


def remember(state: IncidentState, key: str, posted: Posted) -> None:
    """The kickoff and the announcement are edited in place later, and the announcement's
    thread takes the broadcast channel's replies: their messages are kept."""
    ref = MessageRef(channel_id=posted.channel_id, ts=posted.ts)
    if key == "kickoff":
        state.kickoff = ref
    elif key == "announcement":
        state.announcement = ref


def again(opening: OpenIncident) -> RetryOpening:
    """The opening to run again; the archive hears of the incident from its own effect then."""
    posts = [post.model_copy(update={"check_first": True}) for post in opening.posts]
    return RetryOpening(request=opening.model_copy(update={"posts": posts, "record": None}))


def bookmarks(opening: OpenIncident, channel: Channel) -> list[Link]:
    """The channel's bookmarks: the conference (its address may name the channel), the links."""
    template, number = opening.conference_url, opening.brief.number
    calls = [conference(template, channel.name, number)] if template else []
    return unique([*calls, *opening.links])


def left(opening: OpenIncident, opened: Opened) -> list[Step]:
    """The optional steps the opening left (not done in time, or Slack still failing), for the
    workflow to run in the background: the topic, the bookmarks, a post's pin (the post is
    found again, not posted twice, then pinned)."""
    steps: list[Step] = []
    for name in opened.left:
        if name == "topic":
            steps.append((RefreshTopic(), None))
        elif name == "bookmarks" and opened.channel is not None:
            steps.append((BookmarkLinks(links=bookmarks(opening, opened.channel)), None))
        for post in opening.posts:
            if name == f"pin:{post.key}":
                steps.append((post.model_copy(update={"check_first": True}), Audience.CHANNEL))
    return steps

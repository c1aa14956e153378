"""Policy preview: the timeline a policy would produce for an incident, without declaring one.

It runs the workflow's own pure functions (``states.start``, the ``apply_*`` commands, the
follow-through's deadlines, ``followup.on_resolved``, ``automating.fire`` and the policy's
automations, ``automating.automate``) on a simulated clock, so what it shows is what the
deadline loop would do, which rules fire and when: a team checks a policy before it ships.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field

from workflows.effects import (
    Audience,
    Effect,
    Invite,
    Page,
    Post,
    PublishReport,
    ReachOnCall,
    SendRetrospective,
)
from workflows.escalation.deadlines import Deadline
from workflows.escalation.deadlines import followup_deadlines as deadlines
from workflows.escalation.tiers import on_call_schedules, reach
from workflows.lifecycle import automating, states
from workflows.lifecycle import commands as cmd
from workflows.lifecycle.automating import Moment
from workflows.lifecycle.timeline import entered
from workflows.models import Declaration, IncidentState, Role, Roles, Status, TimelineEntry
from workflows.oncall.schedules import Override, on_call
from workflows.policy import Duration, Policy
from workflows.resolution import followup
from workflows.text import MENTION

START = datetime(2000, 1, 1, tzinfo=UTC)  # any instant: only offsets are shown
MAX_STEPS = 1000
PREVIEW_USER = "U0PREVIEW"


class Scenario(BaseModel):
    """What people do in the simulated incident; None means they never do it."""

    severity: str
    ack_after: Duration | None = None
    updates_every: Duration | None = Field(default=None, gt=timedelta(0))
    resolve_after: Duration | None = None
    horizon: Duration = timedelta(days=1)


class Step(BaseModel):
    after: Duration  # since declaration
    what: str  # a notice kind, "page", "invite" or "archive"
    where: list[str] = Field(default_factory=list)  # channel, broadcast
    who: list[str] = Field(default_factory=list)  # people and groups mentioned, paged, invited
    text: str = ""


def _steps(effects: list[Effect], at: timedelta) -> list[Step]:
    steps = []
    for effect in effects:
        if isinstance(effect, Post):
            where = [
                (effect.channel or a) if a is Audience.NAMED else a.value for a in effect.audience
            ]
            why = [f"{who}, {effect.why[who]}" for who in effect.mentions if who in effect.why]
            text = " · ".join([effect.text, *why]) if effect.text else " · ".join(why)
            post = Step(after=at, what=effect.notice.value, where=where, who=effect.mentions)
            steps.append(post.model_copy(update={"text": text}))
        elif isinstance(effect, Page):
            steps.append(Step(after=at, what=f"page ({effect.action.value})", who=effect.targets))
        elif isinstance(effect, Invite):
            steps.append(Step(after=at, what="invite", where=[Audience.CHANNEL], who=effect.users))
        elif isinstance(effect, PublishReport):
            where = [Audience.CHANNEL, Audience.BROADCAST]
            steps.append(Step(after=at, what="situation report", where=where))
        elif isinstance(effect, SendRetrospective):
            text = f"meeting proposed for {effect.meeting_at:%a %H:%M} {effect.meeting_at:%Z}"
            steps.append(
                Step(
                    after=at,
                    what="retrospective draft and invitation",
                    who=effect.attendees,
                    text=text,
                )
            )
        elif effect.kind == "archive":
            steps.append(Step(after=at, what="archive", where=[Audience.CHANNEL]))
    return steps


def _scripted(state: IncidentState, scenario: Scenario) -> datetime | None:
    """When the people of the scenario act next."""
    times: list[datetime] = []
    if state.status is Status.RESOLVED:
        return None  # after resolution only the policy acts (retrospective, archive)
    if scenario.ack_after is not None and state.acknowledged_at is None:
        times.append(START + scenario.ack_after)
    if scenario.resolve_after is not None:
        times.append(START + scenario.resolve_after)
    if scenario.updates_every is not None:
        times.append(state.last_update_at + scenario.updates_every)
    return min(times, default=None)


def _act(state: IncidentState, policy: Policy, s: Scenario, now: datetime) -> list[Effect]:
    """What the scenario's people do at ``now``: acknowledge, post an update, resolve."""
    by, effects = PREVIEW_USER, list[Effect]()
    if state.status is Status.RESOLVED:
        return effects
    if s.ack_after is not None and not state.acknowledged_at and now >= START + s.ack_after:
        effects += states.apply_acknowledge(state, policy, cmd.Acknowledge(by=by), now)
    if s.updates_every is not None and now >= state.last_update_at + s.updates_every:
        update = cmd.PostUpdate(by=by, message="(status update)")
        effects += states.apply_post_update(state, policy, update, now)
    if s.resolve_after is not None and now >= START + s.resolve_after:
        effects += states.apply_resolve(state, policy, cmd.Resolve(by=by), now)
        # What the workflow adds to any change that resolves (its follow-through).
        effects = followup.on_resolved(state, policy, effects)
    return effects


class Rosters(BaseModel):
    """What the preview knows of who is on call: the schedules are read at ``at`` (the
    simulated declaration, a real instant) with these overrides; None: not known (the
    schedule alone is shown, said so in each answer)."""

    at: datetime = START
    overrides: dict[str, list[Override]] | None = None


def _on_call(
    state: IncidentState, policy: Policy, asked: ReachOnCall, rosters: Rosters, now: datetime
) -> tuple[list[Effect], list[Step]]:
    """A tier naming ``oncall:`` as it would fire at ``now``: who the schedules say, each
    answer a step saying what it is based on."""
    at = rosters.at + (now - START)
    basis = "overrides not known" if rosters.overrides is None else "overrides included"
    people: dict[str, str | None] = {}
    steps = []
    for name in on_call_schedules(asked.tiers):
        shift = on_call(policy.schedules[name], (rosters.overrides or {}).get(name, []), at)
        people[name] = shift.user if shift else None
        who = [shift.user] if shift else []
        text = f"{'on call' if shift else 'nobody on call'} for {name} ({basis})"
        steps.append(Step(after=now - START, what="on call", who=who, text=text))
    return reach(state, policy, asked, people, now), steps


def preview(policy: Policy, scenario: Scenario, rosters: Rosters | None = None) -> list[Step]:
    """Every notice, page, invitation and the archive, in order, until the horizon."""
    rosters = rosters or Rosters()
    policy.severity(scenario.severity)
    declaration = Declaration(title="Policy preview", severity=scenario.severity)
    state, effects = states.start(0, "incident-preview", declaration, policy, START)
    effects, moment = _automate(state, policy, effects, None, START)
    steps = [*_said(state, 0, START), *_resolved(state, policy, effects, rosters, START)]
    end = START + scenario.horizon
    for _ in range(MAX_STEPS):
        due = deadlines(state, policy)
        acted = _scripted(state, scenario)
        now = min([*due.values(), *([acted] if acted else [])], default=None)
        if now is None or now > end or state.archived_at is not None:
            break
        seen = len(state.timeline)
        effects = _act(state, policy, scenario, now)
        effects, moment = _automate(state, policy, effects, moment, now)
        for deadline, at in deadlines(state, policy).items():
            if at <= now:
                effects += automating.fire(state, policy, deadline, now)
                if deadline is Deadline.AUTOMATION:  # as the workflow: its steps trigger none
                    moment = automating.moment(state)
                effects, moment = _automate(state, policy, effects, moment, now)
        steps += [*_said(state, seen, now), *_resolved(state, policy, effects, rosters, now)]
    return steps


def _automate(
    state: IncidentState,
    policy: Policy,
    effects: list[Effect],
    before: Moment | None,
    now: datetime,
) -> tuple[list[Effect], Moment | None]:
    """The rules the change triggers, as the workflow's ``_changed`` runs them."""
    if not policy.automations:
        return effects, before
    more, moment = automating.automate(state, policy, before, now)
    return [*effects, *more], moment


def _said(state: IncidentState, seen: int, now: datetime) -> list[Step]:
    """What the rules did, began waiting for or were called off since the timeline's ``seen``
    entries: one step each, as the timeline says it."""
    said = [e for e in state.timeline[seen:] if e.text.startswith("Automation '")]
    return [Step(after=now - START, what="automation", text=e.text) for e in said]


def _resolved(
    state: IncidentState, policy: Policy, effects: list[Effect], rosters: Rosters, now: datetime
) -> list[Step]:
    """The steps of ``effects``, a tier naming ``oncall:`` answered as the workflow would."""
    steps: list[Step] = []
    for effect in effects:
        if isinstance(effect, ReachOnCall):
            reached, answers = _on_call(state, policy, effect, rosters, now)
            steps += [*answers, *_steps(reached, now - START)]
        else:
            steps += _steps([effect], now - START)
    return steps


# -- the dry run: the policy's automations over a past incident's recorded timeline ----------

SEVERITY_NAMED = re.compile(r"(?:Declared (?:DRILL )?|→ )(\S+?)(?::|\.|$)")
ROLE_SHOWN = {role.display: role for role in Role}


def dry_run(policy: Policy, recorded: IncidentState, now: datetime) -> list[Step]:
    """What the policy's automations would have done over a past incident, acting on nothing.

    A copy of the incident goes through what its timeline recorded (declaration, status,
    severity, acknowledgement, roles, updates, alerts, archiving; its action items falling
    due), the rules run on it as the workflow runs them (``automating.automate``, a wait ending
    in ``automating.fire``), and each thing they would have done, waited for or been called
    off is a step, worded as the timeline would have it. Entries the incident's own rules
    wrote are not followed: the copy's rules write their own."""
    entries = [e for e in recorded.timeline if not e.text.startswith("Automation '")]
    due = [(i.due_at, i.id) for i in recorded.action_items if i.due_at and i.reminders_sent]
    happened: list[tuple[datetime, TimelineEntry | int]] = [*((e.at, e) for e in entries), *due]
    happened.sort(key=lambda pair: pair[0])
    sim = _rewound(recorded)
    moment: Moment | None = None
    for at, entry in happened:
        while sim.automations and (wait := min(w.due_at for w in sim.automations)) <= at:
            automating.fire(sim, policy, Deadline.AUTOMATION, wait)
            moment = automating.moment(sim)
        _follow(sim, entry, at)
        _, moment = automating.automate(sim, policy, moment, at)  # the first: ``declared``
    while sim.automations and (wait := min(w.due_at for w in sim.automations)) <= now:
        automating.fire(sim, policy, Deadline.AUTOMATION, wait)
    said = [e for e in sim.timeline if e.text.startswith("Automation '")]
    return [Step(after=e.at - recorded.declared_at, what="automation", text=e.text) for e in said]


def _rewound(recorded: IncidentState) -> IncidentState:
    """The incident as declared, as far as its timeline tells: later roles and items not due."""
    first = next((e for e in recorded.timeline if e.kind == "declared"), None)
    named = SEVERITY_NAMED.search(first.text) if first else None
    assigned = {
        ROLE_SHOWN.get(e.text.partition(":")[0]) for e in recorded.timeline if e.kind == "role"
    }
    roles = {r.value: recorded.roles.holder(r) for r in Role if r not in assigned}
    items = [i.model_copy(update={"reminders_sent": 0}) for i in recorded.action_items]
    return recorded.model_copy(
        deep=True,
        update={
            "status": Status.INVESTIGATING,
            "severity": named.group(1).lower() if named else recorded.severity,
            "acknowledged_at": None,
            "resolved_at": None,
            "archived_at": None,
            "roles": Roles.model_validate(roles),
            "timeline": [],
            "automations": [],
            "action_items": items,
            "alerts": recorded.alerts.model_copy(update={"batches": 0}),
        },
    )


def _follow(sim: IncidentState, entry: TimelineEntry | int, at: datetime) -> None:
    """What one recorded entry (or an action item falling due, by its number) changed."""
    if isinstance(entry, int):
        item = next(i for i in sim.action_items if i.id == entry)
        item.reminders_sent = max(item.reminders_sent, 1)
        return
    kind, text = entry.kind, entry.text
    if kind == "acknowledged":
        sim.acknowledged_at = sim.acknowledged_at or at
    elif kind in ("status", "resolved", "reopened") and (status := entered(entry)):
        sim.status = status
    elif kind == "severity" and (named := SEVERITY_NAMED.search(text)):
        sim.severity = named.group(1).lower()
    elif kind == "role" and (role := ROLE_SHOWN.get(text.partition(":")[0])):
        person = MENTION.search(text)
        setattr(sim.roles, role.value, person.group(1) if person else None)
    elif kind == "update":
        sim.note(at, kind, entry.actor, text)
    elif kind == "alerts":
        sim.alerts.batches += 1
    elif kind == "archived":
        sim.archived_at = at

"""The incident state machine: which commands are allowed, and what each one changes.

Pure functions over ``IncidentState``. ``check_*`` decide (the Update validators call them, so
a refused command leaves no trace in history); ``apply_*`` check again, because another
command may have landed in between, then change the state and return the effects to run.
"""

from __future__ import annotations

from datetime import datetime

from workflows import statuspage
from workflows.effects import (
    Audience,
    Effect,
    Invite,
    Notice,
    Page,
    PageAction,
    Post,
    RefreshTopic,
    ReleaseKey,
)
from workflows.escalation.deadlines import refresh_deadlines
from workflows.escalation.tiers import start_escalated
from workflows.lifecycle import commands as cmd
from workflows.lifecycle.notices import BOTH, CHANNEL, CommandRefused, post_notice, require_open
from workflows.lifecycle.opening import declared_roles
from workflows.models import Declaration, IncidentState, Role, Status
from workflows.policy import Policy


def start(
    number: int, incident_id: str, declaration: Declaration, policy: Policy, now: datetime
) -> tuple[IncidentState, list[Effect]]:
    """A newly declared incident and what Slack must see once its channel exists.

    The one place a declaration becomes a state: the workflow, the intake's answer, the desk's
    snapshot before any worker ran and the policy preview all call it. ``now`` is when it is
    first looked at; the incident is declared when Temporal accepted it, if that is known.
    """
    now = declaration.declared_time(now)
    policy.severity(declaration.severity)
    roles, asked = declared_roles(declaration, policy, now)
    kind = policy.types.get(declaration.type) if declaration.type else None
    state = IncidentState(
        id=incident_id,
        number=number,
        title=declaration.title,
        summary=declaration.summary,
        severity=declaration.severity,
        impact=declaration.impact,
        components=declaration.components,
        roles=roles,
        responders=[u for u in declaration.responders if u != declaration.commander],
        declared_at=now,
        declared_by=declaration.declared_by,
        source=declaration.source,
        idempotency_key=declaration.idempotency_key,
        links=declaration.links,
        status_entered_at={Status.INVESTIGATING: now},
        drill=declaration.drill,
        last_update_at=now,
        type=declaration.type,
        private=declaration.private or bool(kind and kind.private),
    )
    state.note(
        now,
        "declared",
        declaration.declared_by,
        f"Declared {'DRILL ' if declaration.drill else ''}{declaration.severity.upper()}: "
        f"{declaration.title}",
    )
    declared = state.timeline[-1]  # the API token and entry point it came through, set by these
    declared.via, declared.source = declaration.via, declaration.source
    refresh_deadlines(state, policy, now)
    leads = [roles.commander, roles.tech_lead, roles.comms_lead]
    people = list(dict.fromkeys(p for p in [*leads, *state.responders] if p))
    effects: list[Effect] = [*asked, RefreshTopic()]
    if people:
        effects.append(Invite(users=people))
    effects += [
        Post(
            key="kickoff",
            notice=Notice.KICKOFF,
            audience=CHANNEL,
            pin=True,
            actor=declaration.declared_by,
            text=declaration.summary,
        ),
        Post(
            key="announcement",
            notice=Notice.ANNOUNCEMENT,
            audience=[Audience.BROADCAST],
            actor=declaration.declared_by,
            text=declaration.summary,
        ),
    ]
    effects += start_escalated(state, policy, declaration.escalation_level, now)
    if declaration.public is not None and not declaration.drill:
        effects += statuspage.start_public(state, policy, declaration.public, now)
    return state, effects


def check_acknowledge(state: IncidentState, policy: Policy, c: cmd.Acknowledge) -> None:
    require_open(state, "acknowledge it")
    if state.acknowledged_at is not None:
        who = f" by <@{state.acknowledged_by}>" if state.acknowledged_by else ""
        raise CommandRefused(f"{state.label} was already acknowledged{who}")


def apply_acknowledge(
    state: IncidentState, policy: Policy, c: cmd.Acknowledge, now: datetime
) -> list[Effect]:
    check_acknowledge(state, policy, c)
    state.acknowledged_at, state.acknowledged_by = now, c.by
    effects: list[Effect] = [Page(action=PageAction.ACKNOWLEDGE)] if state.paged_at else []
    text = "Acknowledged; escalation stops."
    if state.roles.commander is None and c.by:
        # Whoever picks up an incident without a commander is its commander until handed over.
        state.roles.commander = c.by
        text = "Acknowledged and took the incident commander role; escalation stops."
        effects += [Invite(users=[c.by]), RefreshTopic()]
    effects.insert(0, post_notice(state, Notice.ACKNOWLEDGED, CHANNEL, c.by, text))
    state.note(now, "acknowledged", c.by, text)
    refresh_deadlines(state, policy, now)
    return effects


def check_set_status(state: IncidentState, policy: Policy, c: cmd.SetStatus) -> None:
    current, target = state.status, c.status
    if target is current:
        raise CommandRefused(f"{state.label} is already {current.value}")
    if current is Status.RESOLVED:
        raise CommandRefused(f"{state.label} is resolved; reopen it to go back to {target.value}")
    if target.rank < current.rank:
        raise CommandRefused(
            f"cannot move from {current.value} back to {target.value}; statuses only go "
            "forward (investigating, identified, monitoring, resolved); reopen a resolved "
            "incident instead"
        )


def apply_set_status(
    state: IncidentState, policy: Policy, c: cmd.SetStatus, now: datetime
) -> list[Effect]:
    check_set_status(state, policy, c)
    if c.status is Status.RESOLVED:
        return apply_resolve(state, policy, cmd.Resolve(by=c.by, message=c.message), now)
    previous, state.status = state.status, c.status
    state.status_entered_at[c.status] = now
    state.last_update_at, state.updates_missed = now, 0
    text = f"Status: {previous.value} → {c.status.value}"
    post = post_notice(state, Notice.STATUS_CHANGED, BOTH, c.by, c.message)
    state.note(now, "status", c.by, f"{text}. {c.message}".strip(". ") if c.message else text)
    refresh_deadlines(state, policy, now)
    return [post, RefreshTopic()]


def check_post_update(state: IncidentState, policy: Policy, c: cmd.PostUpdate) -> None:
    """Updates are welcome at any time, also after resolution (notes for the retrospective)."""


def apply_post_update(
    state: IncidentState, policy: Policy, c: cmd.PostUpdate, now: datetime
) -> list[Effect]:
    post = post_notice(state, Notice.UPDATE, BOTH if state.is_open else CHANNEL, c.by, c.message)
    state.last_update_at, state.updates_missed = now, 0
    state.note(now, "update", c.by, c.message)
    refresh_deadlines(state, policy, now)
    return [post]


def check_set_severity(state: IncidentState, policy: Policy, c: cmd.SetSeverity) -> None:
    require_open(state, "change its severity")
    try:
        policy.severity(c.severity)
    except ValueError as error:
        raise CommandRefused(str(error)) from None
    if c.severity == state.severity:
        raise CommandRefused(f"{state.label} is already {c.severity.upper()}")


def apply_set_severity(
    state: IncidentState, policy: Policy, c: cmd.SetSeverity, now: datetime
) -> list[Effect]:
    check_set_severity(state, policy, c)
    previous, state.severity = state.severity, c.severity
    text = f"Severity {previous.upper()} → {c.severity.upper()}"
    post = post_notice(state, Notice.SEVERITY_CHANGED, BOTH, c.by, c.reason)
    state.note(now, "severity", c.by, f"{text}. {c.reason}" if c.reason else text)
    refresh_deadlines(state, policy, now)
    return [post, RefreshTopic()]


def check_rename(state: IncidentState, policy: Policy, c: cmd.Rename) -> None:
    require_open(state, "rename it")
    if c.title == state.title:
        raise CommandRefused(f"{state.label} is already called '{c.title}'")


def apply_rename(
    state: IncidentState, policy: Policy, c: cmd.Rename, now: datetime
) -> list[Effect]:
    check_rename(state, policy, c)
    previous, state.title = state.title, c.title
    post = post_notice(state, Notice.RENAMED, CHANNEL, c.by, f"Was: {previous}")
    state.note(now, "renamed", c.by, f"Renamed from '{previous}' to '{c.title}'")
    return [post, RefreshTopic()]


def check_assign_role(state: IncidentState, policy: Policy, c: cmd.AssignRole) -> None:
    if state.roles.holder(c.role) == c.user:
        raise CommandRefused(
            f"<@{c.user}> is already the {c.role.display.lower()} of {state.label}"
        )


def apply_assign_role(
    state: IncidentState, policy: Policy, c: cmd.AssignRole, now: datetime
) -> list[Effect]:
    check_assign_role(state, policy, c)
    setattr(state.roles, c.role.value, c.user)
    if c.role is Role.COMMANDER and state.acknowledged_at is None:
        state.acknowledged_at, state.acknowledged_by = now, c.user
    text = f"{c.role.display}: <@{c.user}>"
    # The post carries words and mentions apart: Slack sees the words escaped, the ids live.
    post = post_notice(state, Notice.ROLE_ASSIGNED, CHANNEL, c.by, f"{c.role.display}:", [c.user])
    state.note(now, "role", c.by, text)
    refresh_deadlines(state, policy, now)
    return [Invite(users=[c.user]), post, RefreshTopic()]


def check_add_responders(state: IncidentState, policy: Policy, c: cmd.AddResponders) -> None:
    known = set(state.responders) | {state.roles.commander}
    if all(user in known for user in c.users):
        raise CommandRefused(f"all of them are already responding to {state.label}")


def apply_add_responders(
    state: IncidentState, policy: Policy, c: cmd.AddResponders, now: datetime
) -> list[Effect]:
    check_add_responders(state, policy, c)
    known = set(state.responders) | {state.roles.commander}
    new = list(dict.fromkeys(u for u in c.users if u not in known))
    state.responders += new
    text = "Responders: " + ", ".join(f"<@{u}>" for u in new)
    post = post_notice(state, Notice.RESPONDERS_ADDED, CHANNEL, c.by, "Responders:", mentions=new)
    state.note(now, "responders", c.by, text)
    return [Invite(users=new), post]


def check_resolve(state: IncidentState, policy: Policy, c: cmd.Resolve) -> None:
    if state.status is Status.RESOLVED:
        raise CommandRefused(f"{state.label} is already resolved")


def apply_resolve(
    state: IncidentState, policy: Policy, c: cmd.Resolve, now: datetime
) -> list[Effect]:
    check_resolve(state, policy, c)
    state.status, state.resolved_at = Status.RESOLVED, now
    state.status_entered_at[Status.RESOLVED] = now
    state.last_update_at = now
    retro = policy.severity(state.severity).retrospective
    state.retrospective.required = retro.required
    state.retrospective.due_at = now + retro.after if retro.required else None
    post = post_notice(state, Notice.RESOLVED, BOTH, c.by, c.message)
    state.note(now, "resolved", c.by, c.message or "Resolved")
    refresh_deadlines(state, policy, now)
    effects: list[Effect] = [post, RefreshTopic()]
    if state.paged_at:
        effects.append(Page(action=PageAction.RESOLVE))
    return effects + ([ReleaseKey()] if state.idempotency_key else [])


def check_reopen(state: IncidentState, policy: Policy, c: cmd.Reopen) -> None:
    if state.status is not Status.RESOLVED:
        raise CommandRefused(
            f"{state.label} is {state.status.value}, not resolved; only a "
            "resolved incident can be reopened"
        )
    if state.archived_at is not None:
        raise CommandRefused(f"{state.label} is archived; declare a new incident instead")


def apply_reopen(
    state: IncidentState, policy: Policy, c: cmd.Reopen, now: datetime
) -> list[Effect]:
    check_reopen(state, policy, c)
    state.status, state.resolved_at = Status.INVESTIGATING, None
    state.status_entered_at[Status.INVESTIGATING] = now
    state.last_update_at, state.updates_missed = now, 0
    state.retrospective.due_at = None
    post = post_notice(state, Notice.REOPENED, BOTH, c.by, c.reason)
    state.note(now, "reopened", c.by, c.reason or "Reopened")
    refresh_deadlines(state, policy, now)
    return [post, RefreshTopic()]

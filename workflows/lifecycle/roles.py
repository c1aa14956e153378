"""The roles an incident type fills at declaration.

A person the type names by id holds the role from the start (``declared_roles``); one named by
``oncall:<schedule>``, a user group (its first member), an @handle or an email is asked when
the incident opens (``FillRoles``, before the kickoff is posted, so the kickoff shows them),
and ``fill`` writes the answer, as escalation tiers reach whoever is on call
(``escalation.tiers.reach``). Pure, so the workflow only sequences.
"""

from __future__ import annotations

from datetime import datetime

from workflows.effects import Effect, FillRoles, Invite, RefreshTopic, UpdateKickoff
from workflows.incident_types import ONCALL
from workflows.models import Declaration, IncidentState, Role, Roles
from workflows.policy import Policy
from workflows.requests import RoleHolders, WhoHoldsRoles, WhoIsOnCall
from workflows.text import SLACK_USER_ID


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
    return [*effects, RefreshTopic(), *([UpdateKickoff()] if state.kickoff else [])]

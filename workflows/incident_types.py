"""Who the policy names for an incident: its types, and its permissions.

Incident types are the kinds of incident a policy knows (a security incident, a data leak),
each with the severities it may have, the template it starts from, who fills its roles, its
channel's name and who gets its report. Permissions (``[permissions]``) say who may declare,
acknowledge, change severity, resolve, reopen, go public, assign roles, skip a waiting
automation, and manage schedules and tokens.

Data, like the rest of the policy (``workflows.policy`` holds them under ``types`` and
``permissions``); a type naming an unknown template, severity or schedule refuses the policy
when it loads, naming the type, so nobody learns of the typo while declaring in a hurry.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from workflows.models import IncidentState, Role
from workflows.text import check_template

ONCALL = "oncall:"  # whoever is on call for the schedule: in a tier's notify or a type's role
TYPE_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"
# Who fills a role: a user (id, @handle or email), a user group (S...: its first member) or
# ``oncall:<schedule>``, as the rest of the policy names people.
ROLE_HOLDER = r"^(oncall:\S+|@\S+|[^@\s]+@[^@\s]+|[UWS][A-Z0-9]{2,20})$"
RoleHolder = Annotated[str, Field(max_length=254, pattern=ROLE_HOLDER)]


class IncidentType(BaseModel):
    """``[types.<name>]``: a declaration naming the type is completed and checked by it
    (``workflows.lifecycle.commands.complete``) and opens with its roles filled."""

    description: str = Field(default="", max_length=500)
    severities: list[str] | None = Field(default=None, min_length=1, max_length=50)  # None: all
    template: str | None = None  # fills what the declaration leaves out, unless it names one
    roles: dict[Role, RoleHolder] = Field(default_factory=dict)
    private: bool = False  # its incidents are private (see docs/contract.md)
    channel_name_template: str | None = None  # default: the policy's channel.name_template
    stakeholders: list[str] = Field(default_factory=list, max_length=100)  # emails, as severities'

    @model_validator(mode="after")
    def _known_fields(self) -> IncidentType:
        if self.channel_name_template is not None:
            check_template(self.channel_name_template, private=self.private)
        return self

    def allows(self, severity: str) -> bool:
        return self.severities is None or severity in self.severities

    def on_call_schedules(self) -> list[str]:
        """The schedules its roles name, in role order, once each."""
        named = (h.removeprefix(ONCALL) for h in self.roles.values() if h.startswith(ONCALL))
        return list(dict.fromkeys(named))


def check_types(
    types: dict[str, IncidentType],
    severities: set[str],
    templates: dict[str, str | None],
    schedules: set[str],
) -> None:
    """Every name a type uses is the policy's; ``templates`` maps each to its severity."""
    for name, kind in types.items():
        where = f"type {name!r}"
        unknown = sorted(set(kind.severities or []) - severities)
        if unknown:
            known = ", ".join(sorted(severities))
            raise ValueError(f"{where} allows unknown severities {unknown} (known: {known})")
        if kind.template is not None:
            if kind.template not in templates:
                known = ", ".join(sorted(templates)) or "none"
                raise ValueError(
                    f"{where} names unknown template {kind.template!r} (the policy has {known})"
                )
            severity = templates[kind.template]
            if severity is not None and not kind.allows(severity):
                raise ValueError(
                    f"{where}: its template {kind.template!r} is {severity}, not allowed by it"
                )
        for schedule in kind.on_call_schedules():
            if schedule not in schedules:
                known = ", ".join(sorted(schedules)) or "none"
                raise ValueError(
                    f"{where} fills a role with 'oncall:{schedule}': no such schedule "
                    f"(the policy has {known})"
                )


# Permissions: who may do what.
#
# Each permission is a list of who may: a person (user id, @handle, email), a Slack user group
# (``S...``, or the group's @handle), a role in the incident (``role:commander``,
# ``role:tech_lead``, ``role:comms_lead``, ``role:responder``: anyone on the incident) or
# anyone (``*``, the default: the product as it was before permissions).
ANYONE = "*"
ROLE = "role:"
RESPONDER = "role:responder"
GRANTEE = (
    r"^(\*|role:(commander|tech_lead|comms_lead|responder)|@\S+|[^@\s]+@[^@\s]+"
    r"|[UWS][A-Z0-9]{2,20})$"
)
Grantees = Annotated[
    list[Annotated[str, Field(max_length=254, pattern=GRANTEE)]],
    Field(min_length=1, max_length=100),
]
Action = Literal[
    "declare",
    "acknowledge",
    "severity",
    "resolve",
    "reopen",
    "public_update",
    "roles",
    "automations",
    "schedules",
    "tokens",
]
# Done where no incident is yet (or none at all): nobody holds a role there.
OUTSIDE_INCIDENTS: tuple[Action, ...] = ("declare", "schedules", "tokens")


class Permissions(BaseModel):
    """``[permissions]``: for each action, who may. Checked where the action is taken: an
    incident's commands in its workflow's Update validator (``rules.check``), the rest by the
    desk that takes them; a command nobody acts for (a service token's own) is the product's."""

    # A misspelt action would otherwise be ignored and leave it open to anyone.
    model_config = ConfigDict(extra="forbid")

    declare: Grantees = [ANYONE]
    acknowledge: Grantees = [ANYONE]
    severity: Grantees = [ANYONE]
    resolve: Grantees = [ANYONE]  # also `status resolved`, which resolves
    reopen: Grantees = [ANYONE]
    public_update: Grantees = [ANYONE]  # post to the status page
    roles: Grantees = [ANYONE]  # assign a role: else anyone could make themselves commander
    # Skip a rule's wait: the commander's call by default, as the rules are the team's own.
    automations: Grantees = ["role:commander"]
    schedules: Grantees = [ANYONE]  # on-call overrides and swaps
    tokens: Grantees = [ANYONE]  # others' personal tokens (one's own is always one's own)

    @model_validator(mode="after")
    def _roles_within_incidents(self) -> Permissions:
        for action in OUTSIDE_INCIDENTS:
            roles = [g for g in self.allowed(action) if g.startswith(ROLE)]
            if roles:
                raise ValueError(
                    f"permissions.{action} names {roles[0]!r}: roles are held in an incident, "
                    f"and {action} is done outside one"
                )
        return self

    def allowed(self, action: Action) -> list[str]:
        grantees: list[str] = getattr(self, action)
        return grantees

    def lookups(self, action: Action) -> list[str]:
        """What an entry point must ask Slack about ``action``'s grantees: people by @handle
        or email and user groups (ids match as they are, roles from the incident); none when
        anyone may."""
        allowed = self.allowed(action)
        if ANYONE in allowed:
            return []
        return [g for g in allowed if not g.startswith(ROLE) and ("@" in g or g.startswith("S"))]

    def refusal(
        self, action: Action, by: str | None, answers_to: Collection[str], holds: Collection[str]
    ) -> str | None:
        """Why ``by`` may not do ``action``, or None when they may. ``answers_to``: the
        grantees that stand for them (their @handle, email or user group), as the entry point
        found them, since the domain asks nobody; ``holds``: their roles in the incident."""
        allowed = self.allowed(action)
        if by is None or ANYONE in allowed or by in allowed:
            return None
        if set(allowed) & {*answers_to, *holds}:
            return None
        return f"{action} needs {' or '.join(allowed)} (policy [permissions] {action})"


def holds(state: IncidentState, user: str | None) -> list[str]:
    """The roles ``user`` holds in the incident, as permissions name them: a role holder is
    on the incident too (``role:responder``)."""
    if user is None:
        return []
    roles = [f"{ROLE}{role.value}" for role in Role if state.roles.holder(role) == user]
    return [*roles, RESPONDER] if roles or user in state.responders else []


def members(state: IncidentState) -> set[str]:
    """Who may read a private incident besides admins: its role holders, its responders and
    whoever declared it (they know its title). Its channel's other members are not asked: a
    person joins the channel by invitation, and the incident's invitations make responders."""
    holders = {state.roles.holder(role) for role in Role}
    return {p for p in (*holders, *state.responders, state.declared_by) if p}

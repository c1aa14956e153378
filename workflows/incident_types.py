"""Incident types: the kinds of incident a policy knows (a security incident, a data leak), each
with the severities it may have, the template it starts from, who fills its roles, its
channel's name and who gets its report.

Data, like the rest of the policy (``workflows.policy`` holds them under ``types``); a type
naming an unknown template, severity or schedule refuses the policy when it loads, naming the
type, so nobody learns of the typo while declaring in a hurry.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, model_validator

from workflows.models import Role
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
    # Stored only (state and policy): what a private incident hides is another part's work.
    private: bool = False
    channel_name_template: str | None = None  # default: the policy's channel.name_template
    stakeholders: list[str] = Field(default_factory=list, max_length=100)  # emails, as severities'

    @model_validator(mode="after")
    def _known_fields(self) -> IncidentType:
        if self.channel_name_template is not None:
            check_template(self.channel_name_template)
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

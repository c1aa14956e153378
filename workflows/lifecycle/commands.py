"""What people ask of a running incident. Each command is one workflow Update.

This is the one definition of a command for every entry point: the HTTP API takes these models
as request bodies, the CLI and the Slack app only parse text into them. Which Update carries
each, and how each entry point spells it, is one row of ``starter.command_table``.
Every command has its own input type so fields can be added later without breaking callers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field

from workflows.incident_types import IncidentType
from workflows.models import (
    MAX_COMPONENTS,
    Component,
    Declaration,
    DeclarationRequest,
    Impact,
    Role,
    Status,
    Title,
    UserId,
)
from workflows.policy import Policy
from workflows.text import Emoji, EntryPoint, RequiredText, Text


# Templates complete declarations: a common kind of incident, declared in a few words.
#
# Pure and shared by every entry point (the API, the CLI through it, Slack, the desk), so a
# request is completed and checked the same way everywhere, before any incident number is
# spent: what the request says wins, the template fills what it leaves out, and what is still
# missing or unknown is refused naming the field.
class InvalidDeclaration(ValueError):
    """A declaration that cannot be made; ``loc`` names the field (``("public", "components")``)."""

    def __init__(self, loc: tuple[str, ...], message: str, kind: str = "value_error") -> None:
        super().__init__(f"{'.'.join(loc)}: {message}")
        self.loc, self.message, self.kind = loc, message, kind


def incident_type(request: DeclarationRequest, policy: Policy) -> IncidentType | None:
    """The type the request names, if it names one."""
    if request.type is None:
        return None
    kind = policy.types.get(request.type)
    if kind is None:
        known = ", ".join(policy.types) or "none"
        raise InvalidDeclaration(("type",), f"unknown type {request.type!r}; known: {known}")
    return kind


def template_fields(request: DeclarationRequest, policy: Policy) -> dict[str, Any]:
    """What the named template (else the type's) adds: the fields the request left out (or
    sent as null) that the template has."""
    kind = incident_type(request, policy)
    name = request.template or (kind.template if kind else None)
    if not name:
        return {}
    template = policy.templates.get(name)
    if template is None:
        known = ", ".join(policy.templates) or "none"
        message = f"unknown template {name!r}; known: {known}"
        raise InvalidDeclaration(("template",), message)
    given = {f for f in request.model_fields_set if getattr(request, f) is not None}
    filled = {
        field: getattr(template, field)
        for field in type(template).model_fields
        if field not in given and getattr(template, field) not in (None, [], "")
    }
    if request.drill or request.private or (kind and kind.private):
        filled.pop("public", None)  # a drill or private one never goes on the status page
    return filled


def complete(request: DeclarationRequest, policy: Policy) -> Declaration:
    """The declaration the workflow starts from; ``InvalidDeclaration`` says what is wrong."""
    fields = {**request.model_dump(exclude_unset=True), **template_fields(request, policy)}
    for required in ("title", "severity"):
        if fields.get(required) is None:
            raise InvalidDeclaration(
                (required,),
                f"Field required: give a {required} or a template that has one",
                "missing",
            )
    try:
        policy.severity(fields["severity"])
    except ValueError as error:
        raise InvalidDeclaration(("severity",), str(error)) from None
    kind = incident_type(request, policy)
    if kind is not None and not kind.allows(fields["severity"]):
        allowed = ", ".join(kind.severities or [])
        message = f"type {request.type!r} allows {allowed}, not {fields['severity']}"
        raise InvalidDeclaration(("severity",), message)
    if kind is not None and kind.private:
        fields["private"] = True  # a type's privacy is not the declarer's to waive
    declaration = Declaration.model_validate(fields)
    public = declaration.public
    if public is not None and (declaration.drill or declaration.private):
        what = "a drill" if declaration.drill else "a private incident"
        raise InvalidDeclaration(("public",), f"{what} never goes on the status page")
    unknown = sorted(set(public.components or []) - set(policy.components)) if public else []
    if policy.components and unknown:
        known = ", ".join(sorted(policy.components))
        message = f"unknown components {', '.join(unknown)} (known: {known})"
        raise InvalidDeclaration(("public", "components"), message)
    return declaration


class Command(BaseModel):
    by: UserId | None = Field(
        default=None,
        description="Who acts: U024BE7LH, @handle or email. A personal token acts as its own "
        "person only and fills this in.",
    )
    # Set by the API from the verified token (what a client sends is replaced); None from Slack.
    via: str | None = Field(
        default=None,
        max_length=64,
        description="The API token the command came through; the API sets it.",
        json_schema_extra={"readOnly": True},
    )
    source: EntryPoint | None = Field(
        default=None,
        description="Where the command came in (api, cli, slack, alert:<source>); each entry "
        "point sets it.",
        json_schema_extra={"readOnly": True},
    )
    # Set by the desk (what a client sends is replaced): the policy's [permissions] entries
    # that stand for ``by`` by @handle, email or user group, found in Slack, so the
    # workflow's check needs no I/O (``rules.check``).
    answers_to: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="The permission entries that name `by`; the desk sets it.",
        json_schema_extra={"readOnly": True},
    )


class Acknowledge(Command):
    """Escalation stops; who acknowledges becomes commander when there is none."""


class SetStatus(Command):
    status: Status
    message: Text = Field(default="", max_length=3000)


class PostUpdate(Command):
    message: RequiredText = Field(min_length=1, max_length=3000)


class SetSeverity(Command):
    severity: str
    reason: Text = Field(default="", max_length=3000)


class Rename(Command):
    """A new title; the channel keeps its name, so links to it stay good."""

    title: Title


class AssignRole(Command):
    role: Role
    user: UserId


class AddResponders(Command):
    users: list[UserId] = Field(min_length=1, max_length=100)


class Escalate(Command):
    reason: Text = Field(default="", max_length=3000)


class Resolve(Command):
    message: Text = Field(default="", max_length=3000)


class Reopen(Command):
    reason: Text = Field(default="", max_length=3000)


class AddActionItem(Command):
    text: RequiredText = Field(min_length=1, max_length=500)
    owner: UserId | None = None
    due: AwareDatetime | None = None


ITEM = Field(default=0, ge=0, description="The item's number (the API takes it from the path).")


class CompleteActionItem(Command):
    item_id: int = ITEM


class AddTimelineEntry(Command):
    """A message from the incident's channel, kept on the timeline ("Add to timeline")."""

    text: RequiredText = Field(min_length=1, max_length=3000)
    author: UserId | None = None
    at: datetime = Field(description="When the message was posted (its Slack ts).")


class MarkMessage(Command):
    """A message in the incident's channel pinned or unpinned (``mark`` "pin"), or given or
    taken back one of the policy's timeline reactions (``mark`` the emoji's name), by ``by``:
    on the timeline while any such mark stays. Sent by Slack's events only."""

    ts: str = Field(pattern=r"^\d{1,12}\.\d{1,6}$", description="The message's Slack ts.")
    mark: Emoji  # or "pin"
    on: bool
    text: Text = Field(default="", max_length=3000)
    author: UserId | None = None


class JoinChannel(Command):
    """``by`` joined the incident's channel: a responder from now on. Sent by Slack's events."""


class CompleteRetrospective(Command):
    document_url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://\S+$")


class AssignActionItem(Command):
    item_id: int = ITEM
    owner: UserId


class SetActionItemDue(Command):
    item_id: int = ITEM
    due: AwareDatetime


class DropActionItem(Command):
    item_id: int = ITEM
    reason: Text = Field(default="", max_length=500)


class SkipAutomation(Command):
    """One of the policy's rules waiting for its ``after`` is called off: it will not run."""

    wait: int = Field(ge=1, le=10**9, description="The waiting rule's number, as listed.")


class PostPublicUpdate(Command):
    """Tell the public: the incident goes on the status page with this update."""

    message: RequiredText = Field(min_length=1, max_length=3000)
    status: Status | None = Field(default=None, description="Default: the incident's status.")
    components: list[Component] | None = Field(
        default=None, max_length=MAX_COMPONENTS, description="Default: the incident's."
    )
    impact: Impact | None = Field(default=None, description="Default: the incident's impact.")

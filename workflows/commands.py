"""What people ask of a running incident. Each command is one workflow Update.

This is the one definition of a command for every entry point: the HTTP API takes these models
as request bodies, the CLI and the Slack app only parse text into them, and the desk sends each
to the Update its ``update`` names. Adding a command is one model here and one Update handler.
Every command has its own input type so fields can be added later without breaking callers.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import AwareDatetime, BaseModel, Field

from workflows.models import MAX_COMPONENTS, Component, Impact, Role, Status, UserId
from workflows.text import RequiredText, Text


class Command(BaseModel):
    # The IncidentWorkflow Update that carries this command, by name (the workflow module
    # imports this one, so a name, not the method).
    update: ClassVar[str] = ""

    by: UserId | None = Field(default=None, description="Who acts: U024BE7LH, @handle or email.")


class Acknowledge(Command):
    update = "acknowledge"


class SetStatus(Command):
    update = "set_status"
    status: Status
    message: Text = Field(default="", max_length=3000)


class PostUpdate(Command):
    update = "post_update"
    message: RequiredText = Field(min_length=1, max_length=3000)


class SetSeverity(Command):
    update = "set_severity"
    severity: str
    reason: Text = Field(default="", max_length=3000)


class AssignRole(Command):
    update = "assign_role"
    role: Role
    user: UserId


class AddResponders(Command):
    update = "add_responders"
    users: list[UserId] = Field(min_length=1, max_length=100)


class Escalate(Command):
    update = "escalate"
    reason: Text = Field(default="", max_length=3000)


class Resolve(Command):
    update = "resolve"
    message: Text = Field(default="", max_length=3000)


class Reopen(Command):
    update = "reopen"
    reason: Text = Field(default="", max_length=3000)


class AddActionItem(Command):
    update = "add_action_item"
    text: RequiredText = Field(min_length=1, max_length=500)
    owner: UserId | None = None
    due: AwareDatetime | None = None


class CompleteActionItem(Command):
    update = "complete_action_item"
    item_id: int


class AddTimelineEntry(Command):
    """A message from the incident's channel, kept on the timeline ("Add to timeline")."""

    update = "add_timeline_entry"
    text: RequiredText = Field(min_length=1, max_length=3000)
    author: UserId | None = None
    at: datetime = Field(description="When the message was posted (its Slack ts).")


ITEM = Field(default=0, ge=0, description="The item's number (the API takes it from the path).")


class CompleteRetrospective(Command):
    update = "complete_retrospective"
    document_url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://\S+$")


class AssignActionItem(Command):
    update = "assign_action_item"
    item_id: int = ITEM
    owner: UserId


class SetActionItemDue(Command):
    update = "set_action_item_due"
    item_id: int = ITEM
    due: AwareDatetime


class DropActionItem(Command):
    update = "drop_action_item"
    item_id: int = ITEM
    reason: Text = Field(default="", max_length=500)


class PostPublicUpdate(Command):
    """Tell the public: the incident goes on the status page with this update."""

    update = "post_public_update"
    message: RequiredText = Field(min_length=1, max_length=3000)
    status: Status | None = Field(default=None, description="Default: the incident's status.")
    components: list[Component] | None = Field(
        default=None, max_length=MAX_COMPONENTS, description="Default: the incident's."
    )
    impact: Impact | None = Field(default=None, description="Default: the incident's impact.")

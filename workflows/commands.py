"""What people ask of a running incident. Each command is one workflow Update.

This is the one definition of a command for every entry point: the HTTP API takes these models
as request bodies, the CLI and the Slack app only parse text into them. Which Update carries
each, and how each entry point spells it, is one row of ``starter.command_table``.
Every command has its own input type so fields can be added later without breaking callers.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, Field

from workflows.models import MAX_COMPONENTS, Component, Impact, Role, Status, UserId
from workflows.text import RequiredText, Text


class Command(BaseModel):
    by: UserId | None = Field(default=None, description="Who acts: U024BE7LH, @handle or email.")


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


class PostPublicUpdate(Command):
    """Tell the public: the incident goes on the status page with this update."""

    message: RequiredText = Field(min_length=1, max_length=3000)
    status: Status | None = Field(default=None, description="Default: the incident's status.")
    components: list[Component] | None = Field(
        default=None, max_length=MAX_COMPONENTS, description="Default: the incident's."
    )
    impact: Impact | None = Field(default=None, description="Default: the incident's impact.")

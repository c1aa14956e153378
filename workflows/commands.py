"""What people ask of a running incident. Each command is one workflow Update.

Every command has its own input type so fields can be added later without breaking callers.
"""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, Field

from workflows.models import Role, Status, UserId


class Command(BaseModel):
    by: UserId | None = None


class Acknowledge(Command):
    pass


class SetStatus(Command):
    status: Status
    message: str = Field(default="", max_length=3000)


class PostUpdate(Command):
    message: str = Field(min_length=1, max_length=3000)


class SetSeverity(Command):
    severity: str
    reason: str = Field(default="", max_length=3000)


class AssignRole(Command):
    role: Role
    user: UserId


class AddResponders(Command):
    users: list[UserId] = Field(min_length=1, max_length=100)


class Escalate(Command):
    reason: str = Field(default="", max_length=3000)


class Resolve(Command):
    message: str = Field(default="", max_length=3000)


class Reopen(Command):
    reason: str = Field(default="", max_length=3000)


class AddActionItem(Command):
    text: str = Field(min_length=1, max_length=500)
    owner: UserId | None = None
    due: AwareDatetime | None = None


class CompleteActionItem(Command):
    item_id: int


class CompleteRetrospective(Command):
    document_url: str | None = Field(default=None, max_length=2000)


class AssignActionItem(Command):
    item_id: int
    owner: UserId


class SetActionItemDue(Command):
    item_id: int
    due: AwareDatetime


class DropActionItem(Command):
    item_id: int
    reason: str = Field(default="", max_length=500)

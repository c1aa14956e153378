"""People by name: every entry point turns what a person typed into a Slack user id, once.

``U024BE7LH``, ``<@U024BE7LH>``, ``@bob``, ``bob`` and ``bob@example.com`` all name Bob. The
directory asks Slack (users.lookupByEmail, users.list paged and kept briefly), so the workflow
only ever sees ids; an unknown person is refused at the door, naming what was given.
"""

from __future__ import annotations

from typing import Annotated, Any, get_args, get_origin

from pydantic import AliasChoices, BaseModel

from clients.slack_people import SlackPeople, UnknownPerson
from workflows.text import slack_user_id


def person_fields(model: type[BaseModel]) -> list[str]:
    """The keys of a command (or declaration) that name people, found by their type."""
    keys: list[str] = []
    for name, field in model.model_fields.items():
        if _names_people(field.annotation) or any(_is_user_id(m) for m in field.metadata):
            keys.append(name)
            if isinstance(field.validation_alias, AliasChoices):
                keys.extend(c for c in field.validation_alias.choices if isinstance(c, str))
    return list(dict.fromkeys(keys))


def _is_user_id(metadata: object) -> bool:
    return getattr(metadata, "func", None) is slack_user_id


def _names_people(annotation: object) -> bool:
    if get_origin(annotation) is Annotated:
        return any(_is_user_id(m) for m in get_args(annotation)[1:])
    return any(_names_people(arg) for arg in get_args(annotation))


async def resolve_fields(
    people: SlackPeople, model: type[BaseModel], data: dict[str, Any]
) -> dict[str, Any]:
    """``data`` with every person in ``model``'s people fields given as a user id."""
    resolved = dict(data)
    for field in person_fields(model):
        value = data.get(field)
        try:
            if isinstance(value, str):
                resolved[field] = await people.resolve(value)
            elif isinstance(value, list) and all(isinstance(v, str) for v in value):
                resolved[field] = [await people.resolve(v) for v in value]
        except UnknownPerson as error:
            error.field = field
            raise
    return resolved

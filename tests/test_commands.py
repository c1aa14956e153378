"""The one definition of a command: each has a row whose Update really takes it."""

from __future__ import annotations

import inspect

import pytest
from temporalio import workflow

from starter.command_table import BY_MODEL
from starter.command_words import person_fields
from workflows.incident import IncidentWorkflow
from workflows.lifecycle import commands as cmd
from workflows.models import Declaration

COMMANDS = [c for _, c in inspect.getmembers(cmd, inspect.isclass) if issubclass(c, cmd.Command)]


@pytest.mark.parametrize("command", [c for c in COMMANDS if c is not cmd.Command])
def test_every_command_names_an_update_of_the_incident_workflow_taking_it(command):
    updates = workflow._Definition.must_from_class(IncidentWorkflow).updates
    name = BY_MODEL[command].name
    assert name in updates
    handler = updates[name].fn
    parameter = list(inspect.signature(handler).parameters.values())[1]
    assert parameter.annotation in (command, f"cmd.{command.__name__}")


def test_people_fields_are_found_by_their_type():
    assert person_fields(cmd.AssignRole) == ["by", "user"]
    assert person_fields(cmd.AddResponders) == ["by", "users"]
    assert person_fields(cmd.Resolve) == ["by"]
    assert person_fields(Declaration) == ["commander", "responders", "declared_by", "by"]

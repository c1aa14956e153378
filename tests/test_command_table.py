"""The command table reaches everywhere: every row is an API route the OpenAPI lists, a CLI
sub-command, a Slack sub-command whose example parses into its model, and a line of the docs;
every Update of the incident workflow that takes a command has its row."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, get_type_hints

import pytest
import typer.core
import typer.main
from temporalio import workflow

from config import Settings
from starter.api.app import create_app
from starter.cli import app as cli_app
from starter.command_table import COMMANDS, HEARD, CommandRow
from starter.slack.commands import USAGE, parse
from workflows.incident import IncidentWorkflow
from workflows.lifecycle import commands as cmd

ROWS = pytest.mark.parametrize("row", COMMANDS, ids=[row.verb for row in COMMANDS])
CONTRACT = (Path(__file__).resolve().parents[1] / "docs" / "contract.md").read_text()


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    document: dict[str, Any] = create_app(Settings(api_tokens="t")).openapi()
    return document


@ROWS
def test_every_row_is_a_route_the_openapi_lists_with_its_model_as_the_body(row, openapi):
    operation = openapi["paths"][f"/incidents/{{incident_id}}/{row.path}"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"] == f"#/components/schemas/{row.model.__name__}"
    assert {"200", "401", "404", "409", "422"} <= set(operation["responses"])
    assert operation["operationId"].startswith(f"{row.name}_")


def sub_command(group: typer.core.TyperGroup, words: list[str]) -> Any:
    found: Any = group
    for word in words:
        assert isinstance(found, typer.core.TyperGroup), words
        found = found.commands[word]
    return found


@ROWS
def test_every_row_and_alias_is_a_cli_sub_command_taking_the_incident_first(row):
    cli = typer.main.get_command(cli_app)
    assert isinstance(cli, typer.core.TyperGroup)
    for verb in (row.verb, *row.aliases):
        command = sub_command(cli, verb.split())
        first = command.params[0]
        assert isinstance(first, typer.core.TyperArgument) and first.name == "incident_id"


@ROWS
def test_every_row_parses_its_example_in_slack_into_its_model(row):
    here = parse(f"{row.verb} {row.example}", True, ["sev1", "sev2", "sev3"])
    assert here.model is row.model and here.incident is None
    row.model.model_validate({**here.fields, "by": "U0ALICE01"})
    elsewhere = parse(f"{row.verb} INC-42 {row.example}", False, ["sev1"])
    assert (elsewhere.model, elsewhere.incident) == (row.model, "incident-42")
    for alias in row.aliases:
        assert parse(f"{alias} {row.example}", True, ["sev1"]).model is row.model
    assert f"`{row.usage}`" in USAGE


@ROWS
def test_the_contract_names_every_row_in_the_api_slack_and_the_cli(row):
    path = row.path.replace("{item_id}", "{n}")
    assert f"`POST /incidents/{{id}}/{path}`" in CONTRACT
    in_table = row.usage.replace("|", "\\|")  # a bar inside a Markdown table is escaped
    assert f"`{in_table}`" in CONTRACT
    assert f"`{row.verb} ID" in CONTRACT
    for alias in row.aliases:
        assert f"`{alias}`" in CONTRACT


def commands_taken() -> dict[str, type[cmd.Command]]:
    """Every Update of the incident workflow whose argument is a command, by Update name."""
    taken = {}
    for name, update in workflow._Definition.must_from_class(IncidentWorkflow).updates.items():
        parameters = list(inspect.signature(update.fn).parameters)[1:]
        hints = get_type_hints(update.fn)
        kinds = [hints.get(p) for p in parameters]
        if kinds and isinstance(kinds[0], type) and issubclass(kinds[0], cmd.Command):
            assert name is not None
            taken[name] = kinds[0]
    return taken


def test_every_update_taking_a_command_has_its_row_and_every_row_its_update():
    rows: dict[str, CommandRow[Any]] = {row.name: row for row in (*COMMANDS, *HEARD)}
    taken = commands_taken()
    assert set(taken) == set(rows)
    for name, model in taken.items():
        assert rows[name].model is model
        assert getattr(IncidentWorkflow, name)._defn.name == name, "called by the name it has"
    verbs = [spelling for row in COMMANDS for spelling in (row.verb, *row.aliases)]
    assert len(verbs) == len(set(verbs)), "one spelling names one command"

"""incident public / incident maintenance: the status page from the command line."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import typer

from starter.cli_api import Api, IncidentArg, JsonFlag, Words, command, out, print_json
from workflows.models import Impact, Status


def public(
    incident_id: IncidentArg,
    message: Words,
    status: Annotated[
        Status | None, typer.Option(help="The public status; default: the incident's.")
    ] = None,
    impact: Annotated[
        Impact | None, typer.Option(help="The public impact; default: the incident's.")
    ] = None,
    component: Annotated[
        list[str] | None,
        typer.Option(help="A component it touches (repeat); default: the incident's."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Post a public update: the incident goes on the status page, subscribers hear of it."""
    body: dict[str, Any] = {"message": message}
    if status:
        body["status"] = status.value
    if impact:
        body["impact"] = impact.value
    if component:
        body["components"] = component
    command(incident_id, "public", body, as_json)


def maintenance(
    name: Annotated[str, typer.Argument(metavar="COMPONENT")],
    off: Annotated[bool, typer.Option("--off", help="Take it out of maintenance.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Put a component of the status page under maintenance (or out of it with --off)."""
    path = "/status/components/" + quote(name, safe="")
    _, answer = Api().call("PUT", path, {"maintenance": not off})
    if as_json:
        print_json(answer)
        return
    out.print(f"{name}: {'under maintenance' if answer['maintenance'] else 'out of maintenance'}")


def register(app: typer.Typer) -> None:
    app.command()(public)
    app.command()(maintenance)

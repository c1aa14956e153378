"""incident maintenance: the status page's components from the command line.

(`incident public` is a row of the command table, generated in ``starter.cli_commands``.)
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import typer

from starter.cli_client import Api, JsonFlag, out, print_json


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
    app.command()(maintenance)

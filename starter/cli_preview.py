"""incident preview: what the policy would do to an incident, declaring nothing."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from starter.cli_client import Api, JsonFlag, out, print_json


def _offset(seconds: float) -> str:
    """``+1h15m`` for 4500 seconds after declaration."""
    left, parts = int(seconds), []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        amount, left = divmod(left, size)
        if amount:
            parts.append(f"{amount}{unit}")
    if left or not parts:
        parts.append(f"{left}s")
    return "+" + "".join(parts)


def preview(
    severity: Annotated[str, typer.Option(help="The severity to preview, like sev1.")],
    ack_after: Annotated[
        str | None, typer.Option(help="Acknowledged after (15m); never if unset.")
    ] = None,
    updates_every: Annotated[
        str | None, typer.Option(help="Someone posts an update this often.")
    ] = None,
    resolve_after: Annotated[
        str | None, typer.Option(help="Resolved after (2h); never if unset.")
    ] = None,
    horizon: Annotated[str, typer.Option(help="How far ahead to look.")] = "1d",
    as_json: JsonFlag = False,
) -> None:
    """What the policy would do to an incident, declaring nothing: the same deadline functions
    the incident workflow runs, on a simulated clock."""
    params = {
        "severity": severity,
        "ack_after": ack_after,
        "updates_every": updates_every,
        "resolve_after": resolve_after,
        "horizon": horizon,
    }
    _, answer = Api().call("GET", "/policy/preview", params=params)
    if as_json:
        print_json(answer)
        return
    table = Table("after", "what", "where", "who", "text", box=None, pad_edge=False)
    for step in answer["steps"]:
        who = ", ".join(step["who"])
        where = ", ".join(step["where"])
        table.add_row(_offset(step["after"]), step["what"], where, who, step["text"][:60])
    out.print(table)


def register(app: typer.Typer) -> None:
    app.command()(preview)

"""incident report | stats: what the incident CLI reads after resolution.

The commands after resolution (retro done, action add/assign/due/done/drop) are rows of the
command table, generated in ``starter.cli_commands``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import typer
from rich.table import Table

from starter.cli_client import (
    Api,
    IncidentArg,
    JsonFlag,
    incident_path,
    out,
    print_json,
)
from workflows.resolution.report import duration


def report(incident_id: IncidentArg) -> None:
    """Print the situation report (Markdown) written when the incident was resolved."""
    response = Api().answer("GET", f"{incident_path(incident_id)}/report")
    typer.echo(response.text, nl=False)


def stats(
    since: Annotated[str | None, typer.Option("--since", help="ISO timestamp with a zone.")] = None,
    severity: Annotated[str | None, typer.Option("--severity", "-s")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Incident figures from the archive: MTTA, MTTR, counts, recurring components, workload."""
    _, figures = Api().call(
        "GET", "/metrics/incidents", params={"since": since, "severity": severity}
    )
    if as_json:
        print_json(figures)
        return
    table = Table("figure", "value", show_header=False)
    table.add_row("Incidents", f"{figures['incidents']} ({figures['open']} open)")
    table.add_row("MTTA", _seconds(figures["mtta_seconds"]))
    table.add_row("MTTR", _seconds(figures["mttr_seconds"]))
    table.add_row("By severity", _counts(figures["by_severity"]))
    table.add_row("Escalations", str(figures["escalations"]))
    table.add_row("Missed updates", str(figures["missed_updates"]))
    table.add_row("Recurring components", _counts(figures["recurring_components"]))
    table.add_row("Workload", _counts(figures["workload"]))
    out.print(table)


def _seconds(value: float | None) -> str:
    return duration(timedelta(seconds=value) if value is not None else None)


def _counts(counts: dict[str, Any]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counts.items()) or "-"


def register(app: typer.Typer) -> None:
    app.command()(report)
    app.command()(stats)

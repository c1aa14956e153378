"""incident report | retro done | action add/assign/due/done/drop | stats.

The after-resolution commands of the ``incident`` CLI, registered on its app by starter/cli.py.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import httpx
import typer
from rich.table import Table

from starter.cli_api import (
    TIMEOUT,
    Api,
    IncidentArg,
    JsonFlag,
    Words,
    command,
    fail,
    incident_path,
    out,
    print_json,
)
from workflows.report import duration

ItemArg = Annotated[int, typer.Argument(metavar="N", help="The action item's number.")]
retro = typer.Typer(help="The retrospective of a resolved incident.", no_args_is_help=True)
action = typer.Typer(help="Action items: add, assign, due, done, drop.", no_args_is_help=True)


def report(incident_id: IncidentArg) -> None:
    """Print the situation report (Markdown) written when the incident was resolved."""
    api = Api()
    headers = {"Authorization": f"Bearer {api.token}"} if api.token else {}
    try:
        response = httpx.get(
            f"{api.url}{incident_path(incident_id)}/report", headers=headers, timeout=TIMEOUT
        )
    except httpx.HTTPError as error:
        fail(f"talking to the incident API at {api.url} failed: {error}")
    if response.is_error:
        fail(api.explain(response))
    typer.echo(response.text, nl=False)


@retro.command("done")
def retro_done(
    incident_id: IncidentArg,
    url: Annotated[str | None, typer.Option("--url", help="Where the write-up lives.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Mark the retrospective done: its reminders stop."""
    command(incident_id, "retrospective/complete", {"document_url": url}, as_json)


@action.command("add")
def action_add(
    incident_id: IncidentArg,
    text: Words,
    owner: Annotated[str | None, typer.Option("--owner", help="Slack user id.")] = None,
    due: Annotated[str | None, typer.Option("--due", help="ISO timestamp with a zone.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Add an action item."""
    command(incident_id, "action-items", {"text": text, "owner": owner, "due": due}, as_json)


@action.command("assign")
def action_assign(
    incident_id: IncidentArg, item: ItemArg, owner: Words, as_json: JsonFlag = False
) -> None:
    """Give an action item an owner (a Slack user id)."""
    command(incident_id, f"action-items/{item}/assign", {"owner": owner}, as_json)


@action.command("due")
def action_due(
    incident_id: IncidentArg, item: ItemArg, due: Words, as_json: JsonFlag = False
) -> None:
    """Set when an action item is due (ISO timestamp with a zone, like 2026-12-01T09:00Z)."""
    command(incident_id, f"action-items/{item}/due", {"due": due}, as_json)


@action.command("done")
def action_done(incident_id: IncidentArg, item: ItemArg, as_json: JsonFlag = False) -> None:
    """Mark an action item done."""
    command(incident_id, f"action-items/{item}/complete", {}, as_json)


@action.command("drop")
def action_drop(
    incident_id: IncidentArg, item: ItemArg, reason: Words = "", as_json: JsonFlag = False
) -> None:
    """Drop an action item nobody will do."""
    command(incident_id, f"action-items/{item}/drop", {"reason": reason}, as_json)


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
    app.add_typer(retro, name="retro")
    app.add_typer(action, name="action")

"""incident: the command line for people, on top of the HTTP API (never Temporal directly),
and for operators, ``incident db upgrade``.

Configured from the environment and ``incident login`` (see ``starter.cli_client``,
``starter.cli_commands``). People are given as Slack user ids, @handles, bare handles (bob) or
emails; the API resolves them. The commands on one incident are generated from the command
table (``starter.cli_commands``) and what it reads besides incidents is in
``starter.cli_reports``; declaring, listing, showing, the database and the status page's
maintenance are here (``incident public`` is a row of the command table).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import typer
from rich.table import Table
from rich.text import Text

from starter import cli_commands, cli_reports
from starter.cli_client import (
    STATUS_STYLE,
    Api,
    IncidentArg,
    JsonFlag,
    channel,
    details,
    fail,
    headline,
    incident_path,
    out,
    print_json,
    severity_text,
    when,
)
from workflows.models import Status
from workflows.text import incident_label

app = typer.Typer(
    help="Declare and drive incidents through the incident API.",
    epilog="Environment: INCIDENT_API_URL, INCIDENT_API_TOKEN, INCIDENT_USER (you: id or handle); "
    "or `incident login` once.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def declare(
    title: Annotated[
        str | None,
        typer.Argument(
            help="What is wrong, in a few words (optional with a --template that has one)."
        ),
    ] = None,
    severity: Annotated[
        str | None,
        typer.Option(
            "--severity",
            "-s",
            help="A severity of the policy (optional with a --template with one)",
        ),
    ] = None,
    summary: Annotated[str | None, typer.Option(help="What we know so far.")] = None,
    impact: Annotated[str | None, typer.Option(help="none, minor, major, critical")] = None,
    component: Annotated[list[str] | None, typer.Option(help="Affected component.")] = None,
    commander: Annotated[str | None, typer.Option(help="Slack user id, @handle or email.")] = None,
    responder: Annotated[list[str] | None, typer.Option(help="Someone to invite.")] = None,
    template: Annotated[
        str | None, typer.Option(help="A policy template: it fills what you leave out.")
    ] = None,
    kind: Annotated[
        str | None,
        typer.Option("--type", help="A type of the policy: its template, roles, severities."),
    ] = None,
    key: Annotated[
        str | None, typer.Option(help="Idempotency key: same key, same incident.")
    ] = None,
    drill: Annotated[
        bool, typer.Option("--drill", help="A practice run: marked, faster clock, no pages.")
    ] = False,
    private: Annotated[
        bool, typer.Option("--private", help="A private channel; shown to its members only.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Declare an incident: a channel is opened and the incident announced."""
    given = {
        "title": title,
        "severity": severity,
        "summary": summary,
        "impact": impact,
        "components": component,
        "commander": commander,
        "responders": responder,
        "template": template,
        "type": kind,
        "idempotency_key": key,
        "drill": drill,
        "private": private,
    }
    # Only what was given is sent, so a template fills the rest.
    body = {k: v for k, v in given.items() if v}
    # wait: the answer comes once the channel exists (202 if no worker made it in time).
    api = Api()
    api.acting()
    code, incident = api.call("POST", "/incidents", body, params={"wait": "true"})
    if as_json:
        print_json(incident)
        return
    verb = {201: "Declared", 202: "Declared (its channel is still to come)"}.get(
        code, f"Already open with key {key!r}:"
    )
    out.print(Text.assemble(f"{verb} ", headline(incident)))
    details(incident)


@app.command("list")
def list_incidents(
    status: Annotated[Status | None, typer.Option(help="Only this status.")] = None,
    severity: Annotated[str | None, typer.Option(help="Only this severity.")] = None,
    open_: Annotated[
        bool | None,
        typer.Option("--open/--all", help="Open incidents (the default without --status), or all."),
    ] = None,
    commander: Annotated[str | None, typer.Option(help="Only this commander.")] = None,
    text: Annotated[str | None, typer.Option(help="Only titles with these words.")] = None,
    kind: Annotated[str | None, typer.Option("--type", help="Only this incident type.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    as_json: JsonFlag = False,
) -> None:
    """List incidents, newest first."""
    if open_ is None and status is None:
        open_ = True
    only_open = None if open_ is False else open_  # --all means no filter, not "resolved only"
    params = {
        "status": status and status.value,
        "severity": severity,
        "open": _flag(only_open),
        "commander": commander,
        "text": text,
        "type": kind,
        "page_size": limit,
    }
    _, found = Api().call("GET", "/incidents", params=params)
    if as_json:
        print_json(found)
        return
    incidents = found["incidents"]
    if not incidents:
        out.print("No incidents.")
        return
    table = Table("Incident", "Sev", "Status", "Title", "Commander", "Channel", "Declared")
    for incident in incidents:
        table.add_row(
            incident_label(incident["number"]),
            severity_text(incident["severity"]),
            Text(incident["status"], STATUS_STYLE.get(incident["status"], "green")),
            Text(incident["title"]),
            incident["roles"]["commander"] or "-",
            channel(incident),
            when(incident["declared_at"]),
        )
    out.print(table)


def _flag(value: bool | None) -> str | None:
    return None if value is None else str(value).lower()


@app.command()
def show(incident_id: IncidentArg, as_json: JsonFlag = False) -> None:
    """One incident: who, where, and its timeline."""
    _, incident = Api().call("GET", incident_path(incident_id))
    if as_json:
        print_json(incident)
        return
    out.print(headline(incident))
    details(incident)
    out.print()
    timeline = Table("At", "What", "Who", "", box=None, title="Timeline", title_justify="left")
    for entry in incident["timeline"]:
        timeline.add_row(
            when(entry["at"]),
            entry["kind"],
            entry["actor"] or entry.get("via") or "",  # nobody named: the token that acted
            Text(entry["text"]),
        )
    out.print(timeline)
    for item in incident["action_items"]:
        done = "x" if item["done_at"] else " "
        owner = f" ({item['owner']})" if item["owner"] else ""
        out.print(Text(f"[{done}] #{item['id']} {item['text']}{owner}"))


cli_commands.register(app, {"automations": cli_reports.automations})


db = typer.Typer(
    help="The incident database: the archive and the status page's tables.", no_args_is_help=True
)
app.add_typer(db, name="db")


@db.command("upgrade")
def db_upgrade() -> None:
    """Bring the database (INCIDENT_DATABASE_URL) to this build's schema. Idempotent; run it
    before the worker and the API start, which refuse a database that is behind."""
    # Imported here: the database layer is for operators, not for every incident command.
    from pydantic import ValidationError
    from sqlalchemy.exc import SQLAlchemyError

    from clients.archive import IncidentArchive
    from config import ConfigError, Settings

    try:
        revision = IncidentArchive(Settings().database_url.get_secret_value()).upgrade()
    except (ConfigError, ValidationError, SQLAlchemyError) as error:
        fail(f"the database upgrade failed: {error}")
    out.print(f"incident database at revision {revision}")


cli_reports.register(app)


@app.command()
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


if __name__ == "__main__":
    app()

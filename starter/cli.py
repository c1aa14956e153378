"""incident: the command line for people, on top of the HTTP API (never Temporal directly).

Configured from the environment: INCIDENT_API_URL (default http://127.0.0.1:8000),
INCIDENT_API_TOKEN (or the first of INCIDENT_API_TOKENS), INCIDENT_USER (you, recorded as who
acted). People are given as Slack user ids, @handles, bare handles (bob) or emails; the API
resolves them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, NoReturn
from urllib.parse import quote

import httpx
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from config import CliSettings
from workflows.models import Role, Status

# Declaring waits until the incident's Slack channel exists, which can take a few seconds.
TIMEOUT = httpx.Timeout(60.0, connect=5.0)
SEVERITY_STYLE = {"sev1": "bold red", "sev2": "yellow", "sev3": "cyan"}
STATUS_STYLE = {"investigating": "red", "identified": "yellow", "monitoring": "blue"}

app = typer.Typer(
    help="Declare and drive incidents through the incident API.",
    epilog="Environment: INCIDENT_API_URL, INCIDENT_API_TOKEN, INCIDENT_USER (you: id or handle).",
    no_args_is_help=True,
    add_completion=False,
)
# soft_wrap: ids and URLs must stay whole, whatever the terminal width.
out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)

Incident = dict[str, Any]
Words = Annotated[str, typer.Argument(show_default=False)]
IncidentArg = Annotated[str, typer.Argument(metavar="ID", help="INC-42, incident-42 or 42")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print the API's JSON answer as it is.")]


def fail(message: str) -> NoReturn:
    err.print(Text(message, style="red"))
    raise typer.Exit(1)


class Api:
    def __init__(self) -> None:
        settings = CliSettings()
        self.url = settings.api_url.rstrip("/")
        self.token = settings.bearer_token()
        self.user = settings.user or None

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> tuple[int, Any]:
        if body is not None and self.user:
            body.setdefault("by", self.user)
        query = {k: v for k, v in (params or {}).items() if v is not None}
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            response = httpx.request(
                method, self.url + path, json=body, params=query, headers=headers, timeout=TIMEOUT
            )
        except httpx.ConnectError as error:
            fail(
                f"cannot reach the incident API at {self.url} ({error}). Is it running? `make run` "
                "starts the whole stack; set INCIDENT_API_URL if the API is elsewhere."
            )
        except httpx.TimeoutException:
            fail(f"the incident API at {self.url} did not answer in time")
        except httpx.HTTPError as error:
            fail(f"talking to the incident API at {self.url} failed: {error}")
        if response.is_error:
            fail(self.explain(response))
        return response.status_code, response.json()

    def explain(self, response: httpx.Response) -> str:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text or response.reason_phrase
        if isinstance(detail, list):  # validation errors name the field: "severity: unknown..."
            detail = "; ".join(_field_error(e) for e in detail)
        detail = str(detail)
        if response.status_code == 401:
            detail += " (set INCIDENT_API_TOKEN to one of the API's INCIDENT_API_TOKENS)"
        return detail


def _field_error(error: dict[str, Any]) -> str:
    field = ".".join(str(part) for part in error.get("loc", [])[1:])
    # pydantic prefixes custom validator messages with "Value error, "; people need only the rest.
    message = str(error.get("msg", "")).removeprefix("Value error, ")
    return f"{field}: {message}" if field else message


def command(incident_id: str, action: str, body: dict[str, Any], as_json: bool) -> None:
    """Send one command and show what the incident says now."""
    _, incident = Api().call("POST", f"{incident_path(incident_id)}/{action}", body)
    if as_json:
        print_json(incident)
        return
    out.print(headline(incident))
    if incident["timeline"]:
        out.print(Text("  " + incident["timeline"][-1]["text"]))


def incident_path(incident_id: str) -> str:
    # Quoted whole: what people type must name an incident, never another route.
    return "/incidents/" + quote(incident_id, safe="")


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2))


def headline(incident: Incident) -> Text:
    """`INC-42 SEV1 investigating — Checkout failing`"""
    severity, status = incident["severity"], incident["status"]
    return Text.assemble(
        ("DRILL ", "bold yellow") if incident.get("drill") else "",
        (f"INC-{incident['number']}", "bold"),
        " ",
        (severity.upper(), SEVERITY_STYLE.get(severity, "")),
        " ",
        (status, STATUS_STYLE.get(status, "green")),
        f" — {incident['title']}",
    )


def when(value: str | None) -> str:
    if not value:
        return "-"
    return datetime.fromisoformat(value).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def channel(incident: Incident) -> str:
    found = incident.get("channel")
    return f"#{found['name']}" if found else "-"


def details(incident: Incident) -> None:
    roles, place = incident["roles"], incident["channel"]
    rows = [
        ("Channel", channel(incident) + (f" ({place['id']})" if place else "")),
        ("Summary", incident["summary"]),
        ("Components", ", ".join(incident["components"])),
        ("Commander", roles["commander"] or "nobody yet"),
        ("Tech lead", roles["tech_lead"]),
        ("Comms lead", roles["comms_lead"]),
        ("Responders", ", ".join(incident["responders"])),
        ("Declared", when(incident["declared_at"])),
        ("Acknowledged", incident["acknowledged_at"] and when(incident["acknowledged_at"])),
        ("Next update", incident["next_update_due"] and when(incident["next_update_due"])),
        ("Resolved", incident["resolved_at"] and when(incident["resolved_at"])),
        ("Temporal UI", incident["url"]),
    ]
    for label, value in rows:
        if value:
            out.print(Text.assemble((f"{label + ':':<14}", "dim"), str(value)))


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
            "--severity", "-s", help="sev1, sev2, sev3... (optional with a --template that has one)"
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
    key: Annotated[
        str | None, typer.Option(help="Idempotency key: same key, same incident.")
    ] = None,
    drill: Annotated[
        bool, typer.Option("--drill", help="A practice run: marked, faster clock, no pages.")
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
        "idempotency_key": key,
        "drill": drill,
    }
    # Only what was given is sent, so a template fills the rest.
    body = {k: v for k, v in given.items() if v}
    # wait: the answer comes once the channel exists (202 if no worker made it in time).
    code, incident = Api().call("POST", "/incidents", body, params={"wait": "true"})
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
            f"INC-{incident['number']}",
            Text(incident["severity"].upper(), SEVERITY_STYLE.get(incident["severity"], "")),
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
            when(entry["at"]), entry["kind"], entry["actor"] or "", Text(entry["text"])
        )
    out.print(timeline)
    for item in incident["action_items"]:
        done = "x" if item["done_at"] else " "
        owner = f" ({item['owner']})" if item["owner"] else ""
        out.print(Text(f"[{done}] #{item['id']} {item['text']}{owner}"))


@app.command()
def ack(incident_id: IncidentArg, as_json: JsonFlag = False) -> None:
    """Acknowledge: escalation stops (and you become commander if there is none)."""
    command(incident_id, "acknowledge", {}, as_json)


@app.command()
def status(
    incident_id: IncidentArg,
    new_status: Annotated[Status, typer.Argument(metavar="STATUS")],
    message: Words = "",
    as_json: JsonFlag = False,
) -> None:
    """Move the status forward: investigating, identified, monitoring, resolved."""
    command(incident_id, "status", {"status": new_status.value, "message": message}, as_json)


@app.command()
def update(incident_id: IncidentArg, message: Words, as_json: JsonFlag = False) -> None:
    """Post a status update (resets the update reminder)."""
    command(incident_id, "updates", {"message": message}, as_json)


@app.command()
def severity(
    incident_id: IncidentArg,
    new_severity: Annotated[str, typer.Argument(metavar="SEV")],
    reason: Annotated[str, typer.Option(help="Why.")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Change the severity."""
    command(incident_id, "severity", {"severity": new_severity, "reason": reason}, as_json)


@app.command()
def role(
    incident_id: IncidentArg,
    new_role: Annotated[Role, typer.Argument(metavar="ROLE")],
    user: Annotated[str, typer.Argument(help="Slack user id, @handle, handle or email.")],
    as_json: JsonFlag = False,
) -> None:
    """Give a role (commander, tech_lead, comms_lead) to someone."""
    command(incident_id, "roles", {"role": new_role.value, "user": user}, as_json)


@app.command()
def escalate(incident_id: IncidentArg, reason: Words = "", as_json: JsonFlag = False) -> None:
    """Escalate to the next tier now."""
    command(incident_id, "escalate", {"reason": reason}, as_json)


@app.command()
def resolve(incident_id: IncidentArg, message: Words = "", as_json: JsonFlag = False) -> None:
    """Resolve the incident."""
    command(incident_id, "resolve", {"message": message}, as_json)


@app.command()
def reopen(incident_id: IncidentArg, reason: Words = "", as_json: JsonFlag = False) -> None:
    """Reopen a resolved incident."""
    command(incident_id, "reopen", {"reason": reason}, as_json)


# More commands in files of their own: after resolution (report, retro, action items, stats)
# and the policy preview. They import this module, hence at the end.
from starter import cli_followup, cli_preview, cli_status  # noqa: E402

cli_followup.register(app)
cli_preview.register(app)
cli_status.register(app)

"""The CLI's side of the HTTP API: the client, its errors for people, and how incidents print.

Configured from the environment: INCIDENT_API_URL (default http://127.0.0.1:8000),
INCIDENT_API_TOKEN (else the token of ``incident login``, else the first of
INCIDENT_API_TOKENS), INCIDENT_USER (you, recorded as who acted). Shared by every sub-command
module of the ``incident`` CLI (``starter.cli``).

A login is kept per API URL in ``$XDG_CONFIG_HOME/incident/login.json`` (``~/.config``
by default), readable by its owner only: the token of a person, and who that person is.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn
from urllib.parse import quote

import httpx
import typer
from rich.console import Console
from rich.text import Text

from config import CliSettings
from workflows.text import CLIENT_HEADER, incident_label

# Declaring waits until the incident's Slack channel exists, which can take a few seconds.
TIMEOUT = httpx.Timeout(60.0, connect=5.0)
# A severity shows as what a page of it says (its paging_severity in the policy), so the
# policy's own names (sev0, sev4, p1, minor) style sensibly.
PAGING_STYLE = {"critical": "bold red", "error": "yellow", "warning": "cyan"}
STATUS_STYLE = {"investigating": "red", "identified": "yellow", "monitoring": "blue"}

# soft_wrap: ids and URLs must stay whole, whatever the terminal width.
out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)

Incident = dict[str, Any]
Words = Annotated[str, typer.Argument(show_default=False)]
IncidentArg = Annotated[str, typer.Argument(metavar="ID", help="INC-42, incident-42 or 42")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print the API's JSON answer as it is.")]


NOBODY = (
    "nobody is logged in, so nobody would be recorded as doing this: run `incident login "
    "<token>` with the token `/incident token` gives you in Slack, or set INCIDENT_USER"
)


def fail(message: str) -> NoReturn:
    err.print(Text(message, style="red"))
    raise typer.Exit(1)


def login_file() -> Path:
    home = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(home) / "incident" / "login.json"


def logins() -> dict[str, dict[str, str]]:
    """Each API URL's login: ``{"token": ..., "user": ..., "token_id": ...}``."""
    try:
        found = json.loads(login_file().read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def keep_logins(kept: dict[str, dict[str, str]]) -> None:
    """Written whole, readable by its owner only (it holds tokens)."""
    path = login_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fresh = path.with_suffix(".tmp")
    with os.fdopen(os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        json.dump(kept, out, indent=2)
    fresh.replace(path)


class Api:
    def __init__(self) -> None:
        settings = CliSettings()
        self.url = settings.api_url.rstrip("/")
        self.login = logins().get(self.url)
        self.token = settings.bearer_token(self.login["token"] if self.login else None)
        self.user = settings.user or None
        # Who the API records when the body names nobody: the login's person, if it is used.
        self.logged_in = (
            self.login["user"] if self.login and self.token == self.login["token"] else None
        )

    def acting(self) -> None:
        """A person's command needs a person: INCIDENT_USER, the login, or a token that is a
        person's (asked of the API); a service token alone would be recorded as acting."""
        if self.user or self.logged_in:
            return
        _, current = self.call("GET", "/tokens/current")
        if not current.get("user"):
            fail(NOBODY)

    def send(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        """The API's answer, whatever its status; ``httpx.HTTPError`` when there is none."""
        if body is not None and self.user:
            body.setdefault("by", self.user)
        query = {k: v for k, v in (params or {}).items() if v is not None}
        headers = {CLIENT_HEADER: "cli"}  # the timeline says the command came in by the CLI
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return httpx.request(
            method, self.url + path, json=body, params=query, headers=headers, timeout=TIMEOUT
        )

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> tuple[int, Any]:
        """The status and body of a successful answer (its JSON, or its text when it is not
        JSON, as the situation report); else the program ends with the reason, for people."""
        try:
            response = self.send(method, path, body, params)
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
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.status_code, response.json()
        return response.status_code, response.text

    def explain(self, response: httpx.Response) -> str:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text or response.reason_phrase
        if isinstance(detail, list):  # validation errors name the field: "severity: unknown..."
            detail = "; ".join(_field_error(e) for e in detail)
        detail = str(detail)
        if response.status_code == 401:
            detail += (
                " (run `incident login`, or set INCIDENT_API_TOKEN to one of the API's "
                "INCIDENT_API_TOKENS)"
            )
        return detail


def _field_error(error: dict[str, Any]) -> str:
    field = ".".join(str(part) for part in error.get("loc", [])[1:])
    # pydantic prefixes custom validator messages with "Value error, "; people need only the rest.
    message = str(error.get("msg", "")).removeprefix("Value error, ")
    return f"{field}: {message}" if field else message


def command(incident_id: str, action: str, body: dict[str, Any], as_json: bool) -> None:
    """Send one command and show what the incident says now."""
    api = Api()
    api.acting()
    _, incident = api.call("POST", f"{incident_path(incident_id)}/{action}", body)
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


def styles_of(severities: list[dict[str, Any]]) -> dict[str, str]:
    """Each severity's style, from the policy's severities as ``GET /policy/severities`` lists
    them: by what a page of it says (``info`` pages dimmed)."""
    return {s["name"]: PAGING_STYLE.get(s["paging_severity"], "dim") for s in severities}


@functools.cache
def severity_styles() -> dict[str, str]:
    """The API's policy's styles, asked once, and only when the output has colours."""
    if out.color_system is None:  # a pipe or a file: nothing to style
        return {}
    try:
        response = Api().send("GET", "/policy/severities")
        return styles_of(response.json()["severities"]) if response.is_success else {}
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return {}  # an older API, or none: plain text will do


def severity_text(severity: str) -> Text:
    return Text(severity.upper(), severity_styles().get(severity, ""))


def headline(incident: Incident) -> Text:
    """`INC-42 SEV1 investigating — Checkout failing`"""
    severity, status = incident["severity"], incident["status"]
    return Text.assemble(
        ("DRILL ", "bold yellow") if incident.get("drill") else "",
        (incident_label(incident["number"]), "bold"),
        " ",
        severity_text(severity),
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

"""``incident login``, ``logout`` and ``whoami``: the CLI acts as a person, and says who.

A login is a personal token (``/incident token`` in Slack gives one), checked with the API
and kept per API URL in the login file (``starter.cli_client.login_file``). With ``--user``
and a service token (INCIDENT_API_TOKEN, the CLI's first run), the CLI asks the API for a
token for that person instead.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.text import Text

from starter.cli_client import Api, fail, keep_logins, login_file, logins, out, when


def _said(current: dict[str, str], url: str) -> Text:
    until = f", until {when(current['expires_at'])}" if current.get("expires_at") else ""
    return Text(
        f"Logged in as {current['user']} at {url} (token {current['token_id']}"
        f"{until}): commands you give are recorded as theirs."
    )


def login(
    token: Annotated[
        str | None, typer.Argument(help="Your token, from `/incident token` in Slack.")
    ] = None,
    user: Annotated[
        str | None,
        typer.Option(help="Make a token for this person instead (needs an admin token)."),
    ] = None,
) -> None:
    """Act as yourself from now on: keep your personal token for this API."""
    api = Api()
    if token is None and user is None:
        token = typer.prompt("Token (from /incident token in Slack)", hide_input=True)
    if token is None:
        _, made = api.call("POST", "/tokens", {"user": user})
        token, expires_at = made["token"], made["expires_at"]
    else:
        expires_at = ""
    api.token = token
    _, current = api.call("GET", "/tokens/current")
    if not current["user"]:
        fail("that is a service token, not a person's: give your own (`/incident token`)")
    kept = logins()
    kept[api.url] = {"token": token, "user": current["user"], "token_id": current["token"]}
    keep_logins(kept)
    out.print(_said({**kept[api.url], "expires_at": expires_at}, api.url))
    if os.environ.get("INCIDENT_API_TOKEN"):
        out.print("INCIDENT_API_TOKEN is set and wins over this login: unset it to act as you.")


def logout() -> None:
    """Revoke the token of your login to this API and forget it."""
    api = Api()
    kept = logins()
    gone = kept.pop(api.url, None)
    if gone is None:
        out.print(f"Nobody is logged in at {api.url}.")
        return
    api.token = gone["token"]
    response = api.send("DELETE", f"/tokens/{gone['token_id']}")
    keep_logins(kept)
    revoked = "revoked" if response.is_success else f"not revoked ({response.status_code})"
    out.print(f"Logged out of {api.url}: token {gone['token_id']} {revoked}.")


def whoami() -> None:
    """Who the CLI acts as: the login, INCIDENT_USER, or nobody."""
    api = Api()
    _, current = api.call("GET", "/tokens/current")
    if current["user"]:
        out.print(f"{current['user']} (token {current['token']}, {', '.join(current['scopes'])})")
    elif api.user:
        out.print(f"{api.user} (INCIDENT_USER), through the service token {current['token']}")
    else:
        fail(f"nobody: the service token {current['token']} alone (login file {login_file()})")


def register(app: typer.Typer) -> None:
    for command in (login, logout, whoami):
        app.command()(command)

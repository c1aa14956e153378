"""The commands on one incident as ``incident`` sub-commands: one per row of the command table.

Each takes the incident's ID, then the row's words as arguments (a field's type says how
typer reads one: a status or a role is one of its values, an item a number), then its text;
every other optional field of the command is an option (``--owner``), and so is an optional
text (``--reason``). The CLI sends what was typed to the row's route; the API validates it and
names what is wrong.

``incident login``, ``logout`` and ``whoami``: the CLI acts as a person, and says who. A login
is a personal token (``/incident token`` in Slack gives one), checked with the API and kept per
API URL in the login file (``starter.cli_client.login_file``). With ``--user`` and a service
token (INCIDENT_API_TOKEN, the CLI's first run), the CLI asks the API for a token for that
person instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from enum import Enum
from inspect import Parameter, Signature
from typing import Annotated, Any, get_origin

import typer
from rich.text import Text

from starter.cli_client import (
    Api,
    IncidentArg,
    JsonFlag,
    command,
    fail,
    keep_logins,
    login_file,
    logins,
    out,
    when,
)
from starter.command_table import COMMANDS, GROUPS, CommandRow
from starter.command_words import placeholder, plain

# Not options: who acts comes from INCIDENT_USER or the login (and the token, `via`, and the
# entry point, `source`, from the API; the desk finds `answers_to`), an item's number is an
# argument.
UNTYPED = {"by", "via", "source", "answers_to", "item_id"}


def _kind(row: CommandRow[Any], name: str) -> Any:
    """What typer reads the field as: its enum or a number where the model says so, else text
    (the API parses times and people, so the CLI never holds a second copy of those rules)."""
    kind = plain(row.model.model_fields[name].annotation)
    if get_origin(kind) is list:
        return list[str]
    if isinstance(kind, type) and issubclass(kind, Enum | int):
        return kind
    return str


def _parameters(row: CommandRow[Any]) -> list[Parameter]:
    def param(name: str, annotation: Any, default: Any = Parameter.empty) -> Parameter:
        return Parameter(name, Parameter.KEYWORD_ONLY, annotation=annotation, default=default)

    grammar = row.grammar
    found = [param("incident_id", IncidentArg)]
    for name in grammar.words:
        shown = placeholder(row.model, name).upper()
        argument = typer.Argument(metavar=shown, show_default=False)
        found.append(param(name, Annotated[_kind(row, name), argument]))
    if grammar.text is not None:
        argument = typer.Argument(metavar=grammar.text.upper(), show_default=False)
        kind = _kind(row, grammar.text)
        if grammar.text_required:
            found.append(param(grammar.text, Annotated[kind, argument]))
        else:
            found.append(param(grammar.text, Annotated[kind, argument], ""))
            flag = row.flags.get(grammar.text, f"--{grammar.text}")
            found.append(
                param(f"{grammar.text}_option", Annotated[str | None, typer.Option(flag)], None)
            )
    taken = {*grammar.words, grammar.text, row.now, *UNTYPED}
    for name, field in row.model.model_fields.items():
        if name in taken or field.is_required():
            continue
        flag = row.flags.get(name, "--" + name.replace("_", "-"))
        option = typer.Option(flag, help=field.description, show_default=False)
        found.append(param(name, Annotated[_kind(row, name) | None, option], None))
    found.append(param("as_json", JsonFlag, False))
    return found


def sending(row: CommandRow[Any]) -> Callable[..., None]:
    """The sub-command of one row: its signature is built from the row, for typer."""

    def send(**given: Any) -> None:
        incident_id, as_json = given.pop("incident_id"), given.pop("as_json")
        path = row.path.format(item_id=given.pop("item_id", None))
        text = row.grammar.text
        if text is not None and given.get(f"{text}_option") is not None:
            given[text] = given[f"{text}_option"]
        body = {
            name: value.value if isinstance(value, Enum) else value
            for name, value in given.items()
            if value is not None and not name.endswith("_option")
        }
        if row.now:
            body[row.now] = datetime.now(UTC).isoformat()
        command(incident_id, path, body, as_json)

    send.__signature__ = Signature(_parameters(row))  # type: ignore[attr-defined]
    send.__name__ = row.verb.split()[-1]
    send.__doc__ = row.described[0].upper() + row.described[1:] + "."
    return send


def register(app: typer.Typer, own: dict[str, typer.Typer]) -> None:
    """``own``: a group's Typer that has sub-commands of its own (``automations list``)."""
    groups = {
        group: own.get(group)
        or typer.Typer(
            help=f"{group} " + "|".join(r.verb.split()[1] for r in COMMANDS if r.group == group),
            no_args_is_help=True,
        )
        for group in sorted(GROUPS)
    }
    for row in COMMANDS:
        where, verb = (
            (groups[row.group], row.verb.split()[1]) if row.group in groups else (app, row.verb)
        )
        where.command(verb)(sending(row))
        for alias in row.aliases:  # other spellings work, and the help lists them on the row
            where.command(alias, hidden=True)(sending(row))
    for group, typed in groups.items():
        app.add_typer(typed, name=group)
    for who in (login, logout, whoami):
        app.command()(who)


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

"""incident oncall: who is on call, the shifts of a schedule, overrides; through the API.

    incident oncall                                   who is on call now, until when, who next
    incident oncall override SCHEDULE USER WHEN...    e.g. `payments @carol for 2h`
    incident oncall remove SCHEDULE ID
    incident oncall shifts SCHEDULE [--from T] [--to T]

WHEN reads as in Slack's ``/oncall override`` (``starter.oncall.window``); it is sent to the
API as two ISO times, so what the API records is what was meant here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from starter.cli_client import Api, JsonFlag, fail, out, print_json, when
from starter.oncall import WHEN_USAGE, window

oncall = typer.Typer(
    help="Who is on call, the shifts of a schedule, overrides.", invoke_without_command=True
)
Schedule = Annotated[str, typer.Argument(help="A schedule of the policy.")]


@oncall.callback()
def who(context: typer.Context, as_json: JsonFlag = False) -> None:
    """Who is on call now for each schedule, until when, and who next."""
    if context.invoked_subcommand is not None:
        return
    _, answer = Api().call("GET", "/oncall")
    if as_json:
        print_json(answer)
        return
    table = Table("schedule", "on call", "until", "next", box=None, pad_edge=False)
    for s in answer["schedules"]:
        table.add_row(s["name"], s["on_call"] or "nobody", when(s["until"]), s["next"] or "-")
    out.print(table)


@oncall.command()
def override(
    schedule: Schedule,
    user: Annotated[str, typer.Argument(help="Slack user id, @handle or email.")],
    words: Annotated[list[str], typer.Argument(metavar="WHEN...", help=WHEN_USAGE)],
    as_json: JsonFlag = False,
) -> None:
    """Put someone on call for a window: it reaches the next tier that fires."""
    try:
        start, end = window(" ".join(words), datetime.now(UTC))
    except ValueError as error:
        fail(str(error))
    body = {"user": user, "start": start.isoformat(), "end": end.isoformat()}
    _, made = Api().call("POST", f"/schedules/{schedule}/overrides", body)
    if as_json:
        print_json(made)
        return
    out.print(
        f"Override {made['id']} on {schedule}: {made['user']} on call from "
        f"{when(made['start'])} to {when(made['end'])}"
    )


@oncall.command()
def remove(
    schedule: Schedule,
    override_id: Annotated[str, typer.Argument(metavar="ID", help="The override's id.")],
) -> None:
    """Take an override back."""
    Api().call("DELETE", f"/schedules/{schedule}/overrides/{override_id}")
    out.print(f"Override {override_id} on {schedule} removed.")


@oncall.command()
def shifts(
    schedule: Schedule,
    start: Annotated[
        str | None, typer.Option("--from", help="ISO time with a zone; default now.")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="Default a week after --from.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Who is on call when, overrides applied."""
    params = {"from": start, "to": end}
    _, answer = Api().call("GET", f"/schedules/{schedule}/shifts", params=params)
    if as_json:
        print_json(answer)
        return
    table = Table("from", "to", "on call", "", box=None, pad_edge=False)
    for s in answer["shifts"]:
        table.add_row(
            when(s["start"]), when(s["end"]), s["user"], "override" if s["override"] else ""
        )
    out.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(oncall, name="oncall")

"""incident report | stats | preview | automations list|test | oncall: what the incident CLI reads
besides incidents.

The situation report and the archive's figures after resolution, what the policy would do to
an incident, declaring nothing, and who is on call (with ``oncall override`` and ``remove``:
WHEN reads as in Slack's ``/oncall override``, ``starter.command_words.window``, and goes to
the API as two ISO times, so what the API records is what was meant here). The commands
after resolution (retro done, action add/assign/due/done/drop) are rows of the command
table, generated in ``starter.cli_commands``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from starter.cli_client import (
    Api,
    IncidentArg,
    JsonFlag,
    fail,
    incident_path,
    out,
    print_json,
    when,
)
from starter.command_words import WHEN_USAGE, window
from workflows.lifecycle import timeline
from workflows.models import IncidentState
from workflows.policy import load_policy
from workflows.preview import dry_run
from workflows.resolution.report import duration

PHASES = [status.value for status in timeline.PHASES]


def report(incident_id: IncidentArg) -> None:
    """Print the situation report (Markdown) written when the incident was resolved."""
    _, report = Api().call("GET", f"{incident_path(incident_id)}/report")
    typer.echo(report, nl=False)


def stats(
    since: Annotated[str | None, typer.Option("--since", help="ISO timestamp with a zone.")] = None,
    severity: Annotated[str | None, typer.Option("--severity", "-s")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Incident figures from the archive: MTTA, MTTR, time in each status, escalations, counts,
    recurring components, workload; then the same figures by severity."""
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
    for phase in PHASES:
        table.add_row(f"Mean {phase}", _seconds(figures["mean_seconds_in_status"].get(phase)))
    table.add_row("Escalations", _escalations(figures))
    table.add_row("Missed updates", str(figures["missed_updates"]))
    table.add_row("Recurring components", _counts(figures["recurring_components"]))
    table.add_row("Workload", _counts(figures["workload"]))
    out.print(table)
    # One table per breakdown the API answers (severity; type once incidents have one).
    for name, groups in figures["breakdown"].items():
        columns = ["incidents", "open", "MTTA", "MTTR", *PHASES, "escalations", "mean level"]
        by = Table(name, *columns, title=f"By {name}", title_justify="left")
        for group, f in groups.items():
            spent = [_seconds(f["mean_seconds_in_status"].get(phase)) for phase in PHASES]
            by.add_row(
                escape(group),
                str(f["incidents"]),
                str(f["open"]),
                _seconds(f["mtta_seconds"]),
                _seconds(f["mttr_seconds"]),
                *spent,
                str(f["escalations"]),
                _level(f["mean_escalation_level"]),
            )
        out.print(by)


def _seconds(value: float | None) -> str:
    return duration(timedelta(seconds=value) if value is not None else None)


def _escalations(figures: dict[str, Any]) -> str:
    """``3 (0.8 per incident, mean level 0.5)``."""
    per = figures["escalations_per_incident"]
    if per is None:
        return str(figures["escalations"])
    return (
        f"{figures['escalations']} ({per:.1f} per incident, "
        f"mean level {_level(figures['mean_escalation_level'])})"
    )


def _level(value: float | None) -> str:
    return f"{value:.1f}" if value is not None else "-"


def _counts(counts: dict[str, Any]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counts.items()) or "-"


def register(app: typer.Typer) -> None:
    app.command()(report)
    app.command()(stats)
    app.command()(preview)
    app.add_typer(oncall, name="oncall")


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
    for warning in answer.get("warnings", []):
        out.print(f"[yellow]warning:[/] {escape(warning)}")


# Also the command table's `automations skip` (``starter.cli_commands`` adds it to this group).
automations = typer.Typer(
    help="The policy's automations: what ran and waits on an incident, skip one, try a file.",
    no_args_is_help=True,
)


@automations.command("list")
def listed(incident_id: IncidentArg, as_json: JsonFlag = False) -> None:
    """The rules that ran on an incident, and those waiting with their numbers (to skip)."""
    _, answer = Api().call("GET", incident_path(incident_id))
    waiting = answer["automations"]
    ran = [e for e in answer["timeline"] if e["text"].startswith("Automation '")]
    if as_json:
        print_json({"waiting": waiting, "ran": ran})
        return
    for wait in waiting:
        out.print(Text(f"#{wait['id']}  {wait['rule']}  fires {when(wait['due_at'])}"))
    for entry in ran:
        out.print(Text(f"{when(entry['at'])}  {entry['text']}"))
    if not waiting and not ran:
        out.print("No rule has run or waits on this incident.")


@automations.command("test")
def try_rules(
    policy_file: Annotated[Path, typer.Argument(help="A policy file with [[automations]].")],
    incident: Annotated[str, typer.Option(help="A past incident: INC-42, incident-42 or 42.")],
    as_json: JsonFlag = False,
) -> None:
    """What the file's automations would have done over a past incident's recorded timeline,
    acting on nothing: the incident workflow's own functions, run here."""
    try:
        policy = load_policy(policy_file)
    except (OSError, ValueError) as error:  # a refused rule is named in the error
        fail(f"{policy_file}: {error}")
    _, answer = Api().call("GET", incident_path(incident))
    steps = dry_run(policy, IncidentState.model_validate(answer), datetime.now(UTC))
    if as_json:
        print_json([step.model_dump(mode="json") for step in steps])
        return
    for step in steps:
        out.print(Text(f"{_offset(step.after.total_seconds()):>10}  {step.text}"))
    if not steps:
        out.print("No rule of the file would have done anything.")


# -- incident oncall --------------------------------------------------------------------------

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

"""Record workflow histories for the replay test: ``python -m tests.record_histories NAME``.

With ``--one-run`` the incidents keep one run (the default policy); otherwise they continue
as new once open, so both the opening run and the rest are recorded. ``--oncall`` records
only an incident whose tiers reach whoever is on call (``incident_oncall``): a tier asking
its schedule's workflow, an override winning, a gap, a page's direct message. ``--drill``
records an incident whose rule schedules a drill (``incident_drill_step``) and the DrillTimer
that declares it (``drill_timer``). The lifecycle's policy has one automation that waits
(``CUSTOMER_NOTE``), then posts.

The corpus stands for the incidents the current build runs: a change to the workflow code
that would not replay them fails tests/test_replay.py. Worker Versioning keeps each incident
on the build it started on until it continues as new, so the histories are re-recorded (the
old files deleted, then this run) only when a release deliberately changes the workflow's
course or the state it carries across continue-as-new (``IncidentInput``, the contract between
builds). Otherwise the recorder only adds: it never overwrites a file.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from temporalio.client import Client

from config import Settings
from config.deployment import ensure_oncall_schedules
from localslack import SlackEmulator
from starter.api.routes.alerts import GenericAlert
from starter.desk import IncidentDesk
from starter.oncall import OnCallDesk
from tests.conftest import seconds_policy, start_dev_server
from tests.support import every_run, upgrade_database
from workflows.alerts.folding import AlertSignal
from workflows.alerts.routing import ResolvedAlert
from workflows.lifecycle import commands as cmd
from workflows.lifecycle.numbering import claim_id
from workflows.models import Declaration, Link, Role, Status
from workflows.policy import BusinessHours, EscalationTier, Policy

HISTORIES = Path(__file__).parent / "histories"
CUSTOMER_NOTE = {
    "name": "customer note",
    "on": "declared",
    "after": 1.0,
    "unless": 'incident.status == "resolved"',
    "do": [{"post": {"text": "{label}: time for the customer note"}}],
}


async def lifecycle_scenario(desk: IncidentDesk) -> str:
    """Every command and every timer kind, to the archived channel and a completed workflow."""
    state, _ = await desk.declare(
        Declaration(
            title="Checkout failing",
            severity="sev1",
            commander="U0ALICE01",
            responders=["U0BOB0002"],
            components=["checkout"],
            idempotency_key="alert-123",
        )
    )
    await asyncio.sleep(1.6)  # an update reminder and an escalation tier fire
    await desk.command(state.id, cmd.Acknowledge(by="U0BOB0002"))
    # A later notification's runbook becomes a bookmark.
    runbook = Link(title="Runbook", url="https://runbooks.example.com/checkout")
    alerts = GenericAlert(key="alert-123", title="CheckoutErrorRate", links=[runbook]).batch()
    await desk.signal_alerts(state.id, AlertSignal.of(alerts, ResolvedAlert.NOTE))
    said = cmd.AddTimelineEntry(text="error rate 12%", author="U0BOB0002", at=datetime.now(UTC))
    await desk.command(state.id, said)
    await desk.command(state.id, cmd.SetStatus(status=Status.IDENTIFIED, message="bad deploy"))
    await desk.command(state.id, cmd.PostPublicUpdate(message="Some payments fail"))
    await desk.command(state.id, cmd.AssignRole(role=Role.TECH_LEAD, user="U0CAROL03"))
    await desk.command(state.id, cmd.AddResponders(users=["U0DAVE004"]))
    await desk.command(state.id, cmd.SetSeverity(severity="sev2", reason="workaround"))
    await desk.command(state.id, cmd.PostUpdate(message="rolling back"))
    await desk.command(state.id, cmd.Escalate(reason="need payments"))
    await desk.command(state.id, cmd.AddActionItem(text="canary deploys", owner="U0CAROL03"))
    await desk.command(state.id, cmd.AssignActionItem(item_id=1, owner="U0DAVE004"))
    soon = datetime.now(UTC) + timedelta(seconds=0.5)
    await desk.command(state.id, cmd.SetActionItemDue(item_id=1, due=soon))
    await desk.command(state.id, cmd.AddActionItem(text="rename the flag"))
    await desk.command(state.id, cmd.DropActionItem(item_id=2, reason="not needed"))
    await desk.command(state.id, cmd.SetStatus(status=Status.MONITORING))
    await desk.command(state.id, cmd.Resolve(message="rolled back"))
    await desk.command(state.id, cmd.Reopen(reason="errors again"))
    await desk.command(state.id, cmd.CompleteActionItem(item_id=1))
    await desk.command(state.id, cmd.Resolve(message="fixed for real"))
    await asyncio.sleep(1.0)  # the retrospective draft goes out, a reminder follows
    await desk.command(state.id, cmd.CompleteRetrospective())
    await desk.client.get_workflow_handle(state.id).result()
    return state.id


async def oncall_scenario(client: Client) -> str:
    """Two tiers naming schedules: the first reaches the person an override put on call and
    pages them, the second finds nobody on call and still reaches the rest of its list."""
    start = datetime.now(UTC) - timedelta(days=1)
    schedules = {
        "record-primary": {
            "timezone": "UTC",
            "people": ["U0ALICE01"],
            "shift": "1d",
            "start": start,
        },
        "record-later": {
            "timezone": "UTC",
            "people": ["U0BOB0002"],
            "shift": "1d",
            "start": start + timedelta(days=9),
        },
    }
    tiers = [
        {"after": 0.5, "notify": ["oncall:record-primary"], "page": True},
        {"after": 0.5, "notify": ["oncall:record-later", "U0ERIN005"]},
    ]
    data = seconds_policy(archive_after=0.5).model_dump()
    data["business_hours"] = {"start": "00:00", "end": "24:00", "days": list(range(7))}
    for severity in data["severities"].values():
        severity["escalation"] = tiers
    policy = Policy.model_validate({**data, "schedules": schedules})
    await ensure_oncall_schedules(client, "record", policy)
    oncall = OnCallDesk(client, policy)
    for name in schedules:  # each has resolved its people
        for _ in range(200):
            if (await oncall.roster(name)).definitions:
                break
            await asyncio.sleep(0.05)
    now = datetime.now(UTC)
    await oncall.add_override("record-primary", "U0CAROL03", now, now + timedelta(hours=1), None)
    desk = IncidentDesk(client, "record", policy)
    state, _ = await desk.declare(Declaration(title="Payments failing", severity="sev1"))
    await asyncio.sleep(2.0)  # both tiers fire and reach whoever is on call
    await desk.command(state.id, cmd.Acknowledge(by="U0CAROL03"))
    await desk.command(state.id, cmd.Resolve(message="fixed"))
    await asyncio.sleep(1.0)  # the retrospective draft goes out
    await desk.command(state.id, cmd.CompleteRetrospective())
    await desk.client.get_workflow_handle(state.id).result()
    return state.id


async def drill_scenario(client: Client) -> tuple[str, str]:
    """A rule's ``drill`` step: the incident schedules a practice run when it resolves, and its
    DrillTimer declares it a second later; both histories, each to its end."""
    rule = {"name": "practise it", "on": "resolved", "do": [{"drill": {"after": 1.0}}]}
    policy = seconds_policy(archive_after=0.5).model_dump()
    policy["business_hours"] = {"start": "00:00", "end": "24:00", "days": list(range(7))}
    desk = IncidentDesk(client, "record", Policy.model_validate({**policy, "automations": [rule]}))
    state, _ = await desk.declare(Declaration(title="Checkout failing", severity="sev2"))
    await desk.command(state.id, cmd.Resolve(message="fixed"))
    await asyncio.sleep(1.0)  # the retrospective draft goes out
    await desk.command(state.id, cmd.CompleteRetrospective())
    await desk.client.get_workflow_handle(state.id).result()
    query = f"WorkflowType = 'DrillTimer' AND ParentWorkflowId = '{state.id}'"
    timers = [e.id async for e in client.list_workflows(query)]
    await client.get_workflow_handle(timers[0]).result()
    return state.id, timers[0]


async def record(client: Client, desk: IncidentDesk, label: str, mode: str) -> list[Path]:
    written = []
    if mode == "oncall":
        recorded = [(await oncall_scenario(client), "incident_oncall")]
    elif mode == "drill":
        origin, timer = await drill_scenario(client)
        recorded = [(origin, "incident_drill_step"), (timer, "drill_timer")]
    else:
        recorded = [
            (await lifecycle_scenario(desk), "incident_lifecycle"),
            (claim_id("alert-123"), "key_claim"),  # the scenario's idempotency key
        ]
    HISTORIES.mkdir(exist_ok=True)  # re-recording starts from an empty corpus
    for workflow_id, name in recorded:
        runs = await every_run(client, workflow_id)
        for number, history in enumerate(runs, start=1):
            # The last run keeps the plain name; earlier runs (continued as new) are numbered.
            run = "" if number == len(runs) else f"_run{number}"
            path = HISTORIES / f"{name}{label}{run}.json"
            if path.exists():
                raise SystemExit(f"{path} exists: recorded histories are never overwritten")
            path.write_text(history.to_json())
            written.append(path)
    return written


async def main(label: str, one_run: bool, mode: str) -> None:
    policy = seconds_policy(
        update_every=1,
        escalation=[EscalationTier(after=1.2, notify=["U0ERIN005"], page=True)],
        archive_after=0.5,
    )
    policy.business_hours = BusinessHours(start="00:00", end="24:00", days=list(range(7)))
    policy.history.continue_as_new_once_open = not one_run  # else the opening and the rest
    for severity in policy.severities.values():
        severity.retrospective.remind_every = timedelta(seconds=0.6)
        severity.action_item_remind_every = timedelta(seconds=0.4)
    # A rule's wait, a deadline of the loop carried across continue-as-new, and its step.
    policy = Policy.model_validate({**policy.model_dump(), "automations": [CUSTOMER_NOTE]})
    env = await start_dev_server()
    slack = SlackEmulator()
    await slack.start(host="127.0.0.1", port=0)
    database = tempfile.mkdtemp(prefix="record-archive-")
    upgrade_database(f"sqlite:///{database}/incidents.db")
    settings = Settings(
        task_queue="record",
        slack_api_url=slack.base_url,
        database_url=f"sqlite:///{database}/incidents.db",
    )
    try:
        from worker import build_worker

        async with httpx.AsyncClient() as http, build_worker(env.client, settings, http):
            desk = IncidentDesk(env.client, "record", policy)
            for path in await record(env.client, desk, label, mode):
                print(f"wrote {path}", file=sys.stderr)
    finally:
        await slack.stop()
        await env.shutdown()


if __name__ == "__main__":
    names = [a for a in sys.argv[1:] if not a.startswith("--")]
    label = f"_{names[0]}" if names else ""
    mode = next((m for m in ("oncall", "drill") if f"--{m}" in sys.argv), "lifecycle")
    asyncio.run(main(label, one_run="--one-run" in sys.argv, mode=mode))

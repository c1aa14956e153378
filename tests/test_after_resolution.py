"""After resolution, end to end: the real dev server, a worker built by ``worker.build_worker``,
the Slack emulator over HTTP, a local SMTP server (aiosmtpd) and a SQLite archive.
The worker of this module's queue lives as long as the session: incidents it leaves behind
must still answer the queries of listing tests that run later.

The policy is seconds-scale; timing is asserted from what Slack and the mail server received.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from icalendar import Calendar
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from clients.archive import IncidentArchive
from config import Settings
from localslack import SlackEmulator
from localslack.api.files import canvas_url, channel_canvas
from localslack.control import Fault
from starter.api.app import create_app
from starter.desk import IncidentDesk
from tests.support import Inbox, eventually, local_smtp, serve_http, until, upgrade_database
from workflows.lifecycle import commands as cmd
from workflows.models import Declaration, IncidentState, Status
from workflows.policy import Policy, default_policy

QUEUE = "incidents-after-resolution"
MARGIN = 2.0


@pytest.fixture(scope="session")
def inbox() -> Iterator[Inbox]:
    with local_smtp() as handler:
        yield handler


def follow_up_policy(retro_after: float = 2, archive_after: float = 4, **sev: object) -> Policy:
    data = default_policy().model_dump()
    data["business_hours"] = {"timezone": "UTC", "start": "00:00", "end": "24:00"}
    data["business_hours"]["days"] = list(range(7))
    for severity in data["severities"].values():
        defaults: dict[str, object] = {"escalation": [], "update_every": None}
        defaults["archive_after"] = archive_after
        defaults |= {"action_item_remind_every": 2, "stakeholders": ["vp@example.com"]}
        severity.update(defaults | sev)
        severity["retrospective"] = {
            "required": True,
            "after": retro_after,
            "remind_every": 2,
            "meeting_length": 1800,
        }
    return Policy.model_validate(data)


@pytest.fixture(scope="session")
def archive_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('after')}/incidents.db"
    upgrade_database(url)
    return url


@pytest.fixture(scope="session")
async def after_worker(
    client: Client, slack: SlackEmulator, inbox: Inbox, archive_url: str, worker: None
) -> AsyncIterator[None]:
    from worker import build_worker

    settings = Settings(
        task_queue=QUEUE,
        slack_api_url=slack.base_url,
        broadcast_channel="incidents",
        smtp_host="127.0.0.1",
        smtp_port=inbox.port,
        smtp_from="incidents@example.com",
        database_url=archive_url,
    )
    async with httpx.AsyncClient() as http, build_worker(client, settings, http):
        yield


def declaration(title: str) -> Declaration:
    return Declaration(
        title=title,
        severity="sev2",
        summary="EU card payments fail",
        components=["checkout"],
        commander="U0ALICE01",
        responders=["U0BOB0002"],
        declared_by="U0ALICE01",
    )


def keyed(slack: SlackEmulator, channel_id: str, prefix: str) -> list[dict]:
    return [
        m
        for m in slack.messages(channel_id)
        if m.get("metadata", {}).get("event_payload", {}).get("key", "").startswith(prefix)
    ]


def shared_files(slack: SlackEmulator, channel_id: str, part: str) -> list[dict]:
    return [
        f
        for m in slack.messages(channel_id)
        for f in m.get("files", [])
        if part in str(f.get("name", ""))
    ]


def file_text(slack: SlackEmulator, shared: dict) -> str:
    return bytes(slack.workspace.files[shared["id"]]["content"]).decode()


def broadcast_texts(slack: SlackEmulator, incident_id: str) -> list[str]:
    broadcast = slack.channel_by_name("incidents")
    assert broadcast is not None
    return [
        m.get("text", "")
        for m in slack.messages(broadcast.id)
        if m.get("metadata", {}).get("event_payload", {}).get("incident_id") == incident_id
    ]


async def resolved_incident(desk: IncidentDesk, title: str) -> tuple[IncidentState, IncidentState]:
    state, _ = await desk.declare(declaration(title))
    await desk.command(state.id, cmd.Acknowledge(by="U0BOB0002"))
    await desk.command(state.id, cmd.PostUpdate(message="rolling back", by="U0CAROL03"))
    resolved = await desk.command(state.id, cmd.Resolve(message="rolled back", by="U0ALICE01"))
    return state, resolved


@pytest.fixture
def canvases_refused(slack: SlackEmulator) -> Iterator[None]:
    """A workspace with canvases turned off: the documents go as Markdown files."""
    slack.workspace.canvas_plan = "off"
    yield
    slack.workspace.canvas_plan = "paid"


async def test_resolution_notice_report_retrospective_reminders_archive_and_record(
    client, slack, inbox, after_worker, archive_url, canvases_refused
):
    desk = IncidentDesk(client, QUEUE, follow_up_policy())
    state, resolved = await resolved_incident(desk, "Checkout failing after deploy")
    assert state.channel is not None
    channel = state.channel.id
    assert resolved.status is Status.RESOLVED and resolved.report is not None
    report = resolved.report
    assert resolved.acknowledged_at is not None and resolved.resolved_at is not None
    response = resolved.acknowledged_at - resolved.declared_at
    assert f"Acknowledged: {resolved.acknowledged_at:%Y-%m-%d %H:%M:%S} UTC by @U0BOB0002" in report
    assert f"Closed: {resolved.resolved_at:%Y-%m-%d %H:%M:%S} UTC" in report
    assert f"Response time (acknowledged - declared): {int(response.total_seconds())}s" in report
    assert "- Incident commander: @U0ALICE01" in report
    assert "## Solution\n\nrolled back" in report

    # The notice, in the channel and the broadcast channel.
    await eventually(lambda: keyed(slack, channel, "resolved"))
    (notice,) = keyed(slack, channel, "resolved")
    assert "Normal operations restored after" in notice["text"]
    assert "Impact: major. Affected components: checkout." in notice["text"]
    await eventually(
        lambda: any("Normal operations restored" in t for t in broadcast_texts(slack, state.id))
    )
    # The report: shared in the channel, linked from the broadcast, emailed to stakeholders.
    (shared,) = await eventually(lambda: shared_files(slack, channel, "-report-"))
    assert file_text(slack, shared) == report
    await eventually(
        lambda: any(shared["permalink"] in t for t in broadcast_texts(slack, state.id))
    )
    (to, mail), *_ = await eventually(lambda: inbox.with_subject(f"[{state.label}] Resolved"))
    assert to == ["vp@example.com"]
    assert "Time to resolve" in mail.get_payload()[0].get_payload(decode=True).decode()

    # The retrospective: draft and invitation after the policy's two seconds.
    sent = await eventually(lambda: shared_files(slack, channel, ".ics"), timeout=10)
    latest = await desk.get(state.id)
    assert latest.retrospective.drafted_at is not None and latest.resolved_at is not None
    delay = (latest.retrospective.drafted_at - latest.resolved_at).total_seconds()
    assert 2 <= delay < 2 + MARGIN
    invitation = Calendar.from_ical(file_text(slack, sent[0]))
    (event,) = invitation.walk("VEVENT")
    attendees = sorted(str(a).removeprefix("mailto:") for a in event.get("attendee"))
    assert attendees == ["alice@example.com", "bob@example.com", "carol@example.com"]
    assert event.decoded("dtstart") == latest.retrospective.meeting_at
    assert event.decoded("dtend") - event.decoded("dtstart") == timedelta(minutes=30)
    (draft,) = shared_files(slack, channel, "-retrospective-5.md")
    assert "## Root cause and contributing factors" in file_text(slack, draft)
    where = [e.text for e in latest.timeline if e.kind == "document"]
    refused = "(Slack refused a canvas: canvas_disabled_user_team)"
    assert where == [
        f"{state.label} situation report: file {shared['permalink']} {refused}",
        f"Retrospective: {state.label} Checkout failing after deploy (draft): file "
        f"{draft['permalink']} {refused}",
    ]
    invited = await eventually(lambda: inbox.with_subject("Retrospective"))
    assert sorted(invited[0][0]) == attendees

    # Reminders until it is marked done, then none.
    await eventually(lambda: keyed(slack, channel, "retrospective_due"), timeout=6)
    await desk.command(state.id, cmd.CompleteRetrospective(by="U0ALICE01"))
    count = len(keyed(slack, channel, "retrospective_due"))
    await asyncio.sleep(2.5)
    assert len(keyed(slack, channel, "retrospective_due")) == count

    # Archived archive_after the meeting; no open item, so the workflow completes.
    handle = client.get_workflow_handle(state.id)
    await asyncio.wait_for(handle.result(), timeout=15)
    assert slack.channels[channel].is_archived
    done = await desk.get(state.id)
    assert done.archived_at is not None and done.retrospective.meeting_at is not None
    assert done.archived_at >= done.retrospective.meeting_at + timedelta(seconds=4)
    record = IncidentArchive(archive_url).get(state.id)
    assert record is not None and record.status is Status.RESOLVED
    assert record.archived_at == done.archived_at
    assert record.time_to_acknowledge == pytest.approx(response.total_seconds())


def canvases_titled(slack: SlackEmulator, title: str) -> list[dict]:
    return [c for c in slack.workspace.canvases.values() if c["title"] == title]


async def test_report_and_retrospective_are_canvases_made_once_when_slack_loses_answers(
    client, slack, after_worker
):
    # Each canvas call does its work, then its answer is lost: the retries find their canvas.
    for method in ("canvases.create", "canvases.access.set", "conversations.canvases.create"):
        slack.inject(Fault(method, status=503, commit=True))
    slack.inject(Fault("files.completeUploadExternal", drop=True, commit=True))
    desk = IncidentDesk(client, QUEUE, follow_up_policy(archive_after=600))
    title = "Card payments declined"
    state, resolved = await resolved_incident(desk, title)
    assert state.channel is not None
    channel = state.channel.id

    # The report: a canvas of its own the channel reads, linked once there and in #incidents.
    named = f"{state.label} situation report"
    (report,) = await eventually(lambda: [c for c in canvases_titled(slack, named) if c["access"]])
    assert report["markdown"] == resolved.report and not report["channel_canvas"]
    assert report["access"] == {channel: "read"}
    url = canvas_url(report["id"])
    (link,) = await eventually(lambda: [m for m in slack.messages(channel) if url in m["text"]])
    assert link["text"] == f"Situation report of {state.label}: {url}"
    await eventually(lambda: any(url in t for t in broadcast_texts(slack, state.id)))

    # The retrospective draft: the channel's canvas; the invitation a file that links it.
    draft = await eventually(lambda: channel_canvas(slack.workspace, channel), timeout=10)
    assert draft["title"] == f"Retrospective: {state.label} {title} (draft)"
    assert "## Root cause and contributing factors" in draft["markdown"]
    draft_url = canvas_url(draft["id"])
    await eventually(lambda: shared_files(slack, channel, ".ics"))
    (shared,) = [m for m in slack.messages(channel) if m.get("files")]
    assert draft_url in shared["text"] and shared_files(slack, channel, ".md") == []
    # The kickoff, edited in place (still one message), links the draft.
    await eventually(lambda: draft_url in json.dumps(keyed(slack, channel, "kickoff")[0]["blocks"]))
    assert len(keyed(slack, channel, "kickoff")) == 1

    # Exactly once, though every create lost its answer; the timeline says where each went.
    assert len(canvases_titled(slack, draft["title"])) == 1
    assert len(canvases_titled(slack, report["title"])) == 1
    assert slack.calls_to("files.list")  # the retries looked before making another
    latest = await desk.get(state.id)
    assert [e.text for e in latest.timeline if e.kind == "document"] == [
        f"{state.label} situation report: canvas {url}",
        f"{draft['title']}: canvas {draft_url}",
    ]
    assert latest.retrospective.document_url == draft_url
    await client.get_workflow_handle(state.id).terminate("test done: stop the reminders")


async def test_a_free_workspace_gets_the_report_as_a_file_and_the_draft_as_the_channel_canvas(
    client, slack, after_worker
):
    slack.workspace.canvas_plan = "free"  # one canvas tab a channel, no standalone canvas
    try:
        desk = IncidentDesk(client, QUEUE, follow_up_policy(archive_after=600))
        state, resolved = await resolved_incident(desk, "Free plan outage")
        assert state.channel is not None
        channel = state.channel.id
        (report,) = await eventually(lambda: shared_files(slack, channel, "-report-"))
        assert file_text(slack, report) == resolved.report
        draft = await eventually(lambda: channel_canvas(slack.workspace, channel), timeout=10)
        assert await until(
            lambda: desk.get(state.id),
            lambda s: len([e for e in s.timeline if e.kind == "document"]) == 2,
        )
        latest = await desk.get(state.id)
        where = [e.text for e in latest.timeline if e.kind == "document"]
        assert where[0].endswith(
            "(Slack refused a canvas: free_teams_cannot_create_standalone_canvases)"
        )
        assert where[1].endswith(f"canvas {canvas_url(draft['id'])}")
        await client.get_workflow_handle(state.id).terminate("test done: stop the reminders")
    finally:
        slack.workspace.canvas_plan = "paid"


async def test_action_item_reminds_its_owner_at_the_due_time_and_keeps_the_workflow_open(
    client, slack, after_worker, archive_url
):
    desk = IncidentDesk(client, QUEUE, follow_up_policy(retro_after=600, archive_after=0))
    state, _ = await desk.declare(declaration("Search index stale"))
    archive = IncidentArchive(archive_url)
    # Declared, nothing else yet: the archive knows it already.
    await eventually(lambda: archive.get(state.id), timeout=5)
    due = datetime.now(UTC) + timedelta(seconds=2)
    await desk.command(
        state.id, cmd.AddActionItem(text="alert on index age", owner="U0DAVE004", due=due)
    )

    def reminders() -> list[dict]:
        return [
            m
            for c in slack.channels.values()
            if "U0DAVE004" in c.members and c.id != (state.channel.id if state.channel else "")
            for m in c.messages
            if m.get("metadata", {}).get("event_payload", {}).get("incident_id") == state.id
            and m["metadata"]["event_payload"]["key"].startswith("action_item_due")
        ]

    first = (await eventually(reminders, timeout=8))[0]
    assert due.timestamp() <= float(first["ts"]) < due.timestamp() + MARGIN
    assert "alert on index age" in first["text"]
    await eventually(lambda: len(reminders()) >= 2, timeout=6)
    second = reminders()[1]
    assert float(second["ts"]) - float(first["ts"]) == pytest.approx(2, abs=MARGIN)
    await client.get_workflow_handle(state.id).terminate("test done: stop the reminders")


async def test_reopening_before_the_retrospective_cancels_it_and_rearms_the_cadence(
    client, slack, after_worker
):
    desk = IncidentDesk(client, QUEUE, follow_up_policy(retro_after=2, update_every=2))
    state, _ = await resolved_incident(desk, "Login errors")
    assert state.channel is not None
    reopened = await desk.command(state.id, cmd.Reopen(reason="errors again"))
    assert reopened.status is Status.INVESTIGATING
    await eventually(lambda: keyed(slack, state.channel.id, "update_due"), timeout=6)
    await asyncio.sleep(1.0)
    assert shared_files(slack, state.channel.id, ".ics") == []
    latest = await desk.get(state.id)
    assert latest.retrospective.drafted_at is None
    handle = client.get_workflow_handle(state.id)
    assert (await handle.describe()).status is WorkflowExecutionStatus.RUNNING
    await handle.terminate("test done: stop the update reminders")


def test_archive_metrics_of_a_scripted_week(tmp_path: Path):
    from tests.test_followup import scripted_week

    archive = IncidentArchive(f"sqlite:///{tmp_path}/week.db")
    upgrade_database(f"sqlite:///{tmp_path}/week.db")
    upgrade_database(f"sqlite:///{tmp_path}/week.db")  # idempotent
    for record in scripted_week():
        archive.upsert(record)
        archive.upsert(record)
    metrics = archive.metrics(since=None, severity=None)
    assert metrics.incidents == 4 and metrics.open == 1
    assert metrics.mtta_seconds == 600 and metrics.mttr_seconds == 140 * 60
    assert metrics.recurring_components == {"checkout": 2, "search": 2}
    assert archive.metrics(since=None, severity="sev2").incidents == 2
    assert [r.id for r in archive.search(text="INCIDENT 2")] == ["incident-2"]
    assert [r.number for r in archive.search(severity="sev2")] == [3, 2]  # newest first
    assert [r.id for r in archive.search(status="investigating")] == ["incident-4"]
    assert archive.search(text="%") == [] and archive.search(text="incident_") == []


API_TOKEN = "test-token-after"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture(scope="module")
async def after_api(
    client: Client, slack: SlackEmulator, archive_url: str, after_worker: None
) -> AsyncIterator[str]:
    """The API over HTTP (uvicorn on a free port), driving incidents on this module's queue."""
    desk = IncidentDesk(client, QUEUE, follow_up_policy(retro_after=600))
    settings = Settings(task_queue=QUEUE, api_tokens=API_TOKEN, database_url=archive_url)
    async with serve_http(create_app(settings, desk=desk)) as url:
        yield url


async def cli(url: str, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INCIDENT_")}
    env |= {"INCIDENT_API_URL": url, "INCIDENT_API_TOKEN": API_TOKEN, "COLUMNS": "200"}
    env["INCIDENT_USER"] = "U0ALICE01"
    process = await asyncio.create_subprocess_exec(
        os.path.join(sys.prefix, "bin", "incident"),
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=90)
    return int(process.returncode or 0), out.decode(), err.decode()


async def test_action_items_retrospective_report_and_stats_over_the_api_and_cli(after_api):
    async with httpx.AsyncClient(base_url=after_api, headers=AUTH, timeout=60) as api:
        declared = await api.post(
            "/incidents?wait=true",
            json={"title": "Payments slow", "severity": "sev2", "commander": "U0ALICE01"},
        )
        assert declared.status_code == 201, declared.text
        incident = declared.json()["id"]
        due = "2030-01-02T09:00:00+00:00"
        added = await api.post(
            f"/incidents/{incident}/action-items", json={"text": "add a timeout", "due": due}
        )
        assert added.json()["action_items"][0]["due_at"] == "2030-01-02T09:00:00Z"
        assigned = await api.post(
            f"/incidents/{incident}/action-items/1/assign", json={"owner": "U0BOB0002"}
        )
        assert assigned.json()["action_items"][0]["owner"] == "U0BOB0002"
        bad_owner = await api.post(
            f"/incidents/{incident}/action-items/1/assign", json={"owner": "bob"}
        )
        assert bad_owner.status_code == 422 and "owner" in bad_owner.text
        moved = await api.post(
            f"/incidents/{incident}/action-items/1/due", json={"due": "2030-02-01T09:00:00Z"}
        )
        assert moved.json()["action_items"][0]["due_at"] == "2030-02-01T09:00:00Z"
        unknown = await api.post(f"/incidents/{incident}/action-items/9/drop", json={})
        assert unknown.status_code == 409 and "no action item #9" in unknown.json()["detail"]
        early = await api.get(f"/incidents/{incident}/report")
        assert early.status_code == 404 and "no report until resolved" in early.json()["detail"]
        too_early = await api.post(f"/incidents/{incident}/retrospective/complete")
        assert too_early.status_code == 409

    code, out, err = await cli(after_api, "action", "add", incident, "write the runbook")
    assert code == 0, err
    code, out, err = await cli(after_api, "action", "drop", incident, "2", "duplicate")
    assert code == 0 and "dropped (duplicate)" in out, err
    code, out, err = await cli(after_api, "resolve", incident, "raised the pool size")
    assert code == 0, err
    code, report, err = await cli(after_api, "report", incident)
    assert code == 0, err
    assert report.startswith("# INC-") and "## Solution\n\nraised the pool size" in report
    assert "- [ ] #1 add a timeout (@U0BOB0002, due 2030-02-01 09:00:00 UTC; open)" in report
    async with httpx.AsyncClient(base_url=after_api, headers=AUTH, timeout=60) as api:
        served = await api.get(f"/incidents/{incident}/report")
        assert served.headers["content-type"].startswith("text/markdown")
        assert served.text == report
        done = await api.post(f"/incidents/{incident}/retrospective/complete", json={})
        assert done.json()["retrospective"]["completed_at"] is not None

        async def figures() -> dict:
            response = await api.get("/metrics/incidents", params={"severity": "sev2"})
            assert response.status_code == 200, response.text
            return dict(response.json())

        # The archive hears of the resolution from an activity, just after the Update answers.
        assert await until(figures, lambda f: f["incidents"] >= 1 and f["mttr_seconds"] is not None)
        found = await api.get("/archive/incidents", params={"q": "payments slow"})
        assert [i["id"] for i in found.json()["incidents"]] == [incident]
        assert (await api.get("/archive/incidents", params={"status": "bogus"})).status_code == 422
    code, out, err = await cli(after_api, "stats", "--severity", "sev2")
    assert code == 0, err
    assert "MTTR" in out and "By severity" in out and "sev2" in out


async def test_weekly_digest_comes_from_a_temporal_schedule_kept_idempotently(
    client, slack, after_worker
):
    from config.deployment import ensure_digest_schedule

    schedule_id = "incident-digest-test"
    policy = follow_up_policy().model_copy(deep=True)
    policy.digest.every = timedelta(seconds=2)
    broadcast = slack.channel_by_name("incidents")
    assert broadcast is not None

    def digests() -> list[dict]:
        return [m for m in slack.messages(broadcast.id) if "Incident digest" in m.get("text", "")]

    before = len(digests())
    try:
        await ensure_digest_schedule(client, QUEUE, policy, schedule_id)
        await ensure_digest_schedule(client, QUEUE, policy, schedule_id)  # the same schedule
        await eventually(lambda: len(digests()) > before, timeout=10)
        assert "MTTA" in digests()[-1]["text"] and "Incidents since" in digests()[-1]["text"]
        policy.digest.every = timedelta(days=7)
        await ensure_digest_schedule(client, QUEUE, policy, schedule_id)
        described = await client.get_schedule_handle(schedule_id).describe()
        assert described.schedule.spec.intervals[0].every == timedelta(days=7)
    finally:
        policy.digest.enabled = False
        await ensure_digest_schedule(client, QUEUE, policy, schedule_id)
    with pytest.raises(RPCError) as gone:
        await client.get_schedule_handle(schedule_id).describe()
    assert gone.value.status is RPCStatusCode.NOT_FOUND


async def test_a_retried_digest_post_finds_the_message_it_already_sent(slack, tmp_path):
    import dataclasses

    from temporalio.testing import ActivityEnvironment

    from activities.services import ArchiveActivities
    from clients.slack import Slack
    from clients.slack_client import slack_client
    from localslack import BOT_TOKEN
    from workflows.resolution.metrics import IncidentMetrics

    archive = IncidentArchive(f"sqlite:///{tmp_path}/digest.db")
    web = slack_client(BOT_TOKEN, slack.base_url)
    activities = ArchiveActivities(archive, Slack(web, "incidents", lambda i: i))
    env = ActivityEnvironment()
    key = f"incident-digest-{uuid.uuid4().hex[:8]}"
    broadcast = slack.channel_by_name("incidents")
    assert broadcast is not None

    def posted() -> int:
        return sum(
            1
            for m in slack.messages(broadcast.id)
            if m.get("metadata", {}).get("event_payload", {}).get("key") == key
        )

    for attempt in (1, 2, 3):
        env.info = dataclasses.replace(env.info, workflow_id=key, attempt=attempt)
        await env.run(activities.post_digest, IncidentMetrics(incidents=3))
    assert posted() == 1

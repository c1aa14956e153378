"""A declaration costs what a hand-written workflow would: two workflow tasks, one activity.

The workflow code carries one path (Worker Versioning, no patch markers), the opening activity
records the incident in the archive, the start's memo already holds its list view, and its
declared time is when Temporal took it, worker or not.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from activities.slack import IncidentOpening
from clients.archive import IncidentArchive
from clients.slack import Slack
from clients.slack_client import slack_client
from config import Settings
from localslack import BOT_TOKEN, SlackEmulator
from starter.desk import IncidentDesk
from tests.support import eventually, until
from workflows.lifecycle import opening, states
from workflows.lifecycle.channel import incident_brief
from workflows.models import Declaration
from workflows.policy import default_policy
from workflows.requests import OpenChannel


def declaration(title: str) -> Declaration:
    return Declaration(title=title, severity="sev2", commander="U0ALICE01")


async def settled_history(client: Client, incident_id: str) -> list[HistoryEvent]:
    """The history once the incident waits for its first deadline."""

    async def events() -> list[HistoryEvent]:
        return list((await client.get_workflow_handle(incident_id).fetch_history()).events)

    def waiting(history: list[HistoryEvent]) -> bool:
        # The last workflow task set the deadline's timer (and answered the Update, if any).
        last = {
            EventType.EVENT_TYPE_TIMER_STARTED,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED,
        }
        timers = of_type(history, EventType.EVENT_TYPE_TIMER_STARTED)
        return bool(history) and history[-1].event_type in last and bool(timers)

    assert await until(events, waiting, timeout=10), "the incident never waited for a deadline"
    return await events()


def of_type(history: list[HistoryEvent], kind: EventType.ValueType) -> list[HistoryEvent]:
    return [event for event in history if event.event_type == kind]


async def test_a_declaration_takes_two_workflow_tasks_one_activity_and_no_patch_marker(
    client: Client, desk: IncidentDesk, settings: Settings
) -> None:
    state, _ = await desk.declare(declaration("Lean checkout"), wait=None)
    history = await settled_history(client, state.id)

    assert not of_type(history, EventType.EVENT_TYPE_MARKER_RECORDED)
    scheduled = of_type(history, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
    assert [e.activity_task_scheduled_event_attributes.activity_type.name for e in scheduled] == [
        "slack_open_incident"
    ]
    assert len(of_type(history, EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)) == 2
    # 46 in 0.1 before lean-opening, 15 with its patch marker and TemporalChangeVersion upsert
    assert len(history) == 13, [e.event_type for e in history]
    # The start's memo was the incident's list view already; only the channel changes it.
    memo_writes = of_type(history, EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED)
    opened = of_type(history, EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED)[0]
    assert [e.event_id > opened.event_id for e in memo_writes] == [True]

    # The opening recorded the incident in the archive, with no activity of its own.
    archive = IncidentArchive(settings.database_url.get_secret_value())
    record = await eventually(lambda: archive.get(state.id), timeout=5)
    assert (record.number, record.title, record.declared_at) == (
        state.number,
        "Lean checkout",
        state.declared_at,
    )


async def test_waiting_for_the_channel_spends_no_timer(client: Client, desk: IncidentDesk) -> None:
    state, _ = await desk.declare(declaration("Lean wait"))  # waits for the channel
    assert state.channel is not None
    history = await settled_history(client, state.id)
    # The one timer is the incident's next deadline, not the Update's wait.
    assert len(of_type(history, EventType.EVENT_TYPE_TIMER_STARTED)) == 1
    assert not of_type(history, EventType.EVENT_TYPE_TIMER_CANCELED)


async def test_the_declared_time_is_when_temporal_took_it_not_when_a_worker_came(
    client: Client, settings: Settings
) -> None:
    from worker import build_worker

    queue = f"late-{uuid.uuid4().hex[:8]}"
    desk = IncidentDesk(client, queue, default_policy())
    accepted = await desk.accept(declaration("Declared before any worker"))
    await asyncio.sleep(1.5)  # nobody polls the queue yet
    worker_came = datetime.now(UTC)
    late = settings.model_copy(update={"task_queue": queue})
    async with httpx.AsyncClient() as http, build_worker(client, late, http):
        opened = await until(
            lambda: desk.get(accepted.state.id), lambda s: s.channel is not None, timeout=10
        )
        assert opened, "no channel once a worker came"
        state = await desk.get(accepted.state.id)
    assert state.declared_at == accepted.state.declared_at < worker_came - timedelta(seconds=1)
    assert state.timeline[0].at == state.declared_at


async def test_an_archive_that_fails_does_not_hold_back_the_opening(
    slack: SlackEmulator, tmp_path: Path
) -> None:
    """The record is best effort: Slack's steps finish, and the workflow records it later."""
    policy = default_policy()
    now = datetime.now(UTC)
    state, outbox = states.start(7, "incident-7", declaration("Archive down"), policy, now)
    name = f"inc-archive-down-{uuid.uuid4().hex[:6]}"
    channel = OpenChannel(incident_id=state.id, label=state.label, title=state.title, name=name)
    request, _ = opening.request(state, policy, channel, incident_brief(state, policy), outbox)
    request.record = state
    broken = IncidentArchive(f"sqlite:///{tmp_path}/never-migrated.db")  # no table to write to
    incident_slack = Slack(
        slack_client(BOT_TOKEN, slack.base_url), "incidents", lambda i: f"http://127.0.0.1:8233/{i}"
    )
    opened = await ActivityEnvironment().run(
        IncidentOpening(incident_slack, broken).open_incident, request
    )
    assert opened.channel is not None and opened.channel.name == name
    assert set(opened.posted) == {"kickoff", "announcement"} and opened.problems == []
    assert not opened.recorded

"""A drill end to end, on the production worker with the Slack emulator and a paging receiver.

The drill runs the real workflow: its channel, topic and every message say DRILL, its
escalation tier fires on the compressed clock and pages nobody, and the archive keeps it out
of the figures.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client

from clients.archive import IncidentArchive
from config import Settings
from localslack import SlackEmulator
from starter.desk import IncidentDesk
from tests.support import eventually, upgrade_database
from tests.test_paging import ROUTING_KEY, Receiver, serving_receiver, settled
from tests.test_timers import escalating_policy, notices, posted_after, tier
from workflows.lifecycle import commands as cmd
from workflows.models import Declaration, IncidentState
from workflows.policy import DrillPolicy

TASK_QUEUE = "incidents-drill"
MARK = ":construction: DRILL · "


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    async with serving_receiver() as serving:
        yield serving


@pytest.fixture(scope="module")
def archive_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('drill-archive') / Path('incidents.db')}"
    upgrade_database(url)
    return url


@pytest.fixture(scope="module")
async def drill_worker(
    client: Client, worker: None, slack: SlackEmulator, receiver: Receiver, archive_url: str
) -> AsyncIterator[None]:
    """The production worker on a queue of its own, paging the receiver (which must stay
    silent) and archiving to a database of its own."""
    from worker import build_worker

    settings = Settings(
        task_queue=TASK_QUEUE,
        slack_api_url=slack.base_url,
        paging_url=receiver.pagerduty_url,
        paging_routing_key=ROUTING_KEY,
        webhook_url=receiver.webhook_url,
        database_url=archive_url,
        broadcast_channel="incidents",
    )
    async with httpx.AsyncClient() as http, build_worker(client, settings, http):
        yield


def incident_notices(slack: SlackEmulator, channel_id: str, state: IncidentState) -> list[dict]:
    return [
        m
        for m in slack.messages(channel_id)
        if m.get("metadata", {}).get("event_payload", {}).get("incident_id") == state.id
    ]


async def test_a_drill_runs_marked_on_a_compressed_clock_and_pages_nobody(
    client: Client,
    drill_worker: None,
    slack: SlackEmulator,
    receiver: Receiver,
    archive_url: str,
) -> None:
    # A paging tier after 30 s; the drill's clock runs ten times faster: 3 s.
    policy = escalating_policy(tier(30, "U0BOB0002", page=True))
    policy.drill = DrillPolicy(time_factor=0.1)
    desk = IncidentDesk(client, TASK_QUEUE, policy)
    state, created = await desk.declare(
        Declaration(title="Failover <practice>", severity="sev1", commander="U0ALICE01", drill=True)
    )
    assert created and state.drill
    assert state.channel is not None and state.channel.name.startswith("drill-inc-")
    channel = slack.channels[state.channel.id]
    assert channel.topic.startswith(MARK + "SEV1")
    assert "Failover &lt;practice&gt;" in channel.topic
    assert channel.purpose.startswith(MARK + f"INC-{state.number}")

    (escalated,) = await eventually(lambda: notices(slack, state, "escalated-"), timeout=20)
    assert posted_after(slack, state, escalated) < 20, "the 30 s tier fired on the drill's clock"
    await settled(desk, slack, state)  # everything queued with the escalation has run
    assert receiver.events(state.id) == [] and receiver.hooks(state.id) == []
    now = await desk.get(state.id)
    assert now.paged_at is None
    assert "page-skipped" in [e.kind for e in now.timeline]
    assert "U0BOB0002" in channel.members, "the tier still asks its people to join"

    # The summary the Temporal UI lists it under is its first run's (continue-as-new keeps
    # no summary; later runs show it as the first line of their current details).
    latest = await client.get_workflow_handle(state.id).describe()
    first_run = latest.raw_description.workflow_execution_info.first_run_id
    description = await client.get_workflow_handle(state.id, run_id=first_run).describe()
    assert (
        await description.static_summary() == f"DRILL INC-{state.number} SEV1 Failover <practice>"
    )

    await desk.command(state.id, cmd.Resolve(message="failover practised", by="U0ALICE01"))
    await eventually(lambda: notices(slack, state, "resolved-"), timeout=15)
    posted = incident_notices(slack, state.channel.id, state)
    broadcast = slack.channel_by_name("incidents")
    assert broadcast is not None
    announced = incident_notices(slack, broadcast.id, state)
    kinds = {m["metadata"]["event_payload"]["key"].rsplit("-", 1)[0] for m in posted + announced}
    assert {"kickoff", "announcement", "escalated", "update", "resolved"} <= kinds
    assert all(m["text"].startswith(MARK) for m in posted + announced)
    await settled(desk, slack, state)
    assert receiver.events(state.id) == [], "no resolve page follows a page never sent"

    archive = IncidentArchive(archive_url)
    record = await eventually(lambda: archive.get(state.id), timeout=15)
    assert record.drill
    assert archive.metrics(since=None, severity=None).incidents == 0

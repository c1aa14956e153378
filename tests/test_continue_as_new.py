"""History stays bounded: a dev server that suggests continue-as-new early, and the state and
numbering surviving the hand-over between runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from config import Settings
from localslack import SlackEmulator
from starter.desk import IncidentDesk
from tests.conftest import seconds_policy, start_dev_server
from tests.support import until, upgrade_database
from workflows.lifecycle import commands as cmd
from workflows.models import Declaration, Status

SUGGEST_AFTER = 60  # history events; a real server suggests at thousands


@pytest.fixture(scope="module")
async def own_slack() -> AsyncIterator[SlackEmulator]:
    """This module's own workspace: its server numbers incidents from 1 again."""
    async with SlackEmulator() as emulator:
        yield emulator


@pytest.fixture(scope="module")
async def short_history_desk(
    own_slack: SlackEmulator, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[IncidentDesk]:
    from worker import build_worker

    env = await start_dev_server(
        "--dynamic-config-value", f"limit.historyCount.suggestContinueAsNew={SUGGEST_AFTER}"
    )
    database_url = f"sqlite:///{tmp_path_factory.mktemp('can')}/incidents.db"
    upgrade_database(database_url)
    settings = Settings(
        task_queue="incidents-can", slack_api_url=own_slack.base_url, database_url=database_url
    )
    try:
        async with httpx.AsyncClient() as http, build_worker(env.client, settings, http):
            yield IncidentDesk(env.client, settings.task_queue, seconds_policy(update_every=0.3))
    finally:
        await env.shutdown()


async def test_continue_as_new_keeps_the_whole_incident(
    short_history_desk: IncidentDesk, own_slack: SlackEmulator
):
    desk = short_history_desk
    state, _ = await desk.declare(
        Declaration(title="Long haul", severity="sev2", commander="U0ALICE01", components=["api"])
    )
    handle = desk.client.get_workflow_handle(state.id)
    first_run = (await handle.describe()).run_id
    await desk.command(state.id, cmd.SetStatus(status=Status.IDENTIFIED, message="cache"))
    for i in range(25):
        await desk.command(state.id, cmd.PostUpdate(message=f"update {i}"))
    # Reminders keep firing while updates pause: timers must continue across runs too.
    await asyncio.sleep(1.2)
    state = await desk.command(state.id, cmd.AddActionItem(text="add an alert"))

    async def runs() -> int:
        count = 0
        async for _ in desk.client.list_workflows(f"WorkflowId = '{state.id}'"):
            count += 1
        return count

    assert (await handle.describe()).run_id != first_run
    assert await until(runs, lambda n: n >= 3)
    texts = [e.text for e in state.timeline if e.kind == "update"]
    assert texts == [f"update {i}" for i in range(25)]
    assert state.status is Status.IDENTIFIED and state.components == ["api"]
    assert state.channel is not None and state.action_items[0].text == "add an alert"
    assert state.channel is not None
    keys = [
        m["metadata"]["event_payload"]["key"]
        for m in own_slack.messages(state.channel.id)
        if m.get("metadata", {}).get("event_payload", {}).get("key", "").startswith("update_")
    ]
    assert keys, "the update cadence did not survive continue-as-new"
    assert len(set(keys)) == len(keys)  # no reminder doubled across runs
    history = await handle.fetch_history()
    assert len(history.events) < SUGGEST_AFTER * 3
    await desk.command(state.id, cmd.Resolve())  # the reminders stop with the test


async def test_numbers_stay_unique_and_dense_across_api_processes(
    short_history_desk: IncidentDesk,
):
    """Two API processes (two desks) declaring at once step past each other: numbering comes
    from visibility alone, with no singleton."""
    client = short_history_desk.client
    before = await IncidentDesk(client, short_history_desk.task_queue, seconds_policy()).accept(
        Declaration(title="Before the burst", severity="sev3")
    )
    # No cadence: sixty incidents reminding every 0.3 s would only load the machine.
    desks = [IncidentDesk(client, short_history_desk.task_queue, seconds_policy()) for _ in "ab"]
    results = await asyncio.gather(
        *(
            desk.accept(Declaration(title=f"Burst {i}", severity="sev3"))
            for i in range(30)
            for desk in desks
        )
    )
    numbers = sorted(accepted.state.number for accepted in results)
    assert len(set(numbers)) == 60 and numbers[0] > before.state.number
    assert numbers[-1] - numbers[0] < 60 + 10  # dense: only collisions between desks skip


async def test_a_retried_command_is_applied_once_even_across_continue_as_new(
    short_history_desk: IncidentDesk,
):
    """Temporal dedups an Update id within a run only; the incident carries the ids it applied."""
    desk = short_history_desk
    state, _ = await desk.declare(
        Declaration(title="Retried", severity="sev2", commander="U0ALICE01")
    )
    handle = desk.client.get_workflow_handle(state.id)
    first_run = (await handle.describe()).run_id
    once = cmd.PostUpdate(message="said once")
    await desk.command(state.id, once, request_key="client-request-1")
    for i in range(30):  # history grows past the suggestion: the incident continues as new
        await desk.command(state.id, cmd.PostUpdate(message=f"filler {i}"))
    assert await until(handle.describe, lambda d: d.run_id != first_run, timeout=20)
    retried = await desk.command(state.id, once, request_key="client-request-1")
    assert [e.text for e in retried.timeline].count("said once") == 1
    fresh = await desk.command(state.id, once, request_key="client-request-2")
    assert [e.text for e in fresh.timeline].count("said once") == 2


async def test_continuing_as_new_moves_an_incident_to_the_current_build(
    short_history_desk: IncidentDesk, own_slack: SlackEmulator
):
    """Pinned to its build within a run; the next run (continue-as-new) starts on the build
    that is current by then, carrying the whole state."""
    from tests.test_worker_versioning import builds_that_ran, set_current_version
    from worker import build_worker

    # No reminders: only the commands below grow its history, after the switch.
    desk = IncidentDesk(short_history_desk.client, short_history_desk.task_queue, seconds_policy())
    state, _ = await desk.declare(
        Declaration(title="Moves at the boundary", severity="sev2", commander="U0ALICE01")
    )
    first_run = (await desk.client.get_workflow_handle(state.id).describe()).run_id
    old = Settings().build_id
    new = Settings(task_queue=desk.task_queue, slack_api_url=own_slack.base_url, build_id="next")
    async with httpx.AsyncClient() as http, build_worker(desk.client, new, http):
        await set_current_version(desk.client, new.deployment_name, "next")
        try:
            for i in range(20):  # past the suggestion: once quiet, it continues as new
                await desk.command(state.id, cmd.PostUpdate(message=f"filler {i}"))
            await until(
                lambda: builds_that_ran(desk.client, state.id), lambda b: b == {"next"}, timeout=20
            )
            latest = await builds_that_ran(desk.client, state.id)
            first = await builds_that_ran(desk.client, state.id, first_run)
            print(f"{state.label}: first run on {sorted(first)}, latest run on {sorted(latest)}")
            assert (first, latest) == ({old}, {"next"})
            done = await desk.command(state.id, cmd.Resolve())
            assert [e.text for e in done.timeline if e.kind == "update"][-1] == "filler 19"
        finally:
            await set_current_version(desk.client, new.deployment_name, old)

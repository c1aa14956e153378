"""Declaring at the speed of Temporal: answered once durable, with or without a worker.

Most tests here declare on a task queue no worker polls: the answer must not depend on one.
Incident numbers are namespace-wide, so these incidents share the numbering with every other
test (which is the point: several desks and queues step past each other).
"""

from __future__ import annotations

import asyncio
import signal
import socket
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, Interceptor, OutboundInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter

from config import Settings
from starter.api.app import create_app
from starter.desk import IncidentDesk
from tests.conftest import temporal_binary
from tests.processes import DevServer, EmulatorProcess, Processes, WorkerProcess
from workflows.incident import IncidentInput
from workflows.lifecycle.numbering import claim_id
from workflows.models import Declaration
from workflows.policy import default_policy
from workflows.text import incident_id

TOKEN = "test-token-declare"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ANSWER_WITHIN = 1.0  # seconds: the bound for a declaration with no worker running


def app_client(settings: Settings, desk: IncidentDesk) -> httpx.AsyncClient:
    app = create_app(settings.model_copy(update={"api_tokens": TOKEN}), desk=desk)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api", timeout=60
    )


@pytest.fixture
async def idle_api(client: Client, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The API over a task queue that no worker polls."""
    queue = f"idle-{uuid.uuid4().hex[:8]}"
    desk = IncidentDesk(client, queue, default_policy())
    desk.wait_for_channel = timedelta(seconds=1)
    async with app_client(settings.model_copy(update={"task_queue": queue}), desk) as http:
        yield http


def body(title: str, **extra: Any) -> dict[str, Any]:
    return {"title": title, "severity": "sev2", "commander": "U0ALICE01", **extra}


async def test_without_a_worker_a_declaration_is_answered_at_once_and_can_be_read(idle_api):
    started = time.monotonic()
    response = await idle_api.post("/incidents", json=body("Nobody home"), headers=AUTH)
    took = time.monotonic() - started
    assert response.status_code == 202, response.text
    assert took < ANSWER_WITHIN, f"answered in {took:.2f}s"
    incident = response.json()
    assert incident["channel"] is None and incident["status"] == "investigating"

    # Waiting is bounded: with nobody to make the channel, still 202, not a hang.
    waited = await idle_api.post("/incidents?wait=true", json=body("Nobody"), headers=AUTH)
    assert waited.status_code == 202, waited.text

    fetched = await idle_api.get(response.headers["Location"], headers=AUTH)
    assert fetched.status_code == 200, fetched.text
    state = fetched.json()
    assert (state["id"], state["title"], state["channel"]) == (incident["id"], "Nobody home", None)
    assert [e["kind"] for e in state["timeline"]] == ["declared"]

    for _ in range(100):  # listed from visibility, which trails a little
        listing = await idle_api.get("/incidents", params={"text": "nobody home"}, headers=AUTH)
        if incident["id"] in {i["id"] for i in listing.json()["incidents"]}:
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail(f"{incident['id']} not listed: {listing.text}")


async def test_before_any_worker_the_incident_reads_as_declared_when_temporal_took_it(idle_api):
    """The answer, the read before any worker ran and the workflow's own first state are built
    by one function from one declared time: the moment Temporal accepted the start."""
    response = await idle_api.post("/incidents", json=body("Declared once"), headers=AUTH)
    assert response.status_code == 202, response.text
    fetched = await idle_api.get(response.headers["Location"], headers=AUTH)
    assert fetched.status_code == 200, fetched.text
    answered, read = response.json(), fetched.json()
    assert read["declared_at"] == answered["declared_at"]
    assert read["timeline"][0]["at"] == answered["timeline"][0]["at"]
    assert read["last_update_at"] == answered["last_update_at"]


def test_a_declaration_starts_at_its_accepted_time_wherever_its_state_is_built():
    accepted = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    declaration = Declaration(title="Late worker", severity="sev2", accepted_at=accepted)
    started = IncidentInput(number=7, policy=default_policy(), declaration=declaration)
    # The workflow's first task (or the desk's read of its start) comes later than that.
    state, outbox = started.first_state("incident-7", accepted + timedelta(minutes=3))
    assert state.declared_at == accepted and state.last_update_at == accepted
    assert outbox, "the opening's effects come with the state"
    carried = IncidentInput(number=7, policy=default_policy(), state=state)
    assert carried.first_state("incident-7", accepted + timedelta(days=1))[0] == state


async def test_fifty_concurrent_declarations_get_fifty_distinct_numbers(idle_api):
    tag = uuid.uuid4().hex[:6]
    answers = await asyncio.gather(
        *(
            idle_api.post("/incidents", json=body(f"Storm {tag} {i}"), headers=AUTH)
            for i in range(50)
        )
    )
    assert [a.status_code for a in answers] == [202] * 50, [a.text for a in answers if a.is_error]
    numbers = sorted(a.json()["number"] for a in answers)
    assert len(set(numbers)) == 50
    assert numbers[-1] - numbers[0] == 49  # one process, nothing failed: no gaps


async def test_fifty_concurrent_with_one_key_make_one_incident(idle_api, key):
    answers = await asyncio.gather(
        *(
            idle_api.post("/incidents", json=body(f"Alert {i}", idempotency_key=key), headers=AUTH)
            for i in range(50)
        )
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] * 49 + [202], [a.text for a in answers if a.is_error]
    assert len({a.json()["id"] for a in answers}) == 1
    # The same title for all: the one that won, as declared.
    assert len({a.json()["title"] for a in answers}) == 1
    # The next declaration takes the next number: the losers' candidates were given back.
    after = await idle_api.post("/incidents", json=body("After the storm"), headers=AUTH)
    assert after.json()["number"] == answers[0].json()["number"] + 1


async def test_a_stale_claim_for_a_vanished_incident_does_not_block_the_key(
    client: Client, settings: Settings, key: str
):
    """A declarer that died between claiming the key and starting its incident."""
    from workflows.lifecycle.numbering import MEMO_NUMBER, IncidentKeyClaim

    queue = f"idle-{uuid.uuid4().hex[:8]}"
    await client.start_workflow(
        IncidentKeyClaim.run,
        10_000_000,
        id=claim_id(key),
        task_queue=queue,
        memo={MEMO_NUMBER: 10_000_000},
    )
    desk = IncidentDesk(client, queue, default_policy())
    desk.intake.claim_grace = 0.0  # pretend the claim is old enough to be stale
    async with app_client(settings, desk) as http:
        answer = await http.post("/incidents", json=body("Late", idempotency_key=key), headers=AUTH)
    assert answer.status_code == 202, answer.text
    assert answer.json()["number"] != 10_000_000


@pytest.fixture
async def processes() -> AsyncIterator[Processes]:
    tracked = Processes()
    try:
        yield tracked
    finally:
        tracked.stop_all()


async def test_a_declaration_survives_api_and_temporal_restarts_and_a_late_worker_opens_it(
    tmp_path: Path, processes: Processes, settings: Settings
):
    server = DevServer(
        tmp_path / "temporal.db", tmp_path / "temporal.log", binary=temporal_binary()
    )
    processes.track(server.process)
    await server.start()
    queue = "incidents-late"
    local = settings.model_copy(update={"task_queue": queue})

    async with app_client(
        local, IncidentDesk(await server.connect(), queue, default_policy())
    ) as api:
        started = time.monotonic()
        response = await api.post("/incidents", json=body("Declared in the dark"), headers=AUTH)
        took = time.monotonic() - started
    assert response.status_code == 202, response.text
    assert took < ANSWER_WITHIN, f"answered in {took:.2f}s"
    incident = response.json()

    await server.restart(signal.SIGTERM)
    # A new API process: a new client and desk, nothing kept from the first.
    desk = IncidentDesk(await server.connect(), queue, default_policy())
    async with app_client(local, desk) as api:
        fetched = await api.get(f"/incidents/{incident['id']}", headers=AUTH)
        assert fetched.status_code == 200, fetched.text
        assert fetched.json()["channel"] is None
        again = await api.post("/incidents", json=body("Second in the dark"), headers=AUTH)
        assert again.json()["number"] == incident["number"] + 1  # the new desk found the top

        slack = EmulatorProcess(tmp_path / "localslack.log")
        processes.track(slack)
        await slack.started()
        worker = WorkerProcess(
            tmp_path / "worker.log",
            temporal_address=server.address,
            task_queue=queue,
            slack_api_url=slack.base_url,
        )
        processes.track(worker)
        await worker.started()
        for _ in range(200):
            state = (await api.get(f"/incidents/{incident['id']}", headers=AUTH)).json()
            if state["channel"]:
                break
            await asyncio.sleep(0.1)
        assert state["channel"], f"no channel once a worker ran:\n{worker.output()}"
    keys: set[str] = set()
    for _ in range(100):  # the channel exists first; its kickoff and the announcement follow
        workspace = await slack.state()
        keys = {
            m["metadata"]["event_payload"]["key"]
            for channel in workspace["channels"]
            for m in channel["messages"]
            if m.get("metadata", {}).get("event_payload", {}).get("incident_id") == incident["id"]
        }
        if {"announcement", "kickoff"} <= keys:
            return
        await asyncio.sleep(0.2)
    pytest.fail(f"Slack got {keys} once a worker ran, not the kickoff and the announcement")


async def test_an_oversized_declaration_is_refused_before_a_number_is_spent(idle_api):
    before = await idle_api.post("/incidents", json=body("Fine before"), headers=AUTH)
    many = body("Too much", components=[f"component-{n}" for n in range(3000)])
    refused = await idle_api.post("/incidents", json=many, headers=AUTH)
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"][0]["loc"] == ["body", "components"]
    assert "at most 50" in refused.json()["detail"][0]["msg"]
    huge = body("Too much", summary="x" * 300_000)
    too_big = await idle_api.post("/incidents", json=huge, headers=AUTH)
    assert too_big.status_code == 413, too_big.text
    assert "limit of 262144 bytes" in too_big.json()["detail"]
    after = await idle_api.post("/incidents", json=body("Fine after all"), headers=AUTH)
    assert after.json()["number"] == before.json()["number"] + 1, "a refusal spent a number"


async def test_temporal_unreachable_is_a_503_with_retry_after(settings: Settings):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    client = await Client.connect(address, lazy=True, data_converter=pydantic_data_converter)
    async with app_client(settings, IncidentDesk(client, "nowhere", default_policy())) as api:
        answer = await api.post("/incidents", json=body("Dark"), headers=AUTH)
    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"] == "1"
    assert "Temporal did not answer" in answer.json()["detail"]


class Requests(Interceptor, OutboundInterceptor):
    """What reaches Temporal's client: the names of the start and Update calls made."""

    def __init__(self) -> None:
        self.made: list[str] = []

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        self.next = next
        return self

    async def start_workflow(self, input: Any) -> Any:
        self.made.append("start")
        return await self.next.start_workflow(input)

    async def start_workflow_update(self, input: Any) -> Any:
        self.made.append("update")
        return await self.next.start_workflow_update(input)

    async def start_update_with_start_workflow(self, input: Any) -> Any:
        self.made.append("update-with-start")
        return await self.next.start_update_with_start_workflow(input)


async def test_a_declaration_that_waits_is_opened_in_the_incident_s_first_workflow_task(
    client: Client, settings: Settings, worker: None
):
    """One update-with-start: the opening Update reaches the worker with the start. A start and
    then an Update takes a task more whenever the worker takes the first task before the Update
    arrives: two histories of one incident, two costs of a replay."""
    requests = Requests()
    config = client.config()
    config["interceptors"] = [requests]
    seen = Client(**config)
    desk = IncidentDesk(seen, settings.task_queue, default_policy())
    for n in range(3):
        declared = Declaration(title=f"Opened at once {n}", severity="sev2", commander="U0ALICE01")
        state, created = await desk.declare(declared)
        assert created and state.channel is not None, state
        handle = client.get_workflow_handle(incident_id(state.number))
        kinds = [EventType.Name(e.event_type) async for e in handle.fetch_history_events()]
        accepted = kinds.index("EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED")
        assert kinds[:accepted].count("EVENT_TYPE_WORKFLOW_TASK_COMPLETED") == 1, kinds
    assert requests.made == ["update-with-start"] * 3


async def test_a_declaration_that_waits_for_no_worker_is_started_once_under_its_number(
    client: Client,
):
    """Given up on, update-with-start may or may not have started the incident: the desk makes
    sure with a plain start and knows its own start by its input, so it neither loses the
    declaration nor steps to another number leaving a twin behind."""
    queue = f"idle-{uuid.uuid4().hex[:8]}"
    desk = IncidentDesk(client, queue, default_policy())
    answers = []
    for title in ("Waited for nobody", "Waited again"):
        request = Declaration(title=title, severity="sev2", commander="U0ALICE01")
        accepted = await desk.accept(request, wait=timedelta(seconds=0.5))
        assert accepted.created and not accepted.opened and accepted.state.channel is None
        answers.append(accepted.state)
    assert answers[1].number > answers[0].number

    expected = sorted(incident_id(s.number) for s in answers)
    for _ in range(100):  # visibility trails a little
        listed = client.list_workflows(f'TaskQueue="{queue}"')
        started = sorted([w.id async for w in listed])
        if started == expected:
            break
        await asyncio.sleep(0.1)
    assert started == expected
    for state in answers:
        fetched = await desk.get(state.id)
        assert (fetched.title, fetched.declared_at) == (state.title, state.declared_at)

"""Private incidents, checked for leaks in every place the issue lists: a private channel whose
name carries no word of the title, nothing in the broadcast channel, the status page refused,
Temporal's memo, search attributes, summary and details without title or people, reads
answered only to members and admins (404 to anyone else), and no log line with the title.
Real parts: the session's dev server, worker and emulator, the API over ASGI."""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import partial
from typing import Any

import httpx
import pytest
import structlog
from fastapi import FastAPI
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client

from config import Settings
from localslack import SlackEmulator
from logs import configure_logging
from starter.api.app import create_app
from starter.desk import IncidentDesk
from tests.support import eventually, serve_http, serve_slack_app, until
from tests.test_cli import incident
from workflows.incident_types import members
from workflows.lifecycle.notices import heard
from workflows.lifecycle.opening import channel as channel_to_open
from workflows.lifecycle.states import start
from workflows.lifecycle.visibility import INCIDENT_COMMANDER
from workflows.models import Declaration
from workflows.policy import Policy, default_policy
from workflows.resolution.followup import report_documents

T0 = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
SERVICE = "test-token-private"
ADMIN = {"Authorization": f"Bearer {SERVICE}"}
ALICE, BOB, CAROL = "U0ALICE01", "U0BOB0002", "U0CAROL03"


def secret_title() -> str:
    return f"Payroll leak zebracorn {uuid.uuid4().hex[:8]}"


def test_a_private_channel_name_carries_no_word_of_the_title() -> None:
    declaration = Declaration(title="Payroll leak zebracorn", severity="sev2", private=True)
    state, effects = start(7, "incident-x", declaration, default_policy(), T0)
    opening = channel_to_open(state, default_policy())
    assert opening.private and opening.name.endswith("-7") and "payroll" not in opening.name
    kept = [str(getattr(effect, "audience", "")) for effect in heard(state, effects)]
    assert kept and not [a for a in kept if "broadcast" in a]


def test_a_private_report_is_emailed_only_where_its_type_says() -> None:
    policy = default_policy().model_dump()
    policy["severities"]["sev2"]["stakeholders"] = ["everyone@example.com"]
    policy["types"] = {"breach": {"private": True, "stakeholders": ["ciso@example.com"]}}
    typed = Policy.model_validate(policy)
    for fields, told in (
        ({}, ["everyone@example.com"]),
        ({"private": True}, None),
        ({"type": "breach"}, ["ciso@example.com"]),
    ):
        declaration = Declaration(title="Payroll leak", severity="sev2", **fields)
        state, _ = start(7, "incident-x", declaration, typed, T0)
        _, email = report_documents(state, typed, "report")
        assert (email.to if email else None) == told


@pytest.fixture(scope="module")
def app(settings: Settings, desk: IncidentDesk) -> FastAPI:
    return create_app(settings.model_copy(update={"api_tokens": SERVICE}), desk=desk)


@pytest.fixture(scope="module")
async def api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api", timeout=60) as http:
        yield http


async def personal(api: httpx.AsyncClient, user: str) -> dict[str, str]:
    made = await api.post("/tokens", json={"user": user}, headers=ADMIN)
    assert made.status_code == 201, made.text
    return {"Authorization": f"Bearer {made.json()['token']}"}


async def declare_private(api: httpx.AsyncClient, title: str) -> dict[str, Any]:
    body = {"title": title, "severity": "sev2", "by": ALICE, "private": True}
    answer = await api.post("/incidents", params={"wait": "true"}, json=body, headers=ADMIN)
    assert answer.status_code == 201, answer.text
    incident: dict[str, Any] = answer.json()
    return incident


async def test_a_private_incident_gets_a_private_channel_and_nothing_in_the_broadcast(
    api: httpx.AsyncClient, slack: SlackEmulator
) -> None:
    title = secret_title()
    incident = await declare_private(api, title)
    assert incident["private"] is True
    channel = slack.channels[incident["channel"]["id"]]
    assert channel.is_private and "zebracorn" not in channel.name and "payroll" not in channel.name
    assert channel.name.endswith(f"-{incident['number']}")
    await eventually(lambda: any("declared" in str(m) for m in slack.messages(channel.id)))
    (broadcast,) = [c for c in slack.channels.values() if c.name == "incidents"]
    told = [m for m in slack.messages(broadcast.id) if incident["label"] in str(m)]
    assert told == [] and all("zebracorn" not in str(m) for m in slack.messages(broadcast.id))

    public = await api.post(
        f"/incidents/{incident['id']}/public", json={"message": "We are on it"}, headers=ADMIN
    )
    assert public.status_code == 409, public.text
    assert "private incident never goes on the status page" in public.text
    body = {"title": title, "severity": "sev2", "private": True, "public": {"message": "Down"}}
    refused = await api.post("/incidents", json=body, headers=ADMIN)
    assert refused.status_code == 422 and "private incident never goes" in refused.text
    for page in ("/status", "/status.json", "/status/feed.atom"):
        shown = await api.get(page)
        assert shown.status_code == 200 and "zebracorn" not in shown.text, page
    figures = await api.get("/metrics/incidents", headers=ADMIN)
    assert figures.status_code == 200 and "zebracorn" not in figures.text
    assert figures.json()["incidents"] >= 1, "counted, without its name"


async def test_temporal_shows_no_title_people_or_text_of_a_private_incident(
    api: httpx.AsyncClient, client: Client
) -> None:
    title = secret_title()
    body = {"title": title, "severity": "sev2", "by": ALICE, "private": True, "commander": BOB}
    body |= {"summary": "Salaries of wombatkin exposed", "responders": [CAROL]}
    answer = await api.post("/incidents", params={"wait": "true"}, json=body, headers=ADMIN)
    assert answer.status_code == 201, answer.text
    incident = answer.json()
    handle = client.get_workflow_handle(incident["id"])
    assert await until(handle.describe, lambda d: not d.raw_description.pending_activities)
    described = await handle.describe()
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    memo = await described.memo()
    seen = " ".join([str(described.raw_description), str(metadata), str(memo)])
    for secret in ("zebracorn", "wombatkin", ALICE, BOB, CAROL):
        assert secret not in seen, f"{secret} is in Temporal's describe output"
    assert await described.static_summary() == f"Private incident {incident['label']}"
    assert memo["incident"]["title"] == f"Private incident {incident['label']}"
    assert memo["incident"]["private"] is True
    assert described.typed_search_attributes.get(INCIDENT_COMMANDER) is None
    assert "not shown (private)" in metadata.current_details
    shown = [str(e.user_metadata) async for e in handle.fetch_history_events()]
    assert not [s for s in shown if any(x in s for x in ("zebracorn", ALICE, BOB, CAROL))]


async def test_reads_answer_a_private_incident_to_members_and_admins_only(
    api: httpx.AsyncClient, desk: IncidentDesk
) -> None:
    title = secret_title()
    incident = await declare_private(api, title)
    ref = incident["id"]
    outsider, member = await personal(api, "@bob"), await personal(api, ALICE)
    for caller, known in ((outsider, False), (member, True), (ADMIN, True)):
        got = await api.get(f"/incidents/{ref}", headers=caller)
        assert got.status_code == (200 if known else 404), got.text
        if not known:
            assert got.json()["detail"] == f"no incident {ref}", "as if it did not exist"
        else:
            assert got.json()["title"] == title
        listed = await api.get("/incidents", params={"limit": 1000}, headers=caller)
        found = [i for i in listed.json()["incidents"] if i["id"] == ref]
        assert [i["title"] for i in found] == ([title] if known else [])
        report = await api.get(f"/incidents/{ref}/report", headers=caller)
        assert report.status_code == 404
        assert ("until resolved" in report.text) is known
    # The admin and the member first: the outsider's answer counts once the record exists.
    for caller, known in ((ADMIN, True), (member, True), (outsider, False)):
        answered = partial(search, api, title, caller)
        assert await until(answered, partial(lists, ref, known)), f"listed: {known}"
    slack_list = await desk.list(open=True, sees=lambda state: BOB in members(state))
    assert ref not in {i.id for i in slack_list}
    mine = await desk.list(open=True, sees=lambda state: ALICE in members(state))
    assert ref in {i.id for i in mine}


async def search(api: httpx.AsyncClient, title: str, caller: dict[str, str]) -> str:
    found = await api.get("/archive/incidents", params={"q": title}, headers=caller)
    assert found.status_code == 200, found.text
    return found.text


def lists(ref: str, known: bool, text: str) -> bool:
    return (ref in text) is known


async def test_no_log_line_carries_a_private_title_at_debug_level(
    api: httpx.AsyncClient, settings: Settings, slack: SlackEmulator
) -> None:
    root = logging.getLogger()
    handlers, level, config = list(root.handlers), root.level, structlog.get_config()
    configure_logging(settings.model_copy(update={"log_level": "debug"}))
    lines = io.StringIO()
    root.handlers[0].setStream(lines)  # type: ignore[attr-defined]
    try:
        incident = await declare_private(api, "Payroll leak zebracorn in the logs")
        channel = incident["channel"]["id"]
        await eventually(lambda: len(slack.messages(channel)) >= 1)
        acknowledge = f"/incidents/{incident['id']}/acknowledge"
        await api.post(acknowledge, json={"by": ALICE}, headers=ADMIN)
        await eventually(lambda: "incident_command" in lines.getvalue())
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.configure(**config)
    logged = lines.getvalue()
    assert "incident_declared" in logged and "DEBUG" in logged.upper(), "debug lines were kept"
    assert "zebracorn" not in logged.lower()


async def test_slack_lists_a_private_incident_to_its_members_and_finds_it_from_its_channel(
    settings: Settings, desk: IncidentDesk, slack: SlackEmulator
) -> None:
    declaration = Declaration(
        title=secret_title(), severity="sev3", private=True, commander=ALICE, declared_by=ALICE
    )
    state, _ = await desk.declare(declaration)
    channel = slack.channels[await eventually(lambda: _channel_id(slack, state.label))]
    assert channel.is_private and ALICE in channel.members and BOB not in channel.members
    async with serve_slack_app(settings, desk, slack, "test-signing-secret-private"):
        listed = {
            user: await _slash(slack, user, "general", "/incident list") for user in (ALICE, BOB)
        }
        assert f"*{state.label}*" in listed[ALICE] and state.title in listed[ALICE]
        assert f"*{state.label}*" not in listed[BOB] and state.title not in listed[BOB]
        acked = await _slash(slack, ALICE, channel.id, "/incident ack")
        assert "acknowledged" in acked.lower(), acked
    assert (await desk.get(state.id)).acknowledged_by == ALICE


def _channel_id(slack: SlackEmulator, label: str) -> str | None:
    """The private channel the bot made for ``label`` (its purpose names the incident)."""
    for channel in slack.channels.values():
        if channel.is_private and label in str(channel.purpose):
            return channel.id
    return None


async def _slash(slack: SlackEmulator, user: str, channel: str, text: str) -> str:
    """A slash command typed by ``user`` in ``channel`` (a name or id): the ephemeral answer."""
    found = slack.channel_by_name(channel)
    seen = len(slack.console.replies)
    sent = await slack.console.slash(slack.workspace, user, found.id if found else channel, text)
    assert sent.status == 200, sent.body
    await eventually(lambda: len(slack.console.replies) > seen, timeout=30)
    return str(slack.console.replies[seen].text)


async def test_the_cli_declares_a_private_incident(app: FastAPI, slack: SlackEmulator) -> None:
    async with serve_http(app) as url:
        title = secret_title()
        done = await incident(
            "declare", title, "-s", "sev3", "--private", "--json", url=url, token=SERVICE
        )
        assert done.code == 0, done.err
        declared = done.json()
        assert declared["private"] is True and declared["title"] == title
        assert slack.channels[declared["channel"]["id"]].is_private


async def test_the_slack_form_declares_a_private_incident(
    settings: Settings, desk: IncidentDesk, slack: SlackEmulator
) -> None:
    title = secret_title()
    general = slack.channel_by_name("general")
    assert general is not None
    async with serve_slack_app(settings, desk, slack, "test-signing-secret-private"):
        sent = await slack.console.slash(slack.workspace, ALICE, general.id, "/incident declare")
        assert sent.status == 200
        view = await eventually(lambda: _open_view(slack, ALICE))
        (seen_by,) = [b for b in view["blocks"] if b["block_id"] == "private"]
        assert [o["value"] for o in seen_by["element"]["options"]] == ["everyone", "private"]
        answers = {"title": title, "severity": "sev3", "private": "private"}
        done = await slack.console.submit(slack.workspace, view["id"], answers)
        assert done.status == 200 and done.json is None, done.body
        channel = await eventually(lambda: _made_for(slack, title), timeout=30)
    assert channel.is_private and "zebracorn" not in channel.name


def _made_for(slack: SlackEmulator, title: str) -> Any:  # its purpose (the bot's) names it
    return next((c for c in slack.channels.values() if title in c.purpose), None)


def _open_view(slack: SlackEmulator, user: str) -> dict[str, Any] | None:
    views = [
        v["view"]
        for v in slack.workspace.views.values()
        if v["open"] and v["user"] == user and v["view"]["callback_id"] == "incident_declare"
    ]
    return views[-1] if views else None


async def test_a_private_incident_nobody_can_read_now_is_left_out_not_the_whole_list(
    client: Client, settings: Settings, desk: IncidentDesk
) -> None:
    """Its worker is gone, so who its members are cannot be asked: the list still answers,
    without it (fail closed), instead of failing for every incident."""
    from worker import build_worker

    queue = f"gone-{uuid.uuid4().hex[:8]}"
    gone = IncidentDesk(client, queue, default_policy())
    declaration = Declaration(
        title=secret_title(), severity="sev2", declared_by=ALICE, private=True
    )
    its_settings = settings.model_copy(update={"task_queue": queue})
    async with httpx.AsyncClient() as http, build_worker(client, its_settings, http):
        declared, _ = await gone.declare(declaration)
        assert declared.channel is not None, "a worker ran it, then went"
    listed = await desk.list(limit=1000, sees=lambda state: True)
    assert declared.id not in {i.id for i in listed}
    assert listed, "the readable incidents are still listed"

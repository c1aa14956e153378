"""Escalation to whoever is on call, end to end: the session's dev server and worker, schedule
workflows on a seconds-scale rotation, the API in front of them and the Slack emulator over
HTTP. Each test has schedules of its own (their workflow ids are namespace-wide)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import icalendar
import pytest
from temporalio.client import Client

from config import Settings
from localslack import SlackEmulator
from starter.api.app import create_app
from starter.desk import IncidentDesk
from tests.conftest import TASK_QUEUE, seconds_policy
from tests.support import eventually, serve_http, serve_slack_app
from tests.test_cli import incident
from workflows.effects import Audience, Invite, Notice, Page, PageAction, Post, ReachOnCall
from workflows.escalation import tiers
from workflows.escalation.deadlines import Deadline
from workflows.lifecycle import opening, states
from workflows.lifecycle.channel import incident_brief
from workflows.models import Declaration, IncidentState
from workflows.oncall.rotation import ScheduleInput, ScheduleWorkflow, schedule_workflow_id
from workflows.policy import Policy

TOKEN = "test-token-oncall"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ALICE, BOB, CAROL, DAVE = "U0ALICE01", "U0BOB0002", "U0CAROL03", "U0DAVE004"
SHIFT = 8.0  # seconds: long enough for a tier to fire well inside a shift on a busy machine
PARIS = ZoneInfo("Europe/Paris")
T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
T1 = T0 + timedelta(days=30)


def schedule(people: list[str], start: datetime, shift: object = SHIFT, zone: str = "UTC") -> Any:
    return {"timezone": zone, "people": people, "shift": shift, "start": start.isoformat()}


def on_call_policy(schedules: dict[str, Any], *tiers: dict[str, Any]) -> Policy:
    policy = seconds_policy().model_dump()
    for severity in policy["severities"].values():
        severity["escalation"] = list(tiers)
    return Policy.model_validate({**policy, "schedules": schedules})


async def start_schedules(client: Client, policy: Policy) -> None:
    """What the worker does at start for the policy's schedules (config/deployment.py), for
    these schedules only (the session's other tests keep theirs), until each has its people."""
    for name, written in policy.schedules.items():
        handle = await client.start_workflow(
            ScheduleWorkflow.run,
            ScheduleInput(name=name, written=written),
            id=schedule_workflow_id(name),
            task_queue=TASK_QUEUE,
        )
        for _ in range(100):
            if (await handle.query(ScheduleWorkflow.roster)).definitions:
                break
            await asyncio.sleep(0.05)


@pytest.fixture
def name() -> str:
    return f"pay-{uuid.uuid4().hex[:8]}"


async def api_for(settings: Settings, desk: IncidentDesk) -> httpx.AsyncClient:
    app = create_app(settings.model_copy(update={"api_tokens": TOKEN}), desk=desk)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


@pytest.fixture
def stack(client: Client, settings: Settings, worker: None) -> tuple[Client, Settings]:
    """The session's dev server and worker, and its settings (the emulator's URL)."""
    return client, settings


async def declare(client: Client, policy: Policy, title: str) -> IncidentState:
    desk = IncidentDesk(client, TASK_QUEUE, policy)
    state, _ = await desk.declare(
        Declaration(title=f"{title} {uuid.uuid4().hex[:6]}", severity="sev1", commander=DAVE)
    )
    return state


async def timeline(client: Client, policy: Policy, incident: str, kind: str) -> list[str]:
    state = await IncidentDesk(client, TASK_QUEUE, policy).get(incident)
    return [entry.text for entry in state.timeline if entry.kind == kind]


def direct_messages(slack: SlackEmulator, user: str, label: str) -> list[dict[str, Any]]:
    """The bot's direct messages to ``user`` about the incident labelled ``label``."""
    ims = [c for c in slack.channels.values() if c.is_im and user in c.members]
    return [m for c in ims for m in c.messages if label in m.get("text", "")]


def test_a_tier_without_oncall_entries_pages_messages_invites_and_posts_at_once():
    policy = on_call_policy({}, {"after": 60, "notify": [ALICE, "S0ONCALL1"], "page": True})
    state, _ = states.start(1, "incident-1", Declaration(title="x", severity="sev1"), policy, T0)
    effects = tiers.fire(state, policy, Deadline.ESCALATION, T0 + timedelta(minutes=1))
    assert not [e for e in effects if isinstance(e, ReachOnCall)]
    page, dm, invite, notice = effects[:4]
    assert page == Page(action=PageAction.TRIGGER, targets=[ALICE, "S0ONCALL1"])
    assert isinstance(dm, Post) and dm.notice is Notice.PAGED and dm.mentions == [ALICE]
    assert dm.audience == [Audience.OWNER], "a user group is paged, not messaged"
    assert invite == Invite(users=[ALICE, "S0ONCALL1"])
    assert isinstance(notice, Post) and notice.notice is Notice.ESCALATED


def test_an_oncall_tier_asks_when_it_fires_and_then_names_each_person_once_with_why():
    policy = on_call_policy(
        {"a": schedule([ALICE], T0), "b": schedule([ALICE], T0), "gap": schedule([BOB], T1)},
        {"after": 60, "notify": ["oncall:a", "oncall:b", "oncall:gap", CAROL], "page": True},
    )
    state, _ = states.start(1, "incident-1", Declaration(title="x", severity="sev1"), policy, T0)
    fired = T0 + timedelta(minutes=1)
    (asked,) = [
        e
        for e in tiers.fire(state, policy, Deadline.ESCALATION, fired)
        if e.kind == "reach_on_call"
    ]
    assert isinstance(asked, ReachOnCall) and asked.asked.at == fired
    assert list(asked.asked.schedules) == ["a", "b", "gap"]
    effects = tiers.reach(state, policy, asked, {"a": ALICE, "b": ALICE, "gap": None}, fired)
    assert Page(action=PageAction.TRIGGER, targets=[ALICE, CAROL]) in effects
    notice = effects[-1]
    assert isinstance(notice, Post) and notice.mentions == [ALICE, CAROL]
    assert notice.why == {ALICE: "on call for a"}
    assert [e.text for e in state.timeline if e.kind == "on_call"] == [
        f"<@{ALICE}>, on call for a",
        "Nobody on call for gap: not notified",
    ]


def test_an_incident_declared_past_an_oncall_tier_asks_once_the_channel_is_open():
    policy = on_call_policy({"a": schedule([ALICE], T0)}, {"after": 60, "notify": ["oncall:a"]})
    declaration = Declaration(title="x", severity="sev1", escalation_level=1)
    state, effects = states.start(1, "incident-1", declaration, policy, T0)
    assert [e for e in effects if isinstance(e, ReachOnCall)], "asked, not notified at once"
    channel, brief = opening.channel(state, policy), incident_brief(state, policy)
    _, rest = opening.request(state, policy, channel, brief, effects)
    assert [e for e in rest if isinstance(e, ReachOnCall)], "run after the opening"


def next_boundary(start: datetime, shift: float) -> datetime:
    """The next shift boundary of a rotation that began at ``start``, at least 0.5 s away."""
    now = datetime.now(UTC) + timedelta(seconds=0.5)
    passed = (now - start).total_seconds() // shift + 1
    return start + timedelta(seconds=passed * shift)


async def test_a_tier_reaches_whoever_is_on_call_when_it_fires_before_and_after_a_handoff(
    stack: tuple[Client, Settings], slack: SlackEmulator, name: str
):
    client, _ = stack
    start = datetime.now(UTC).replace(microsecond=0)
    first = {"after": 1, "notify": [f"oncall:{name}"], "page": True}
    second = {"after": SHIFT, "notify": [f"oncall:{name}"]}
    policy = on_call_policy({name: schedule([ALICE, BOB], start)}, first, second)
    await start_schedules(client, policy)
    boundary = next_boundary(start, SHIFT)
    alice_on_call = (boundary - start).total_seconds() // SHIFT % 2 == 0
    await asyncio.sleep((boundary - datetime.now(UTC)).total_seconds() + 0.2)
    state = await declare(client, policy, "On call")

    async def reached() -> list[str]:
        return await timeline(client, policy, state.id, "on_call")

    expected = [ALICE, BOB] if alice_on_call else [BOB, ALICE]
    said = [f"<@{who}>, on call for {name}" for who in expected]
    for _ in range(100):
        if len(await reached()) == 2:
            break
        await asyncio.sleep(0.2)
    assert await reached() == said
    # The page went to the person on call then, with an Acknowledge button in their DM, and
    # the channel says who was told and why.
    (dm,) = await eventually(lambda: direct_messages(slack, expected[0], state.label))
    buttons = [
        e["action_id"] for b in dm["blocks"] if b["type"] == "actions" for e in b["elements"]
    ]
    assert "incident_acknowledge" in buttons
    channel = (await IncidentDesk(client, TASK_QUEUE, policy).get(state.id)).channel
    assert channel is not None
    texts = [m.get("text", "") for m in slack.messages(channel.id)]
    assert any(said[0] in text and "escalated to level 1" in text for text in texts)
    assert set(expected) <= set(slack.channels[channel.id].members)


async def test_an_override_wins_from_the_moment_it_is_answered(
    stack: tuple[Client, Settings], slack: SlackEmulator, name: str
):
    client, settings = stack
    start = datetime.now(UTC) - timedelta(days=1)
    policy = on_call_policy(
        {name: schedule([ALICE], start, "1d")},
        {"after": 1, "notify": [f"oncall:{name}"], "page": True},
    )
    await start_schedules(client, policy)
    async with await api_for(settings, IncidentDesk(client, TASK_QUEUE, policy)) as api:
        now = datetime.now(UTC)
        body = {
            "user": "@carol",
            "start": (now - timedelta(hours=1)).isoformat(),  # stepping in late: from now
            "end": (now + timedelta(hours=1)).isoformat(),
        }
        made = await api.post(f"/schedules/{name}/overrides", json=body, headers=AUTH)
        assert made.status_code == 201, made.text
        override = made.json()
        assert isinstance(override["id"], str) and override["user"] == CAROL
        who = (await api.get("/oncall", headers=AUTH)).json()["schedules"]
        assert {"name": name, "on_call": CAROL, "next": ALICE} == {
            k: v for k, v in next(s for s in who if s["name"] == name).items() if k != "until"
        }
        preview = await api.get("/policy/preview", params={"severity": "sev1"}, headers=AUTH)
        (answer,) = [step for step in preview.json()["steps"] if step["what"] == "on call"]
        assert answer["who"] == [CAROL] and answer["after"] == 1.0
        assert answer["text"] == f"on call for {name} (overrides included)"
        state = await declare(client, policy, "Override")
        said = f"<@{CAROL}>, on call for {name}"

        async def heard() -> list[str]:
            return await timeline(client, policy, state.id, "on_call")

        for _ in range(50):
            if await heard():
                break
            await asyncio.sleep(0.2)
        assert await heard() == [said]
        await eventually(lambda: direct_messages(slack, CAROL, state.label))
        assert not direct_messages(slack, ALICE, state.label)
        gone = await api.delete(f"/schedules/{name}/overrides/{override['id']}", headers=AUTH)
        assert gone.status_code == 200 and gone.json() == override
        again = await api.delete(f"/schedules/{name}/overrides/{override['id']}", headers=AUTH)
        assert again.status_code == 404


async def test_nobody_on_call_is_said_and_the_rest_of_the_tier_still_hears(
    stack: tuple[Client, Settings], slack: SlackEmulator, name: str
):
    client, settings = stack
    later = datetime.now(UTC) + timedelta(days=2)  # the rotation has not begun: a gap
    policy = on_call_policy(
        {name: schedule([ALICE], later, "1d")},
        {"after": 1, "notify": [f"oncall:{name}", BOB], "page": True},
    )
    await start_schedules(client, policy)
    async with await api_for(settings, IncidentDesk(client, TASK_QUEUE, policy)) as api:
        preview = await api.get("/policy/preview", params={"severity": "sev1"}, headers=AUTH)
    (warning,) = preview.json()["warnings"]
    assert warning.startswith(f"schedule {name}: nobody on call ") and "(UTC)" in warning
    state = await declare(client, policy, "Gap")

    async def noted() -> list[str]:
        return await timeline(client, policy, state.id, "on_call")

    for _ in range(50):
        if await noted():
            break
        await asyncio.sleep(0.2)
    assert await noted() == [f"Nobody on call for {name}: not notified"]
    await eventually(lambda: direct_messages(slack, BOB, state.label))
    channel = (await IncidentDesk(client, TASK_QUEUE, policy).get(state.id)).channel
    assert channel is not None and BOB in slack.channels[channel.id].members
    assert ALICE not in slack.channels[channel.id].members


async def test_the_calendar_feed_keeps_a_weekly_0900_handoff_at_0900_across_daylight_saving(
    stack: tuple[Client, Settings], name: str
):
    client, settings = stack
    start = datetime(2027, 3, 1, 9, 0, tzinfo=PARIS)  # Paris moves to summer time on 28 March
    policy = on_call_policy({name: schedule([ALICE, BOB], start, "1w", "Europe/Paris")})
    await start_schedules(client, policy)
    async with await api_for(settings, IncidentDesk(client, TASK_QUEUE, policy)) as api:
        window = {"from": "2027-03-15T00:00:00+00:00", "to": "2027-04-12T00:00:00+00:00"}
        feed = await api.get(f"/schedules/{name}.ics", params={**window, "token": TOKEN})
        assert feed.status_code == 200, feed.text
        assert feed.headers["content-type"].startswith("text/calendar")
        events = icalendar.Calendar.from_ical(feed.content).walk("VEVENT")
        starts = [event.decoded("dtstart") for event in events]
        assert [s.astimezone(PARIS).strftime("%a %H:%M") for s in starts[1:]] == ["Mon 09:00"] * 4
        assert [s.astimezone(UTC).hour for s in starts[1:]] == [8, 8, 7, 7]  # UTC+1, then +2
        assert [str(e["summary"]) for e in events][1:3] == [
            f"{ALICE} on call for {name}",
            f"{BOB} on call for {name}",
        ]
        mine = await api.get("/people/@alice/oncall.ics", params=window, headers=AUTH)
        assert mine.status_code == 200
        alice = icalendar.Calendar.from_ical(mine.content).walk("VEVENT")
        assert {str(e["summary"]) for e in alice} == {f"On call for {name}"}
        assert (await api.get(f"/schedules/{name}.ics")).status_code == 401
        wrong = await api.get(f"/schedules/{name}.ics", params={"token": "nope"})
        assert wrong.status_code == 401


async def test_the_on_call_routes_answer_201_404_409_422_and_401(
    stack: tuple[Client, Settings], name: str
):
    client, settings = stack
    start = datetime.now(UTC) - timedelta(days=1)
    policy = on_call_policy({name: schedule([ALICE, BOB], start, "1d")})
    await start_schedules(client, policy)
    async with await api_for(settings, IncidentDesk(client, TASK_QUEUE, policy)) as api:
        now = datetime.now(UTC)
        body = {
            "user": BOB,
            "start": now.isoformat(),
            "end": (now + timedelta(hours=2)).isoformat(),
        }
        path = f"/schedules/{name}/overrides"
        assert (await api.post(path, json=body)).status_code == 401
        keyed = {**AUTH, "Idempotency-Key": f"key-{name}"}
        first = await api.post(path, json=body, headers=keyed)
        again = await api.post(path, json=body, headers=keyed)
        assert first.status_code == again.status_code == 201
        assert first.json()["id"] == again.json()["id"], "a retry makes the override once"
        unknown = await api.post("/schedules/nope/overrides", json=body, headers=AUTH)
        assert unknown.status_code == 404
        naive = {**body, "end": "2026-12-08T09:00:00"}
        assert (await api.post(path, json=naive, headers=AUTH)).status_code == 422
        nobody = await api.post(path, json={**body, "user": "@nobody"}, headers=AUTH)
        assert nobody.status_code == 422 and "@nobody" in nobody.text
        over = {**body, "end": (now - timedelta(hours=1)).isoformat()}
        refused = await api.post(path, json=over, headers=AUTH)
        assert refused.status_code == 409 and "end after it starts" in refused.text
        shifts = await api.get(
            f"/schedules/{name}/shifts",
            params={"from": now.isoformat(), "to": (now + timedelta(hours=3)).isoformat()},
            headers=AUTH,
        )
        assert shifts.status_code == 200
        assert shifts.json()["shifts"][0]["user"] == BOB
        assert shifts.json()["shifts"][0]["override"] is True
        assert (await api.get("/schedules/nope/shifts", headers=AUTH)).status_code == 404


async def test_slack_oncall_answers_ephemerally_and_a_page_dm_acknowledges_the_incident(
    stack: tuple[Client, Settings], slack: SlackEmulator, name: str
):
    client, settings = stack
    policy = on_call_policy(
        {name: schedule([ALICE], datetime.now(UTC) - timedelta(days=1), "1d")},
        {"after": 1, "notify": [f"oncall:{name}"], "page": True},
    )
    await start_schedules(client, policy)
    desk = IncidentDesk(client, TASK_QUEUE, policy)
    general = slack.channel_by_name("general")
    assert general is not None
    async with serve_slack_app(settings, desk, slack, "test-oncall-secret"):

        async def typed(text: str) -> str:
            seen = len(slack.console.replies)
            sent = await slack.console.slash(slack.workspace, BOB, general.id, text)
            assert sent.status == 200, sent.body
            await eventually(lambda: len(slack.console.replies) > seen, timeout=30)
            reply = slack.console.replies[seen]
            assert reply.user == BOB and reply.response_type == "ephemeral"
            return str(reply.text)

        assert f"*{name}*: <@{ALICE}> until" in await typed("/oncall")
        override = await typed(f"/oncall override {name} <@{CAROL}|carol> for 1h")
        assert override.startswith("Override ") and f"<@{CAROL}> on call from" in override
        assert "no schedule 'nope'" in await typed(f"/oncall override nope <@{CAROL}> for 1h")
        assert "is not a duration" in await typed(f"/oncall override {name} @carol for ever")
        assert f"*{name}*: <@{CAROL}> until" in await typed("/oncall")
        state = await declare(client, policy, "Slack page")
        (dm,) = await eventually(lambda: direct_messages(slack, CAROL, state.label), timeout=30)
        seen = len(slack.console.replies)
        button = {"action_id": "incident_acknowledge", "block_id": "b", "value": state.id}
        direct = next(c for c in slack.channels.values() if c.is_im and CAROL in c.members)
        await slack.console.click(slack.workspace, CAROL, direct.id, dm["ts"], button)
        await eventually(lambda: len(slack.console.replies) > seen, timeout=30)
        acknowledged = await desk.get(state.id)
        assert acknowledged.acknowledged_by == CAROL


async def test_the_cli_shows_who_is_on_call_and_makes_and_removes_an_override(
    stack: tuple[Client, Settings], name: str
):
    client, settings = stack
    policy = on_call_policy({name: schedule([ALICE, BOB], datetime.now(UTC), "1d")})
    await start_schedules(client, policy)
    desk = IncidentDesk(client, TASK_QUEUE, policy)
    async with serve_http(
        create_app(settings.model_copy(update={"api_tokens": TOKEN}), desk)
    ) as url:

        async def cli(*args: str) -> Any:
            return await incident("oncall", *args, url=url, token=TOKEN)

        made = await cli("override", name, "@dave", "for", "2h", "--json")
        assert made.code == 0, made.err
        assert made.json()["user"] == DAVE and made.json()["by"] == "U0BOB0002"
        listed = (await cli("--json")).json()["schedules"]
        assert next(s for s in listed if s["name"] == name)["on_call"] == DAVE
        shown = await cli()
        assert name in shown.out and DAVE in shown.out
        shifts = await cli("shifts", name)
        assert "override" in shifts.out and DAVE in shifts.out
        removed = await cli("remove", name, made.json()["id"])
        assert removed.code == 0 and "removed" in removed.out
        bad = await cli("override", name, "@dave", "for", "ever")
        assert bad.code == 1 and "is not a duration" in bad.err

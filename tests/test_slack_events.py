"""Slack's Events API end to end: people react, pin and join on the emulator, which delivers the
events to the API's Bolt app signed and, when the answer is late, again with Slack's retry
headers; the session's worker runs the incidents. Every assertion is on the incident or on
what the emulator saw. The App Home too: opened on the emulator, published by the app, its Done
buttons pressed over HTTP and, with Debian's Chromium, from the emulator's page."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.client import Client

from config import Settings
from localslack import SlackEmulator
from starter.desk import IncidentDesk
from tests.conftest import TASK_QUEUE, seconds_policy
from tests.support import eventually, serve_slack_app
from tests.test_localslack_browser import SHOTS, browser  # noqa: F401 (a fixture)
from tests.test_oncall_reach import start_schedules
from tests.test_slack_app import Person, declared
from workflows.lifecycle import commands as cmd
from workflows.models import DeclarationRequest, IncidentState, Role
from workflows.oncall.rotation import schedule_workflow_id

SECRET = "events-signing-secret"
ALICE, BOB, CAROL, DAVE, ERIN = "U0ALICE01", "U0BOB0002", "U0CAROL03", "U0DAVE004", "U0ERIN005"
# sev1 pages Carol after a second and would tell Erin five seconds later; sev3 never escalates.
TIERS = {
    "escalation": [
        {"after": 1, "notify": [CAROL], "page": True},
        {"after": 6, "notify": [ERIN], "page": False},
    ]
}


# Bob, Dave and Carol take hour-long turns on call, Bob first: their next shifts are on their
# App Home.
HOME_SCHEDULE = f"home-{uuid.uuid4().hex[:8]}"
HOURLY = {"timezone": "UTC", "people": [BOB, DAVE, CAROL], "shift": 3600.0}
# Erin and Carol hand off every three seconds: Erin's next shifts change as she watches.
BRISK_SCHEDULE = f"brisk-{uuid.uuid4().hex[:8]}"
BRISK = {"timezone": "UTC", "people": [ERIN, CAROL], "shift": 3.0}


@pytest.fixture(scope="module")
def events_desk(client: Client, worker: None) -> IncidentDesk:
    policy = seconds_policy().model_dump()
    policy["severities"]["sev1"].update(TIERS)
    start = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    policy["schedules"] = {
        HOME_SCHEDULE: {**HOURLY, "start": start},
        BRISK_SCHEDULE: {**BRISK, "start": start},
    }
    policy["slack"]["home_refresh_every"] = 1  # an opened Home is read again every second
    return IncidentDesk(client, TASK_QUEUE, type(seconds_policy()).model_validate(policy))


@pytest.fixture(scope="module")
async def app_url(
    settings: Settings, events_desk: IncidentDesk, slack: SlackEmulator
) -> AsyncIterator[str]:
    async with serve_slack_app(settings, events_desk, slack, SECRET) as url:
        yield url


@pytest.fixture
def alice(slack: SlackEmulator, app_url: str) -> Person:
    return Person(slack, ALICE)


@pytest.fixture
def late_answers(slack: SlackEmulator) -> Iterator[Any]:
    """The app's first answer to each delivery arrives after Slack stopped waiting, so every
    event is delivered again as a retry (the app got the first one all the same)."""
    events = slack.console.events
    post, within, delays = events.post, events.answer_within, events.retry_delays

    async def slow(body: str, headers: dict[str, str], wait: float) -> tuple[int, str]:
        answer = await post(body, headers, wait)
        if int(headers.get("X-Slack-Retry-Num", "0")) < 2:
            await asyncio.sleep(wait + 0.2)  # the answer is late: Slack retries
        return answer

    events.post, events.answer_within, events.retry_delays = slow, 0.5, (0.0, 0.1, 0.1)
    try:
        yield events
    finally:
        events.post, events.answer_within, events.retry_delays = post, within, delays


def marked(state: IncidentState) -> list[Any]:
    return [e for e in state.timeline if e.kind == "marked_message"]


async def settled(slack: SlackEmulator) -> None:
    await asyncio.wait_for(slack.console.events.settled(), 30)


async def until(
    desk: IncidentDesk, ref: str, test: Callable[[IncidentState], bool], timeout: float = 20
) -> IncidentState:
    found: list[IncidentState] = []

    async def check() -> bool:
        found[:] = [await desk.get(ref)]
        return test(found[0])

    await eventually_async(check, timeout)
    return found[0]


async def eventually_async(check: Callable[[], Awaitable[bool]], timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_a_pinned_or_reacted_message_is_on_the_timeline_once_until_the_last_mark_goes(
    alice: Person, events_desk: IncidentDesk, slack: SlackEmulator, late_answers: Any
) -> None:
    state = await declared(alice, events_desk, "Pins", "sev3")
    assert state.channel is not None
    console, ws, channel = slack.console, slack.workspace, state.channel.id
    for person in (BOB, CAROL, DAVE):
        console.join(ws, person, channel)
    said = "primary <db-1> failed over & replicas lag"
    ts = console.say(ws, BOB, channel, said)
    # Three people mark it, one of them twice (pin and reaction); each event is retried.
    console.react(ws, ALICE, channel, ts, "pushpin", True)
    console.react(ws, CAROL, channel, ts, "pushpin", True)
    console.pin(ws, DAVE, channel, ts, True)
    console.react(ws, DAVE, channel, ts, "thumbsup", True)  # not a timeline reaction
    await settled(slack)
    first = console.events.sent[-4]
    assert first["event"]["type"] == "reaction_added" and first["type"] == "event_callback"
    tries = [a for a in console.events.attempts if a.event_id == first["event_id"]]
    assert [(a.retry, a.reason) for a in tries] == [
        (0, "http_timeout"),
        (1, "http_timeout"),
        (2, None),
    ]
    await console.events.redeliver(first["event_id"])  # and once more, not as a retry
    state = await until(events_desk, state.id, lambda s: len(s.marked.get(ts, [])) == 3)
    [entry] = marked(state)
    assert (entry.text, entry.actor) == (said, BOB)
    assert entry.at == datetime.fromtimestamp(float(ts), UTC)
    ids = [u for u in state.applied_updates if u.startswith("mark_message:")]
    assert len(ids) == len(set(ids)) == 3

    # Taking marks back: the message stays while any is left, and goes with the last.
    console.react(ws, ALICE, channel, ts, "pushpin", False)
    console.pin(ws, DAVE, channel, ts, False)
    await settled(slack)
    state = await until(events_desk, state.id, lambda s: len(s.marked.get(ts, [])) == 1)
    assert len(marked(state)) == 1
    console.react(ws, CAROL, channel, ts, "pushpin", False)
    await settled(slack)
    state = await until(events_desk, state.id, lambda s: ts not in s.marked)
    assert marked(state) == []


async def test_someone_joining_the_channel_becomes_a_responder(
    alice: Person, events_desk: IncidentDesk, slack: SlackEmulator
) -> None:
    state = await declared(alice, events_desk, "Joins", "sev3")
    assert state.channel is not None and DAVE not in state.responders
    slack.console.join(slack.workspace, DAVE, state.channel.id)
    await settled(slack)
    state = await until(events_desk, state.id, lambda s: DAVE in s.responders)
    assert [e.text for e in state.timeline if e.kind == "joined"] == [f"<@{DAVE}> joined"]
    assert ALICE not in state.responders  # the commander, invited by the incident itself


def _paged_dm(slack: SlackEmulator, incident_id: str, user: str) -> tuple[str, str] | None:
    for channel in slack.channels.values():
        if not channel.is_im or user not in channel.members:
            continue
        for message in channel.messages:
            payload = (message.get("metadata") or {}).get("event_payload") or {}
            if payload.get("incident_id") == incident_id and payload["key"].startswith("paged-"):
                return channel.id, message["ts"]
    return None


async def test_an_acknowledging_reaction_on_the_page_acknowledges_and_stops_the_next_tier(
    alice: Person, events_desk: IncidentDesk, slack: SlackEmulator
) -> None:
    state = await declared(alice, events_desk, "Reacted", "sev1")
    await eventually(lambda: _paged_dm(slack, state.id, CAROL) is not None, timeout=20)
    found = _paged_dm(slack, state.id, CAROL)
    assert found is not None
    dm, ts = found
    slack.console.react(slack.workspace, CAROL, dm, ts, "eyes", True)
    await settled(slack)
    state = await until(events_desk, state.id, lambda s: s.acknowledged_at is not None)
    assert state.acknowledged_by == CAROL and state.escalation_level == 1
    await asyncio.sleep(7)  # past the second tier
    state = await events_desk.get(state.id)
    assert state.escalation_level == 1 and state.channel is not None
    assert ERIN not in slack.channels[state.channel.id].members  # the second tier invites


async def test_the_app_answers_url_verification_and_refuses_unsigned_events(
    alice: Person, slack: SlackEmulator
) -> None:
    console, json_body = slack.console, {"Content-Type": "application/json"}
    sent = await console.send(console.events.url_verification("3eZbrw1aB"), headers=json_body)
    assert sent.status == 200 and "3eZbrw1aB" in sent.body
    console.signing_secret = "not-the-secret"
    try:
        forged = await console.send(console.events.url_verification("x"), headers=json_body)
    finally:
        console.signing_secret = SECRET
    assert forged.status == 401


async def test_a_renamed_channel_is_still_the_incidents_for_its_commands(
    alice: Person, events_desk: IncidentDesk, slack: SlackEmulator
) -> None:
    state = await declared(alice, events_desk, "Renamed", "sev3")
    assert state.channel is not None
    channel = slack.channels[state.channel.id]
    slack.workspace.rename(channel, f"{channel.name}-db", ALICE)
    reply = await alice.types("/incident status identified bad index", channel.name)
    assert "identified" in reply.text.lower()
    state = await events_desk.get(state.id)
    assert state.status.value == "identified"


async def test_an_acknowledging_reaction_on_the_escalation_notice_acknowledges_as_the_reactor(
    alice: Person, events_desk: IncidentDesk, slack: SlackEmulator
) -> None:
    state = await declared(alice, events_desk, "Noticed", "sev1")
    assert state.channel is not None
    channel = state.channel.id

    def notice() -> str | None:
        for message in slack.messages(channel):
            payload = (message.get("metadata") or {}).get("event_payload") or {}
            if str(payload.get("key", "")).startswith("escalated-"):
                return str(message["ts"])
        return None

    await eventually(lambda: notice() is not None, timeout=20)
    ts = notice()
    assert ts is not None
    slack.console.react(slack.workspace, BOB, channel, ts, "thumbsup", True)  # not an ack
    slack.console.react(slack.workspace, BOB, channel, ts, "white_check_mark", True)
    await settled(slack)
    state = await until(events_desk, state.id, lambda s: s.acknowledged_at is not None)
    assert state.acknowledged_by == BOB


@pytest.fixture(scope="module")
async def home_schedule(client: Client, events_desk: IncidentDesk) -> AsyncIterator[str]:
    await start_schedules(client, events_desk.policy)
    yield HOME_SCHEDULE
    for name in (HOME_SCHEDULE, BRISK_SCHEDULE):
        await client.get_workflow_handle(schedule_workflow_id(name)).terminate("test over")


def home_text(view: dict[str, Any]) -> str:
    """What the Home tab says, block by block."""
    said = []
    for block in view["blocks"]:
        texts = [block.get("text") or {}, *block.get("elements", [])]
        said += [str(t.get("text", "")) for t in texts if isinstance(t, dict)]
    return "\n".join(said)


def done_buttons(view: dict[str, Any]) -> list[str]:
    return [
        str(b["accessory"]["value"])
        for b in view["blocks"]
        if (b.get("accessory") or {}).get("action_id") == "home_action_done"
    ]


async def opened_home(slack: SlackEmulator, user: str) -> dict[str, Any]:
    """The person opens the app's Home tab; what the app publishes for it (a new hash)."""
    before = (slack.workspace.homes.get(user) or {}).get("hash")
    slack.console.home(slack.workspace, user)
    await settled(slack)
    homes = slack.workspace.homes
    await eventually(lambda: user in homes and homes[user]["hash"] != before, timeout=20)
    return dict(homes[user])


async def test_the_app_home_shows_incidents_by_role_action_items_with_done_and_next_shifts(
    alice: Person, events_desk: IncidentDesk, slack: SlackEmulator, home_schedule: str
) -> None:
    led = await declared(alice, events_desk, "Home led", "sev3")
    tech_lead = cmd.AssignRole(role=Role.TECH_LEAD, user=BOB, by=ALICE)
    await events_desk.command(led.id, tech_lead)
    task = cmd.AddActionItem(text="Rotate the <db> keys", owner=BOB, by=ALICE)
    item = (await events_desk.command(led.id, task)).action_items[-1]
    commanded = await declared(alice, events_desk, "Home commanded", "sev3")
    handover = cmd.AssignRole(role=Role.COMMANDER, user=BOB, by=ALICE)  # Alice hands it over
    await events_desk.command(commanded.id, handover)
    others = await declared(alice, events_desk, "Home not Bob's", "sev3")

    home = await opened_home(slack, BOB)
    text = home_text(home)
    assert f"*{led.label}* SEV3" in text and f"*{commanded.label}* SEV3" in text
    assert others.label not in text
    blurbs = text.split("\n")
    assert (
        "You are *tech lead*" in blurbs[blurbs.index(next(b for b in blurbs if led.label in b)) + 1]
    )
    assert "You are *commander*" in text
    assert f"#{item.id} Rotate the &lt;db&gt; keys" in text
    assert done_buttons(home) == [f"{led.id} {item.id}"]
    shifts = [line for line in blurbs if line.startswith(f"*{home_schedule}*: <!date^")]
    assert len(shifts) == 5, text  # Bob's next five, from the schedule's workflow

    # Done, pressed in the Home tab: the item is done, by Bob, and the tab shows it gone.
    before = home["hash"]
    action = {"action_id": "home_action_done", "block_id": "", "value": f"{led.id} {item.id}"}
    sent = await slack.console.click(slack.workspace, BOB, "", "", action)
    assert sent.status == 200
    state = await until(events_desk, led.id, lambda s: s.action_items[-1].done_at is not None)
    assert state.timeline[-1].actor == BOB
    homes = slack.workspace.homes
    await eventually(lambda: homes[BOB]["hash"] != before, timeout=20)
    assert done_buttons(homes[BOB]) == []
    assert "No open action item is yours." in home_text(homes[BOB])
    assert not [a for a in slack.calls_to("views.publish") if a.error], "every publish was accepted"

    # The same Done again (an older tab): refused, and the refusal tops the tab.
    before = homes[BOB]["hash"]
    assert (await slack.console.click(slack.workspace, BOB, "", "", action)).status == 200
    await eventually(lambda: homes[BOB]["hash"] != before, timeout=20)
    note = homes[BOB]["blocks"][0]
    assert note["type"] == "context" and note["elements"][0]["text"].startswith(":no_entry: ")


async def test_the_app_home_on_the_page_as_a_person_sees_it(
    browser: Any,  # noqa: F811
    alice: Person,
    events_desk: IncidentDesk,
    slack: SlackEmulator,
    home_schedule: str,
) -> None:
    """Dave's App Home in Chromium: his incident and role, his action item's Done pressed from
    the page, his next shifts."""
    state = await declared(alice, events_desk, "Checkout latency", "sev2")
    await events_desk.command(state.id, cmd.AssignRole(role=Role.COMMS_LEAD, user=DAVE, by=ALICE))
    task = cmd.AddActionItem(text="Tell support the <ETA>", owner=DAVE, by=ALICE)
    await events_desk.command(state.id, task)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = await browser.new_page()
    try:
        await page.goto(slack.base_url.removesuffix("api/") + "?as=" + DAVE)
        home = page.locator("#home")
        await home.get_by_role("button", name="Open App Home").click()
        await home.get_by_text("Your open incidents").wait_for(timeout=20_000)
        shown = await home.inner_text()
        assert state.label in shown and "You are comms lead" in shown
        assert "Tell support the <ETA>" in shown and f"{home_schedule}: " in shown
        await home.screenshot(path=str(SHOTS / "8-app-home.png"))
        await home.get_by_role("button", name="Done").first.click()
        await home.get_by_text("No open action item is yours.").wait_for(timeout=20_000)
    finally:
        await page.close()
    done = await events_desk.get(state.id)
    assert done.action_items[-1].done_at is not None


async def test_an_opened_app_home_is_kept_current_without_opening_it_again(
    alice: Person, events_desk: IncidentDesk, slack: SlackEmulator, home_schedule: str
) -> None:
    """Erin opens her Home once. Made commander of a new incident, given an action item, her
    on-call turn handed off: her tab shows each without her opening it again; a Home whose
    content did not change is not published again."""
    homes = slack.workspace.homes
    home = await opened_home(slack, ERIN)

    def shown() -> str:
        return home_text(homes[ERIN])

    state = await declared(alice, events_desk, "Home kept current", "sev3")
    assert state.label not in home_text(home)
    await events_desk.command(state.id, cmd.AssignRole(role=Role.COMMANDER, user=ERIN, by=ALICE))
    await eventually(lambda: f"*{state.label}* SEV3" in shown(), timeout=20)
    assert "You are *commander*" in shown()

    task = cmd.AddActionItem(text="Drain the <old> pool", owner=ERIN, by=ALICE)
    item = (await events_desk.command(state.id, task)).action_items[-1]
    await eventually(lambda: done_buttons(homes[ERIN]) == [f"{state.id} {item.id}"], timeout=20)
    assert f"#{item.id} Drain the &lt;old&gt; pool" in shown()

    def next_shifts() -> list[str]:
        return [line for line in shown().split("\n") if line.startswith(f"*{BRISK_SCHEDULE}*: ")]

    first = next_shifts()
    assert len(first) == 5, shown()
    await eventually(lambda: next_shifts()[0] != first[0], timeout=20)  # a handoff went by

    # A private incident: on its commander's Home; not on Bob's, though he owns an item of it.
    secret = DeclarationRequest(
        title=f"Payroll {uuid.uuid4().hex[:6]}",
        severity="sev3",
        private=True,
        declared_by=ALICE,
        commander=ERIN,
    )
    hidden, _ = await events_desk.declare(secret)
    leak = cmd.AddActionItem(text="Rotate the payroll keys", owner=BOB, by=ERIN)
    await events_desk.command(hidden.id, leak)
    await eventually(lambda: f"*{hidden.label}*" in shown(), timeout=20)
    await asyncio.sleep(2)  # two more readings
    bob = home_text(homes[BOB])
    assert hidden.label not in bob and secret.title.casefold() not in bob.casefold()

    # Bob's Home (opened in an earlier test) shows nothing new: read every second, not sent.
    def published_to(user: str) -> int:
        return sum(c.args.get("user_id") == user for c in slack.calls_to("views.publish"))

    before = published_to(BOB)
    await asyncio.sleep(3)
    assert published_to(BOB) == before
    # Carol's shifts changed as often as Erin's, but she never opened her Home: none is sent.
    assert published_to(CAROL) == 0

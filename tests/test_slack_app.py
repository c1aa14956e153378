"""The Slack app end to end: the emulator signs and sends what Slack would, the API's Bolt app
answers through the desk and the session's worker, and replies land on the emulator's
response_url. Every assertion is on what Slack (the emulator) saw or on the incident itself."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from clients.slack_client import slack_client
from config import Settings
from localslack import BOT_TOKEN, SlackEmulator
from localslack.console import Reply, Sent
from starter.desk import IncidentDesk
from tests.support import eventually, serve_slack_app

SECRET = "test-signing-secret"
ALICE, BOB, CAROL = "U0ALICE01", "U0BOB0002", "U0CAROL03"


@pytest.fixture(scope="module")
async def app_url(
    settings: Settings, desk: IncidentDesk, slack: SlackEmulator
) -> AsyncIterator[str]:
    async with serve_slack_app(settings, desk, slack, SECRET) as url:
        yield url


class Person:
    """Someone in the emulated workspace, typing and clicking."""

    def __init__(self, slack: SlackEmulator, user: str) -> None:
        self.slack = slack
        self.user = user

    @property
    def ws(self) -> Any:
        return self.slack.workspace

    def channel_id(self, name: str) -> str:
        found = self.slack.channel_by_name(name)
        assert found is not None, name
        return found.id

    async def types(self, text: str, channel: str = "general") -> Reply:
        """A slash command; the app's answer as it came to the response_url."""
        seen = len(self.slack.console.replies)
        sent = await self.slack.console.slash(self.ws, self.user, self.channel_id(channel), text)
        assert sent.status == 200, sent.body
        return await self.reply_after(seen)

    async def reply_after(self, seen: int) -> Reply:
        replies = self.slack.console.replies
        await eventually(lambda: len(replies) > seen, timeout=30)
        reply = replies[seen]
        assert reply.user == self.user and reply.response_type == "ephemeral"
        return reply

    async def clicks(self, channel: str, ts: str, action_id: str, value: str) -> Sent:
        action = {"action_id": action_id, "block_id": "b", "value": value}
        return await self.slack.console.click(
            self.ws, self.user, self.channel_id(channel), ts, action
        )

    def open_view(self, callback_id: str) -> dict[str, Any] | None:
        """The newest modal with this callback id open for this person, if any yet."""
        views = [
            v
            for v in self.ws.views.values()
            if v["open"] and v["user"] == self.user and v["view"]["callback_id"] == callback_id
        ]
        return views[-1]["view"] if views else None


@pytest.fixture
def alice(slack: SlackEmulator, app_url: str) -> Person:
    return Person(slack, ALICE)


def title(what: str) -> str:
    return f"{what} {uuid.uuid4().hex[:6]}"


async def declared(alice: Person, desk: IncidentDesk, what: str, sev: str = "sev2") -> Any:
    name = title(what)
    reply = await alice.types(f"/incident declare {sev} {name}")
    assert reply.text.startswith("Declared *INC-"), reply.text
    number = int(reply.text.split("*INC-")[1].split("*")[0])
    state = await desk.get(str(number))
    assert state.title == name and state.channel is not None
    return state


async def test_declare_from_slack_creates_the_channel_as_the_slack_user(alice, desk, slack):
    seen, started = len(slack.console.replies), time.monotonic()
    sent = await slack.console.slash(
        slack.workspace, ALICE, alice.channel_id("general"), f"/incident declare {title('Acked')}"
    )
    assert sent.status == 200 and time.monotonic() - started < 3  # Slack's limit for the ack
    assert "Declared" in (await alice.reply_after(seen)).text  # the answer follows the ack
    state = await declared(alice, desk, "Checkout failing", "sev1")
    assert state.severity == "sev1" and state.declared_by == ALICE and state.source == "slack"
    assert state.idempotency_key and state.idempotency_key.startswith("slack-")
    channel = slack.channel_by_name(state.channel.name)
    assert channel is not None and not channel.is_archived


async def test_bad_and_stale_signatures_get_401_and_reach_no_listener(alice, slack):
    console, ws = slack.console, slack.workspace
    general = alice.channel_id("general")
    seen = len(console.replies)
    stale = await console.slash(ws, ALICE, general, "/incident help", age=6 * 60)
    assert stale.status == 401
    console.signing_secret = "not-the-secret"
    try:
        forged = await console.slash(ws, ALICE, general, "/incident help")
    finally:
        console.signing_secret = SECRET
    assert forged.status == 401
    unsigned = await console.send("command=%2Fincident&text=help", age=0)
    assert unsigned.status == 200  # the console signs; a fresh, well-signed request passes
    await asyncio.sleep(0.5)
    assert len(console.replies) == seen  # nothing the refused requests asked was run
    good = await console.slash(ws, ALICE, general, "/incident help", age=4 * 60)
    assert good.status == 200
    assert "`/incident` commands" in (await alice.reply_after(seen)).text


async def test_help_list_and_malformed_commands_answer_ephemerally(alice, desk):
    assert "`/incident` commands" in (await alice.types("/incident help")).text
    assert "`/incident` commands" in (await alice.types("/incident")).text
    state = await declared(alice, desk, "Listed")
    listing = await alice.types("/incident list")
    assert listing.text.startswith("*Open incidents*") and f"*{state.label}*" in listing.text
    nonsense = await alice.types("/incident fly away")
    assert "there is no `/incident fly`" in nonsense.text
    no_number = await alice.types("/incident ack")
    assert "not an incident channel" in no_number.text and "42" in no_number.text
    unknown = await alice.types("/incident ack 98765431")
    assert "no incident incident-98765431" in unknown.text
    missing = await alice.types(f"/incident update {state.number}")
    assert "say what is new" in missing.text


async def test_every_sub_command_in_the_incident_channel_and_outside_it(alice, desk, slack):
    state = await declared(alice, desk, "Sub-commands", "sev1")
    here, n = state.channel.name, state.number

    async def run(text: str, channel: str = here) -> str:
        return (await alice.types(text, channel)).text

    assert "acknowledged" in (await run("/incident ack")).lower()
    assert "already acknowledged" in await run(f"/incident ack {n}", "general")
    assert "identified" in await run("/incident status identified bad deploy found")
    refused = await run(f"/incident status INC-{n} investigating", "general")
    assert refused.startswith(":no_entry:") and "back to investigating" in refused
    assert "rolling back" in await run(f"/incident update {n} rolling back", "general")
    assert "SEV2" in await run("/incident severity sev2 workaround exists")
    assert "unknown severity" in await run("/incident severity sev9")
    await run("/incident role comms_lead <@U0BOB0002|bob>")
    await run("/incident role tech_lead @carol")
    unknown = await run("/incident role tech_lead mallory")
    assert "unknown person 'mallory'" in unknown
    assert "escalat" in (await run("/escalate need the database team")).lower()
    assert "Action item #1" in await run("/incident action add alert on login errors @dave")
    assert "done" in await run("/incident action done 1")
    assert "already done" in await run(f"/incident action done {n} 1", "general")
    assert "resolved" in await run(f"/resolve {n} rolled back", "general")
    assert "· investigating" in await run("/incident reopen errors are back")
    assert "resolved" in await run("/incident resolve for real")

    final = await desk.get(state.id)
    assert final.status.value == "resolved" and final.severity == "sev2"
    assert final.roles.comms_lead == BOB and final.roles.tech_lead == CAROL
    assert final.acknowledged_by == ALICE and final.escalation_level >= 1
    assert final.action_items[0].owner == "U0DAVE004" and final.action_items[0].done_at
    assert {e.actor for e in final.timeline if e.kind in ("status", "resolved")} == {ALICE}


def kickoff_ts(slack: SlackEmulator, channel_id: str) -> str:
    pins = slack.pins(channel_id)
    return pins[0] if pins else slack.messages(channel_id)[-1]["ts"]


async def test_kickoff_buttons_acknowledge_and_open_modals_whose_submissions_act(
    alice, desk, slack
):
    state = await declared(alice, desk, "Buttons")
    here, ts = state.channel.name, kickoff_ts(slack, state.channel.id)
    bob = Person(slack, BOB)

    seen = len(slack.console.replies)
    assert (await bob.clicks(here, ts, "incident_acknowledge", state.id)).status == 200
    assert "investigating" in (await bob.reply_after(seen)).text
    assert (await desk.get(state.id)).acknowledged_by == BOB
    seen = len(slack.console.replies)
    await bob.clicks(here, ts, "incident_acknowledge", state.id)
    assert "already acknowledged" in (await bob.reply_after(seen)).text
    assert (await bob.clicks(here, ts, "open_incident_workflow", state.id)).status == 200

    await bob.clicks(here, ts, "incident_status_modal", state.id)
    view = await eventually(lambda: bob.open_view("incident_status"), timeout=10)
    assert view["private_metadata"] == state.id
    sent = await slack.console.submit(
        slack.workspace, view["id"], {"status": "monitoring", "message": "fix deployed"}
    )
    assert sent.status == 200 and sent.json is None  # accepted: the modal closes
    after = await desk.get(state.id)
    assert after.status.value == "monitoring" and after.timeline[-1].actor == BOB

    await bob.clicks(here, ts, "incident_status_modal", state.id)
    again = await eventually(lambda: bob.open_view("incident_status"), timeout=10)
    refused = await slack.console.submit(slack.workspace, again["id"], {"status": "identified"})
    assert refused.json["response_action"] == "errors"
    assert "back to identified" in refused.json["errors"]["status"]

    await bob.clicks(here, ts, "incident_resolve_modal", state.id)
    resolve = await eventually(lambda: bob.open_view("incident_resolve"), timeout=10)
    await slack.console.submit(slack.workspace, resolve["id"], {"message": "all clear"})
    resolved = await desk.get(state.id)
    resolution = [e for e in resolved.timeline if e.kind == "resolved"][-1]  # the report's after
    assert resolved.status.value == "resolved" and resolution.actor == BOB


async def test_declare_without_a_title_opens_the_form_and_errors_show_per_field(alice, desk, slack):
    seen = len(slack.console.replies)
    sent = await slack.console.slash(
        slack.workspace, ALICE, alice.channel_id("general"), "/incident declare"
    )
    assert sent.status == 200
    view = await eventually(lambda: alice.open_view("incident_declare"), timeout=10)
    blocks = {b["block_id"]: b for b in view["blocks"]}
    assert {"title", "severity", "impact", "summary", "components"} <= set(blocks)
    severities = blocks["severity"]["element"]["options"]
    assert [o["value"] for o in severities] == ["sev1", "sev2", "sev3"]
    assert all(o["description"]["text"] for o in severities)  # the policy's descriptions

    empty = await slack.console.submit(slack.workspace, view["id"], {"title": " "})
    assert empty.json["response_action"] == "errors" and "title" in empty.json["errors"]
    name = title("Form declared")
    answers = {
        "title": name,
        "severity": "sev1",
        "impact": "critical",
        "summary": "orders fail at payment",
        "components": "checkout, payments",
    }
    done = await slack.console.submit(slack.workspace, view["id"], answers)
    assert done.status == 200 and done.json is None
    found = await eventually(lambda: slack.channel_by_name(_slug(name)) or None, timeout=30)
    assert found is not None
    assert len(slack.console.replies) == seen  # the answer is the channel, not a reply


def _slug(name: str) -> str:
    import re
    import time

    return time.strftime("inc-%y%m%d-", time.gmtime()) + re.sub(r"[^a-z0-9]+", "-", name.lower())


async def test_add_to_timeline_keeps_author_and_time_and_refuses_outside_incidents(
    alice, desk, slack
):
    state = await declared(alice, desk, "Timeline")
    console, ws = slack.console, slack.workspace
    ts = console.say(ws, BOB, state.channel.id, "db primary failed over <at> 10:02")
    seen = len(console.replies)
    sent = await console.shortcut(ws, CAROL, state.channel.id, ts, "add_to_timeline")
    assert sent.status == 200
    carol = Person(slack, CAROL)
    assert "db primary failed over &lt;at&gt; 10:02" in (await carol.reply_after(seen)).text
    entry = next(e for e in (await desk.get(state.id)).timeline if e.kind == "message")
    assert entry.actor == BOB and entry.text == "db primary failed over <at> 10:02"
    assert abs(entry.at.timestamp() - float(ts)) < 0.001

    general = alice.channel_id("general")
    elsewhere = console.say(ws, BOB, general, "lunch?")
    seen = len(console.replies)
    await console.shortcut(ws, CAROL, general, elsewhere, "add_to_timeline")
    assert "not an incident channel" in (await carol.reply_after(seen)).text


async def test_the_slack_app_is_served_the_way_the_settings_say(settings, desk):
    import httpx
    from slack_bolt.async_app import AsyncApp

    from starter.api.app import create_app

    socket = create_app(settings.model_copy(update={"slack_app_token": "xapp-1-test"}), desk)
    assert isinstance(socket.state.slack_app, AsyncApp) and socket.state.slack_handler is None
    plain = create_app(settings.model_copy(update={"slack_signing_secret": None}), desk)
    for app in (socket, plain):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            response = await http.post("/slack/events", content=b"command=%2Fincident")
        assert response.status_code == 404 and "not served over HTTP" in response.text


async def test_incident_public_puts_the_incident_on_the_status_page(alice, desk, slack):
    state = await declared(alice, desk, "Public")
    said = "Payments fail for <some> customers"
    reply = await alice.types(f"/incident public {said}", state.channel.name)
    assert "On the status page" in reply.text, reply.text
    public = (await desk.get(state.id)).public
    assert public is not None and [u.message for u in public.updates] == [said]

    def confirmed() -> list[str]:
        texts = [m.get("text", "") for m in slack.messages(state.channel.id)]
        return [t for t in texts if "Payments fail for &lt;some&gt; customers" in t]

    assert await eventually(confirmed)  # escaped in the channel
    missing = await alice.types(f"/incident public {state.number}", "general")
    assert "say what is new" in missing.text


async def test_status_in_a_renamed_channel_still_updates_its_incident(alice, desk, slack):
    # The incident is found by its channel's id: a rename keeps the id, not the name (and Slack
    # names any private channel "privategroup").
    state = await declared(alice, desk, "Renamed channel")
    web = slack_client(BOT_TOKEN, slack.base_url)
    renamed = f"war-room-{state.number}"
    await web.conversations_rename(channel=state.channel.id, name=renamed)
    assert "identified" in (await alice.types("/incident status identified cache", renamed)).text
    updated = await desk.get(state.id)
    assert updated.status.value == "identified" and updated.channel.id == state.channel.id

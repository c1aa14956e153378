"""The emulator as Slack's Events API: reactions.* and pins.remove with Slack's errors, and each
event the manifest subscribes to delivered signed to an app, retried the way Slack retries.
The app here is a small aiohttp server that answers as each test tells it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from localslack import BOT_TOKEN, SlackEmulator
from localslack.console import signature
from localslack.errors import manifest_events

ALICE, BOB, DAVE = "U0ALICE01", "U0BOB0002", "U0DAVE004"
REACTOR = "xoxb-reactor"  # reactions:write, which the app's own manifest does not grant
SECRET = "emulator-events-secret"


class App:
    """Answers each delivery with the next of ``answers`` (status, seconds late), then 200."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, float]] = []
        self.no_retry = False
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        headers = dict(request.headers)
        stamp = headers["X-Slack-Request-Timestamp"]
        assert headers["X-Slack-Signature"] == signature(SECRET, stamp, body)
        # Events come as JSON, interactions (a Home button) as a form with a JSON payload.
        self.received.append(
            (headers, json.loads(body) if body[:1] == "{" else dict(parse_qsl(body)))
        )
        status, late = self.answers.pop(0) if self.answers else (200, 0.0)
        await asyncio.sleep(late)
        extra = {"X-Slack-No-Retry": "1"} if self.no_retry else {}
        return web.Response(status=status, headers=extra)


@pytest.fixture
async def emu() -> AsyncIterator[SlackEmulator]:
    emulator = SlackEmulator(scoped_tokens={REACTOR: {"reactions:write", "chat:write"}})
    await emulator.start()
    yield emulator
    await emulator.stop()


@pytest.fixture
async def app(emu: SlackEmulator) -> AsyncIterator[App]:
    listening = App()
    server = web.Application()
    server.router.add_post("/slack/events", listening.handle)
    runner = web.AppRunner(server)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    emu.console.app_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    emu.console.signing_secret = SECRET
    emu.console.events.retry_delays = (0.0, 0.05, 0.05)
    emu.console.events.answer_within = 0.5
    yield listening
    await runner.cleanup()


async def error_of(call: Any) -> str:
    with pytest.raises(SlackApiError) as raised:
        await call
    return str(raised.value.response["error"])


def general(emu: SlackEmulator) -> str:
    found = emu.channel_by_name("general")
    assert found is not None
    return found.id


async def test_reactions_and_unpinning_answer_with_slacks_errors(emu: SlackEmulator) -> None:
    slack = AsyncWebClient(base_url=emu.base_url, token=REACTOR)
    channel = general(emu)
    ts = emu.console.say(emu.workspace, ALICE, channel, "disk full on db-1")
    await slack.reactions_add(channel=channel, timestamp=ts, name="pushpin")
    [message] = [m for m in emu.messages(channel) if m["ts"] == ts]
    assert message["reactions"] == [{"name": "pushpin", "users": ["U0BOT0001"], "count": 1}]
    again = slack.reactions_add(channel=channel, timestamp=ts, name="pushpin")
    assert await error_of(again) == "already_reacted"
    bad = slack.reactions_add(channel=channel, timestamp=ts, name=":x:")
    assert await error_of(bad) == "invalid_name"
    gone = slack.reactions_add(channel=channel, timestamp="1700000000.000100", name="eyes")
    assert await error_of(gone) == "message_not_found"
    await slack.reactions_remove(channel=channel, timestamp=ts, name="pushpin")
    assert "reactions" not in emu.workspace.channels[channel].by_ts[ts]
    twice = slack.reactions_remove(channel=channel, timestamp=ts, name="pushpin")
    assert await error_of(twice) == "no_reaction"
    bot = AsyncWebClient(base_url=emu.base_url, token=BOT_TOKEN)
    assert await error_of(bot.reactions_add(channel=channel, timestamp=ts, name="eyes")) == (
        "missing_scope"
    )
    incidents = emu.channel_by_name("incidents")
    assert incidents is not None
    channel = incidents.id  # the bot is a member there
    posted = await bot.chat_postMessage(channel=channel, text="summary")
    await bot.pins_add(channel=channel, timestamp=posted["ts"])
    await bot.pins_remove(channel=channel, timestamp=posted["ts"])
    assert emu.pins(channel) == []
    unpinned = bot.pins_remove(channel=channel, timestamp=posted["ts"])
    assert await error_of(unpinned) == "no_pin"


async def test_each_subscribed_event_is_delivered_signed_in_slacks_envelope(
    emu: SlackEmulator, app: App
) -> None:
    console, ws, channel = emu.console, emu.workspace, general(emu)
    ts = console.say(ws, ALICE, channel, "look here")  # a message: not subscribed
    console.react(ws, BOB, channel, ts, "pushpin", True)
    console.pin(ws, BOB, channel, ts, True)
    await AsyncWebClient(base_url=emu.base_url, token=BOT_TOKEN).conversations_create(name="x1")
    await console.events.settled()
    kinds = [body["event"]["type"] for _, body in app.received]
    assert kinds == ["reaction_added", "pin_added", "member_joined_channel"]
    assert set(kinds) <= manifest_events() and "message" not in manifest_events()
    _, reaction = app.received[0]
    assert reaction["type"] == "event_callback" and reaction["event_id"].startswith("Ev")
    assert reaction["authorizations"][0]["user_id"] == "U0BOT0001"
    assert reaction["event"]["item"] == {"type": "message", "channel": channel, "ts": ts}
    assert reaction["event"]["item_user"] == ALICE
    assert app.received[1][1]["event"]["item"]["message"]["text"] == "look here"
    assert all("X-Slack-Retry-Num" not in headers for headers, _ in app.received)
    verification = json.loads(console.events.url_verification("abc"))
    assert verification == {"token": "local", "challenge": "abc", "type": "url_verification"}


async def test_a_failed_or_late_answer_is_retried_three_times_with_slacks_headers(
    emu: SlackEmulator, app: App
) -> None:
    console, ws, channel = emu.console, emu.workspace, general(emu)
    ts = console.say(ws, ALICE, channel, "retried")
    app.answers = [(500, 0.0), (200, 1.0)]  # fails, then answers too late, then in time
    console.react(ws, BOB, channel, ts, "eyes", True)
    await console.events.settled()
    retries = [(h.get("X-Slack-Retry-Num"), h.get("X-Slack-Retry-Reason")) for h, _ in app.received]
    assert retries == [(None, None), ("1", "http_error"), ("2", "http_timeout")]
    assert len({body["event_id"] for _, body in app.received}) == 1
    app.received.clear()
    app.answers = [(503, 0.0)] * 10  # never answers well: the first try and 3 retries
    console.react(ws, DAVE, channel, ts, "eyes", True)
    await console.events.settled()
    assert [h.get("X-Slack-Retry-Num") for h, _ in app.received] == [None, "1", "2", "3"]
    app.received.clear()
    app.no_retry = True  # the app says not to retry
    console.react(ws, DAVE, channel, ts, "eyes", False)
    await console.events.settled()
    assert len(app.received) == 1


async def test_joins_by_invitation_and_by_a_person_are_events(emu: SlackEmulator, app: App) -> None:
    bot = AsyncWebClient(base_url=emu.base_url, token=BOT_TOKEN)
    created = await bot.conversations_create(name="inc-joins")
    channel = created["channel"]["id"]
    await bot.conversations_invite(channel=channel, users=ALICE)
    emu.console.join(emu.workspace, DAVE, channel)
    await emu.console.events.settled()
    joined = [body["event"] for _, body in app.received]
    assert [(e["user"], e.get("inviter")) for e in joined] == [
        ("U0BOT0001", None),
        (ALICE, "U0BOT0001"),
        (DAVE, None),
    ]
    assert {e["channel"] for e in joined} == {channel}


async def test_the_page_reacts_pins_and_joins_as_the_person_acting(emu: SlackEmulator) -> None:
    channel = general(emu)
    ts = emu.console.say(emu.workspace, ALICE, channel, "from the page")
    page = f"http://127.0.0.1:{emu.port}"
    incidents = emu.channel_by_name("incidents")
    assert incidents is not None
    emu.channels[incidents.id].members.remove(DAVE)
    async with aiohttp.ClientSession() as http:
        html = await (await http.get(f"{page}/?as={BOB}")).text()
        assert "+:pushpin:" in html and "action='/_emulator/react'" in html
        form = {"user": BOB, "channel": channel, "ts": ts, "name": "pushpin", "on": "1"}
        async with http.post(f"{page}/_emulator/react", data=form, allow_redirects=False) as r:
            assert r.status == 303
        async with http.post(f"{page}/_emulator/pin", data={**form}, allow_redirects=False) as r:
            assert r.status == 303
        joining = {"user": DAVE, "channel": incidents.id}
        async with http.post(f"{page}/_emulator/join", data=joining, allow_redirects=False) as r:
            assert r.status == 303
        html = await (await http.get(f"{page}/?as={BOB}")).text()
        assert ":pushpin: 1" in html and "Unpin" in html
        again = {**form, "name": "pushpin", "on": "1"}
        async with http.post(f"{page}/_emulator/react", data=again) as r:
            assert r.status == 400 and "already_reacted" in await r.text()
        crossed = {"Origin": "http://evil.example"}
        async with http.post(f"{page}/_emulator/pin", data=form, headers=crossed) as r:
            assert r.status == 403
    assert emu.pins(channel) == [ts] and DAVE in emu.channels[incidents.id].members


async def test_the_app_home_opens_from_the_page_and_views_publish_answers_like_slack(
    emu: SlackEmulator, app: App
) -> None:
    bot = AsyncWebClient(base_url=emu.base_url, token=BOT_TOKEN)
    done = {"type": "button", "text": {"type": "plain_text", "text": "Done"}}
    done |= {"action_id": "home_action_done", "value": "INC-7 1"}
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "*INC-7* #1 rotate <keys>"}}
    view = {"type": "home", "blocks": [{**section, "accessory": done}]}
    modal = {**view, "type": "modal", "title": {"type": "plain_text", "text": "x"}}
    assert await error_of(bot.views_publish(user_id=BOB, view=modal)) == "invalid_arguments"
    assert await error_of(bot.views_publish(user_id="U0NOBODY1", view=view)) == "invalid_arguments"
    huge = {**view, "blocks": [section] * 100, "private_metadata": "x" * 250_000}
    assert await error_of(bot.views_publish(user_id=BOB, view=huge)) == "view_too_large"
    published = (await bot.views_publish(user_id=BOB, view=view))["view"]
    assert published["type"] == "home" and published["id"].startswith("V")
    stale = bot.views_publish(user_id=BOB, view=view, hash="not-the-hash")
    assert await error_of(stale) == "hash_conflict"
    again = await bot.views_publish(user_id=BOB, view=view, hash=published["hash"])
    assert again["view"]["id"] == published["id"] and again["view"]["hash"] != published["hash"]

    page = f"http://127.0.0.1:{emu.port}"
    async with aiohttp.ClientSession() as http:
        html = await (await http.get(f"{page}/?as={BOB}")).text()
        assert "Home of @bob" in html and "rotate &lt;keys&gt;" in html and ">Done<" in html
        opening = {"user": BOB}
        async with http.post(f"{page}/_emulator/home", data=opening, allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == f"/?as={BOB}"
        await emu.console.events.settled()
        [(_, body)] = app.received
        opened = body["event"]
        assert (opened["type"], opened["user"], opened["tab"]) == ("app_home_opened", BOB, "home")
        assert opened["channel"].startswith("D") and opened["view"]["id"] == published["id"]
        click = {"user": BOB, "channel": "", "ts": "", "action_id": "home_action_done"}
        click |= {"block_id": "", "value": "INC-7 1"}
        async with http.post(f"{page}/_emulator/click", data=click, allow_redirects=False) as r:
            assert r.status == 303
    payload = json.loads(app.received[-1][1]["payload"])
    assert payload["type"] == "block_actions" and payload["user"]["id"] == BOB
    assert payload["container"] == {"type": "view", "view_id": published["id"]}
    assert "response_url" not in payload and "channel" not in payload
    assert payload["actions"][0]["value"] == "INC-7 1"

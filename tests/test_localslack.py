"""The Slack emulator, driven by the real slack_sdk clients over HTTP."""

import asyncio
import json
import signal
import sys
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from localslack import BOT_TOKEN, BOT_USER_ID, Fault, SlackEmulator
from localslack.console import signature
from localslack.control import dump, restore
from localslack.errors import method_scopes
from localslack.workspace import Workspace
from tests.processes import free_port

ALICE, BOB, CAROL = "U0ALICE01", "U0BOB0002", "U0CAROL03"
# Most tests here exercise methods the product never calls, so their token has every scope;
# the bot token (the manifest's scopes) is for the tests of scope checks.
EVERY_SCOPE = "xoxb-every-scope"
ALL_SCOPES = {
    scope
    for needs in method_scopes().values()
    for scope in [*needs["scopes"], *needs.get("private", [])]
}
PUBLIC_WRITER = "xoxb-public-writer"  # chat:write.public: posts where the bot is no member
GROUP_READER = "xoxb-group-reader"  # usergroups:read only


@pytest.fixture(scope="session")
async def running():
    emulator = SlackEmulator(
        scoped_tokens={
            EVERY_SCOPE: ALL_SCOPES,
            PUBLIC_WRITER: {"chat:write", "chat:write.public"},
            GROUP_READER: {"usergroups:read"},
        }
    )
    await emulator.start()
    yield emulator
    await emulator.stop()


@pytest.fixture
def emu(running: SlackEmulator) -> SlackEmulator:
    running.reset()
    return running


@pytest.fixture
def slack(emu: SlackEmulator) -> AsyncWebClient:
    return AsyncWebClient(base_url=emu.base_url, token=EVERY_SCOPE)


async def slack_error(call) -> SlackApiError:
    with pytest.raises(SlackApiError) as raised:
        await call
    return raised.value


async def new_channel(slack: AsyncWebClient, name: str = "inc-1") -> str:
    response = await slack.conversations_create(name=name)
    return str(response["channel"]["id"])


def bot_posts(emu: SlackEmulator, channel_id: str) -> list[dict[str, Any]]:
    """Messages the bot wrote, leaving out Slack's own notices (joins, topic changes)."""
    return [m for m in emu.messages(channel_id) if "subtype" not in m]


async def test_auth_test_names_the_bot_and_team(slack: AsyncWebClient):
    response = await slack.auth_test()
    assert response["user_id"] == BOT_USER_ID
    assert response["team_id"] == "T0LOCAL1"
    assert response["bot_id"]


async def test_created_channel_has_the_bot_as_member_and_its_name_is_then_taken(
    emu: SlackEmulator, slack: AsyncWebClient
):
    response = await slack.conversations_create(name="inc-240101-checkout")
    channel = response["channel"]
    assert channel["id"].startswith("C") and channel["id"].isalnum() and channel["id"].isupper()
    assert channel["is_member"] is True and channel["creator"] == BOT_USER_ID
    assert emu.channel_by_name("inc-240101-checkout") is emu.channels[channel["id"]]
    error = await slack_error(slack.conversations_create(name="inc-240101-checkout"))
    assert error.response["error"] == "name_taken"


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("", "invalid_name_required"),
        ("Inc-Upper", "invalid_name_specials"),
        ("inc 1", "invalid_name_specials"),
        ("#inc", "invalid_name_specials"),
        ("x" * 81, "invalid_name_maxlength"),
        ("--", "invalid_name_punctuation"),
    ],
)
async def test_channel_names_follow_slack_rules(slack: AsyncWebClient, name: str, error: str):
    assert (await slack_error(slack.conversations_create(name=name))).response["error"] == error


async def test_topic_is_set_and_limited_to_250_characters(slack: AsyncWebClient):
    channel_id = await new_channel(slack)
    await slack.conversations_setTopic(channel=channel_id, topic="SEV1 | checkout down")
    info = await slack.conversations_info(channel=channel_id)
    assert info["channel"]["topic"]["value"] == "SEV1 | checkout down"
    error = await slack_error(slack.conversations_setTopic(channel=channel_id, topic="x" * 251))
    assert error.response["error"] == "too_long"


async def test_invite_adds_members_and_an_unknown_user_invites_nobody(
    emu: SlackEmulator, slack: AsyncWebClient
):
    channel_id = await new_channel(slack)
    await slack.conversations_invite(channel=channel_id, users=[ALICE, BOB])
    error = await slack_error(
        slack.conversations_invite(channel=channel_id, users="U0NOBODY1,U0CAROL03")
    )
    assert error.response["error"] == "user_not_found"
    assert error.response["errors"][0]["user"] == "U0NOBODY1"
    members = await slack.conversations_members(channel=channel_id)
    assert members["members"] == [BOT_USER_ID, ALICE, BOB]
    again = await slack_error(slack.conversations_invite(channel=channel_id, users=ALICE))
    assert again.response["error"] == "already_in_channel"
    itself = await slack_error(slack.conversations_invite(channel=channel_id, users=BOT_USER_ID))
    assert itself.response["error"] == "cant_invite_self"
    await slack.conversations_invite(channel=channel_id, users=[ALICE, CAROL], force=True)
    assert emu.channels[channel_id].members == [BOT_USER_ID, ALICE, BOB, CAROL]


async def test_bot_cannot_invite_into_a_channel_it_is_not_in(
    emu: SlackEmulator, slack: AsyncWebClient
):
    general = emu.channel_by_name("general")
    assert general is not None
    error = await slack_error(slack.conversations_invite(channel=general.id, users=ALICE))
    assert error.response["error"] == "not_in_channel"


async def test_post_by_name_with_or_without_hash_and_by_id(
    emu: SlackEmulator, slack: AsyncWebClient
):
    incidents = emu.channel_by_name("incidents")
    assert incidents is not None
    first = await slack.chat_postMessage(channel="#incidents", text="INC-1 declared")
    second = await slack.chat_postMessage(channel="incidents", text="INC-2 declared")
    third = await slack.chat_postMessage(channel=incidents.id, text="INC-3 declared")
    assert {first["channel"], second["channel"], third["channel"]} == {incidents.id}
    assert first["ts"] < second["ts"] < third["ts"]
    assert [m["text"] for m in emu.messages(incidents.id)] == [
        "INC-1 declared",
        "INC-2 declared",
        "INC-3 declared",
    ]


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
async def test_posting_needs_membership_text_and_a_known_channel(
    emu: SlackEmulator, slack: AsyncWebClient
):
    general = emu.channel_by_name("general")
    assert general is not None
    cases: list[tuple[dict[str, Any], str]] = [
        ({"channel": general.id, "text": "hi"}, "not_in_channel"),
        ({"channel": "#nowhere", "text": "hi"}, "channel_not_found"),
        ({"channel": "#incidents", "text": ""}, "no_text"),
        ({"channel": "#incidents", "text": "x" * 40_001}, "msg_too_long"),
        (
            {"channel": "#incidents", "text": "hi", "blocks": [{"text": "no type"}]},
            "invalid_blocks",
        ),
    ]
    for kwargs, expected in cases:
        assert (await slack_error(slack.chat_postMessage(**kwargs))).response["error"] == expected


async def test_metadata_round_trips_through_history_only_when_asked(slack: AsyncWebClient):
    channel_id = await new_channel(slack)
    metadata = {"event_type": "incident_update", "event_payload": {"incident": "incident-7"}}
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Update*"}}]
    posted = await slack.chat_postMessage(
        channel=channel_id, text="Update", blocks=blocks, metadata=metadata
    )
    with_metadata = await slack.conversations_history(channel=channel_id, include_all_metadata=True)
    newest = with_metadata["messages"][0]
    assert newest["ts"] == posted["ts"]
    assert newest["metadata"] == metadata and newest["blocks"] == blocks
    plain = await slack.conversations_history(channel=channel_id)
    assert "metadata" not in plain["messages"][0]


async def test_history_pages_newest_first_within_oldest_and_latest(slack: AsyncWebClient):
    channel_id = await new_channel(slack)
    stamps = [
        (await slack.chat_postMessage(channel=channel_id, text=str(i)))["ts"] for i in range(5)
    ]
    first = await slack.conversations_history(channel=channel_id, limit=2, oldest=stamps[0])
    assert [m["text"] for m in first["messages"]] == ["4", "3"] and first["has_more"]
    cursor = first["response_metadata"]["next_cursor"]
    rest = await slack.conversations_history(channel=channel_id, oldest=stamps[0], cursor=cursor)
    assert [m["text"] for m in rest["messages"]] == ["2", "1"] and not rest["has_more"]
    window = await slack.conversations_history(
        channel=channel_id, oldest=stamps[1], latest=stamps[3], inclusive=True
    )
    assert [m["text"] for m in window["messages"]] == ["3", "2", "1"]


async def test_thread_replies_stay_out_of_history(emu: SlackEmulator, slack: AsyncWebClient):
    channel_id = await new_channel(slack)
    parent = await slack.chat_postMessage(channel=channel_id, text="status")
    await slack.chat_postMessage(channel=channel_id, text="reply", thread_ts=parent["ts"])
    history = await slack.conversations_history(channel=channel_id, limit=1)
    assert history["messages"][0]["text"] == "status"
    assert history["messages"][0]["reply_count"] == 1
    replies = await slack.conversations_replies(channel=channel_id, ts=parent["ts"])
    assert [m["text"] for m in replies["messages"]] == ["status", "reply"]
    assert [m["text"] for m in bot_posts(emu, channel_id)] == ["status", "reply"]


async def test_update_edits_in_place_and_keeps_blocks(emu: SlackEmulator, slack: AsyncWebClient):
    channel_id = await new_channel(slack)
    blocks = [{"type": "header", "text": {"type": "plain_text", "text": "INC-1"}}]
    posted = await slack.chat_postMessage(channel=channel_id, text="old", blocks=blocks)
    await slack.chat_update(channel=channel_id, ts=posted["ts"], text="new")
    [message] = bot_posts(emu, channel_id)
    assert message["text"] == "new" and message["blocks"] == blocks and "edited" in message
    error = await slack_error(slack.chat_update(channel=channel_id, ts="1.000001", text="x"))
    assert error.response["error"] == "message_not_found"


async def test_pins_are_added_listed_and_not_doubled(emu: SlackEmulator, slack: AsyncWebClient):
    channel_id = await new_channel(slack)
    posted = await slack.chat_postMessage(channel=channel_id, text="Summary")
    await slack.pins_add(channel=channel_id, timestamp=posted["ts"])
    assert emu.pins(channel_id) == [posted["ts"]]
    listed = await slack.pins_list(channel=channel_id)
    assert listed["items"][0]["message"]["text"] == "Summary"
    twice = await slack_error(slack.pins_add(channel=channel_id, timestamp=posted["ts"]))
    assert twice.response["error"] == "already_pinned"
    missing = await slack_error(slack.pins_add(channel=channel_id, timestamp="1700000000.000100"))
    assert missing.response["error"] == "message_not_found"


async def test_channel_list_paginates_with_cursors(slack: AsyncWebClient):
    for i in range(5):
        await new_channel(slack, f"inc-page-{i}")
    names: list[str] = []
    cursor = ""
    pages = 0
    while True:
        response = await slack.conversations_list(limit=2, cursor=cursor, exclude_archived=True)
        names += [c["name"] for c in response["channels"]]
        pages += 1
        cursor = response["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert pages == 4
    assert names == ["general", "incidents"] + [f"inc-page-{i}" for i in range(5)]
    error = await slack_error(slack.conversations_list(cursor="bm9wZQ=="))
    assert error.response["error"] == "invalid_cursor"


async def test_posting_to_an_archived_channel_fails(slack: AsyncWebClient):
    channel_id = await new_channel(slack)
    await slack.conversations_archive(channel=channel_id)
    error = await slack_error(slack.chat_postMessage(channel=channel_id, text="too late"))
    assert error.response["error"] == "is_archived"
    again = await slack_error(slack.conversations_archive(channel=channel_id))
    assert again.response["error"] == "already_archived"
    listed = await slack.conversations_list(exclude_archived=True)
    assert channel_id not in [c["id"] for c in listed["channels"]]


async def test_unknown_and_missing_tokens_are_refused(emu: SlackEmulator):
    wrong = AsyncWebClient(base_url=emu.base_url, token="xoxb-not-the-emulator")
    assert (await slack_error(wrong.auth_test())).response["error"] == "invalid_auth"
    anonymous = AsyncWebClient(base_url=emu.base_url)
    assert (await slack_error(anonymous.auth_test())).response["error"] == "not_authed"
    assert emu.calls[-1].ok is False and emu.calls[-1].error == "not_authed"


async def test_extra_tokens_given_to_the_constructor_are_accepted():
    async with SlackEmulator(tokens=["xoxb-second"]) as emulator:
        client = AsyncWebClient(base_url=emulator.base_url, token="xoxb-second")
        assert (await client.auth_test())["user_id"] == BOT_USER_ID


async def test_unimplemented_methods_answer_unknown_method(slack: AsyncWebClient):
    error = await slack_error(slack.api_call("reminders.add", params={"text": "x"}))
    assert error.response.status_code == 200
    assert error.response["error"] == "unknown_method"


async def test_injected_429_is_retried_after_retry_after(emu: SlackEmulator):
    client = AsyncWebClient(
        base_url=emu.base_url,
        token=BOT_TOKEN,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )
    emu.inject(Fault(method="chat.postMessage", status=429, retry_after=0))
    response = await client.chat_postMessage(channel="#incidents", text="after the limit")
    assert response["ok"]
    calls = emu.calls_to("chat.postMessage")
    assert [(c.ok, c.error) for c in calls] == [(False, "ratelimited"), (True, None)]


async def test_injected_429_carries_retry_after_without_a_handler(
    emu: SlackEmulator, slack: AsyncWebClient
):
    emu.inject(Fault(method="auth.test", error="ratelimited", retry_after=7))
    error = await slack_error(slack.auth_test())
    assert error.response.status_code == 429
    assert error.response.headers["Retry-After"] == "7"
    assert error.response["error"] == "ratelimited"
    assert (await slack.auth_test())["ok"]


async def test_injected_server_errors_surface_for_the_requested_count(
    emu: SlackEmulator, slack: AsyncWebClient
):
    emu.inject(Fault(method="conversations.create", status=500, times=2))
    for _ in range(2):
        error = await slack_error(slack.conversations_create(name="inc-flaky"))
        assert error.response.status_code == 500
    assert (await slack.conversations_create(name="inc-flaky"))["ok"]


async def test_injected_slack_error_answers_with_http_200(
    emu: SlackEmulator, slack: AsyncWebClient
):
    emu.inject(Fault(method="conversations.invite", error="fatal_error"))
    error = await slack_error(slack.conversations_invite(channel="C0000000000", users=ALICE))
    assert error.response.status_code == 200 and error.response["error"] == "fatal_error"


async def test_per_channel_rate_limit_allows_a_burst_then_429s():
    async with SlackEmulator(per_channel_rate_limit=True) as emulator:
        client = AsyncWebClient(base_url=emulator.base_url, token=BOT_TOKEN)
        for i in range(3):
            await client.chat_postMessage(channel="#incidents", text=f"burst {i}")
        error = await slack_error(client.chat_postMessage(channel="#incidents", text="too fast"))
        assert error.response.status_code == 429
        assert error.response.headers["Retry-After"] == "1"
        await asyncio.sleep(1.05)
        assert (await client.chat_postMessage(channel="#incidents", text="later"))["ok"]


async def test_sync_web_client_form_posts_work(emu: SlackEmulator):
    client = WebClient(base_url=emu.base_url, token=EVERY_SCOPE)

    def declare() -> str:
        channel_id = client.conversations_create(name="inc-sync")["channel"]["id"]
        client.conversations_invite(channel=channel_id, users=[ALICE])
        client.conversations_setPurpose(channel=channel_id, purpose="Checkout is down")
        client.chat_postMessage(
            channel=channel_id,
            text="declared",
            metadata={"event_type": "incident_declared", "event_payload": {"n": 1}},
        )
        client.bookmarks_add(
            channel_id=channel_id, title="Runbook", type="link", link="https://x.test"
        )
        return str(channel_id)

    # The sync client blocks; in a worker thread it cannot stall the emulator's loop.
    channel_id = await asyncio.to_thread(declare)
    channel = emu.channels[channel_id]
    assert channel.purpose == "Checkout is down" and ALICE in channel.members
    assert channel.bookmarks[0]["title"] == "Runbook"
    assert bot_posts(emu, channel_id)[0]["metadata"]["event_type"] == "incident_declared"


async def test_people_and_groups_are_seeded(slack: AsyncWebClient):
    alice = await slack.users_lookupByEmail(email="alice@example.com")
    assert alice["user"]["id"] == ALICE and alice["user"]["profile"]["email"] == "alice@example.com"
    assert (await slack.users_info(user=BOB))["user"]["tz"]
    oncall = await slack.usergroups_users_list(usergroup="S0ONCALL1")
    assert oncall["users"] == [ALICE, BOB]
    members = (await slack.users_list())["members"]
    assert {ALICE, BOB, CAROL, BOT_USER_ID} <= {m["id"] for m in members}
    errors = [
        await slack_error(slack.users_lookupByEmail(email="nobody@example.com")),
        await slack_error(slack.users_info(user="U0NOBODY1")),
        await slack_error(slack.usergroups_users_list(usergroup="S0NOPE001")),
    ]
    codes = [e.response["error"] for e in errors]
    assert codes == ["users_not_found", "user_not_found", "no_such_subteam"]


async def test_usergroups_users_update_replaces_who_is_in_a_group(
    emu: SlackEmulator, slack: AsyncWebClient
):
    answer = await slack.usergroups_users_update(usergroup="S0ONCALL1", users=[CAROL, BOB, CAROL])
    group = answer["usergroup"]
    assert group["handle"] == "oncall" and group["users"] == [CAROL, BOB]
    assert group["user_count"] == 2
    assert (await slack.usergroups_users_list(usergroup="S0ONCALL1"))["users"] == [CAROL, BOB]
    listed = (await slack.usergroups_list(include_users=True))["usergroups"]
    assert next(g for g in listed if g["id"] == "S0ONCALL1")["users"] == [CAROL, BOB]
    # The page and a restarted emulator (its snapshot) see the same members.
    restored = Workspace("incidents", False)
    restore(restored, json.loads(json.dumps(dump(emu.workspace), default=str)))
    assert restored.user_groups["S0ONCALL1"].users == (CAROL, BOB)

    errors = [
        await slack_error(slack.usergroups_users_update(usergroup="S0NOPE001", users=[ALICE])),
        await slack_error(slack.usergroups_users_update(usergroup="S0ONCALL1", users="")),
        await slack_error(
            slack.usergroups_users_update(usergroup="S0ONCALL1", users=["U0NOBODY1"])
        ),
        await slack_error(
            slack.usergroups_users_update(usergroup="S0ONCALL1", users=[BOT_USER_ID])
        ),
    ]
    codes = [e.response["error"] for e in errors]
    assert codes == ["no_such_subteam", "no_users_provided", "invalid_users", "invalid_users"]
    reader = AsyncWebClient(base_url=emu.base_url, token=GROUP_READER)
    refused = await slack_error(
        reader.usergroups_users_update(usergroup="S0ONCALL1", users=[ALICE])
    )
    assert refused.response["error"] == "missing_scope"
    assert refused.response["needed"] == "usergroups:write"
    assert (await slack.usergroups_users_list(usergroup="S0ONCALL1"))["users"] == [CAROL, BOB]


async def test_a_direct_message_with_a_button_is_drawn_and_clicked_like_slack(
    emu: SlackEmulator, slack: AsyncWebClient
):
    received: list[dict[str, Any]] = []

    async def events(request: web.Request) -> web.Response:
        received.append(json.loads(str((await request.post())["payload"])))
        return web.Response(text="")

    app = web.Application()
    app.router.add_post("/slack/events", events)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    emu.console.app_url = f"http://127.0.0.1:{port}/slack/events"
    try:
        dm = (await slack.conversations_open(users=ALICE))["channel"]["id"]
        acknowledge = {
            "type": "button",
            "action_id": "incident_acknowledge",
            "value": "incident-7",
            "style": "primary",
            "text": {"type": "plain_text", "text": "Acknowledge"},
        }
        blocks: list[dict[str, Any]] = [
            {"type": "section", "text": {"type": "mrkdwn", "text": "*INC-7* pages you"}},
            {"type": "actions", "block_id": "page", "elements": [acknowledge]},
        ]
        posted = await slack.chat_postMessage(channel=dm, text="INC-7 pages you", blocks=blocks)
        history = (await slack.conversations_history(channel=dm))["messages"]
        assert history[0]["blocks"][1]["elements"][0]["action_id"] == "incident_acknowledge"
        root = emu.base_url.removesuffix("api/")
        async with aiohttp.ClientSession() as http:
            async with http.get(root + "?as=" + ALICE) as page:
                html = await page.text()
            assert "Direct message with @alice" in html and "<b>INC-7</b> pages you" in html
            assert f"name='channel' value='{dm}'" in html and ">Acknowledge</button>" in html
            assert "<h2>User groups</h2>" in html and "@oncall" in html
            assert "@alice, @bob" in html
            click = {
                "user": ALICE,
                "channel": dm,
                "ts": posted["ts"],
                "action_id": "incident_acknowledge",
                "block_id": "page",
                "value": "incident-7",
            }
            async with http.post(root + "_emulator/click", json=click) as answer:
                assert (await answer.json())["status"] == 200
    finally:
        emu.console.app_url = ""
        await runner.cleanup()
    (payload,) = received
    assert payload["type"] == "block_actions" and payload["user"]["id"] == ALICE
    assert payload["channel"] == {"id": dm, "name": "directmessage"}
    assert payload["actions"][0]["value"] == "incident-7"


async def test_join_is_idempotent_with_a_warning(emu: SlackEmulator, slack: AsyncWebClient):
    general = emu.channel_by_name("general")
    assert general is not None
    assert "warning" not in (await slack.conversations_join(channel=general.id)).data
    again = await slack.conversations_join(channel=general.id)
    assert again["warning"] == "already_in_channel"


async def test_posting_to_a_user_id_opens_one_direct_message(
    emu: SlackEmulator, slack: AsyncWebClient
):
    first = await slack.chat_postMessage(channel=ALICE, text="You are paged for INC-1")
    opened = await slack.conversations_open(users=ALICE)
    assert opened["channel"]["id"] == first["channel"] and first["channel"].startswith("D")
    assert emu.channels[first["channel"]].members == [BOT_USER_ID, ALICE]


async def test_views_open_returns_a_view_id(slack: AsyncWebClient):
    view = {"type": "modal", "title": {"type": "plain_text", "text": "Declare"}, "blocks": []}
    response = await slack.views_open(trigger_id="12345.98765", view=view)
    assert response["view"]["id"].startswith("V")


async def test_control_endpoints_over_http(emu: SlackEmulator, slack: AsyncWebClient):
    root = emu.base_url.removesuffix("api/")
    await new_channel(slack, "inc-control")
    async with aiohttp.ClientSession() as http:
        fault = {"method": "chat.postMessage", "error": "channel_not_found"}
        async with http.post(root + "_emulator/faults", json=fault) as response:
            assert response.status == 200
        async with http.post(root + "_emulator/faults", json={"method": "x", "bogus": 1}) as bad:
            assert bad.status == 400
        error = await slack_error(slack.chat_postMessage(channel="#incidents", text="hi"))
        assert error.response["error"] == "channel_not_found"
        async with http.get(root + "_emulator/calls", params={"method": "chat.postMessage"}) as r:
            calls = (await r.json())["calls"]
        assert [(c["method"], c["ok"], c["error"]) for c in calls] == [
            ("chat.postMessage", False, "channel_not_found")
        ]
        async with http.get(root + "_emulator/state") as r:
            state = await r.json()
        control = next(c for c in state["channels"] if c["name"] == "inc-control")
        assert control["members"] == [BOT_USER_ID] and control["archived"] is False
        assert {"U0ALICE01", "U024BE7LH"} <= {u["id"] for u in state["users"]}
        async with http.post(root + "_emulator/reset") as r:
            assert r.status == 200
    assert emu.channel_by_name("inc-control") is None and emu.calls == []


async def test_page_shows_channels_and_escapes_their_text(
    emu: SlackEmulator, slack: AsyncWebClient
):
    channel_id = await new_channel(slack, "inc-page-shown")
    await slack.conversations_setTopic(channel=channel_id, topic="<b>bold</b> & more")
    await slack.chat_postMessage(channel=channel_id, text="<script>alert(1)</script>")
    root = emu.base_url.removesuffix("api/")
    async with aiohttp.ClientSession() as http, http.get(root) as response:
        assert response.status == 200
        html = await response.text()
    assert "#inc-page-shown" in html and "http-equiv='refresh'" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; more" in html


async def test_command_line_serves_until_sigterm():
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "localslack",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), timeout=10)).decode()
    base_url = line.strip()
    assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/api/")
    client = AsyncWebClient(base_url=base_url, token=BOT_TOKEN)
    assert (await client.auth_test())["ok"]
    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), timeout=10) == 0


async def test_command_line_drives_the_app_its_environment_names_signed_with_its_secret():
    """LOCALSLACK_APP_URL and SLACK_SIGNING_SECRET, as `make run` hands them to the emulator."""
    received: dict[str, str] = {}

    async def events(request: web.Request) -> web.Response:
        received.update(request.headers, body=await request.text())
        return web.Response(text="")

    app = web.Application()
    app.router.add_post("/slack/events", events)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    secret = "a-signing-secret-from-the-environment"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "localslack", "--port", "0"),
        stdout=asyncio.subprocess.PIPE,
        env={"LOCALSLACK_APP_URL": f"http://127.0.0.1:{port}", "SLACK_SIGNING_SECRET": secret},
    )
    try:
        assert process.stdout is not None
        base_url = (await asyncio.wait_for(process.stdout.readline(), 10)).decode().strip()
        client = AsyncWebClient(base_url=base_url, token=BOT_TOKEN)
        channel = (await client.conversations_create(name="inc-signed"))["channel"]["id"]
        slash = {"user": ALICE, "channel": channel, "text": "/incident help"}
        console = base_url.removesuffix("api/") + "_emulator/slash"
        async with aiohttp.ClientSession() as http, http.post(console, json=slash) as response:
            assert (await response.json())["status"] == 200
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 10)
        await runner.cleanup()
    timestamp, body = received["X-Slack-Request-Timestamp"], received["body"]
    assert received["X-Slack-Signature"] == signature(secret, timestamp, body)
    assert "command=%2Fincident" in body


def no_retries(emu: SlackEmulator) -> AsyncWebClient:
    """slack_sdk re-sends on a dropped connection by default; these tests see every answer."""
    return AsyncWebClient(base_url=emu.base_url, token=BOT_TOKEN, retry_handlers=[])


async def test_commit_then_fail_fault_does_the_write_and_loses_the_answer(emu: SlackEmulator):
    slack = no_retries(emu)
    channel = await new_channel(slack)
    emu.inject(Fault(method="chat.postMessage", status=503, commit=True))
    error = await slack_error(slack.chat_postMessage(channel=channel, text="once"))
    assert error.response.status_code == 503
    emu.inject(Fault(method="conversations.setTopic", drop=True, commit=True))
    with pytest.raises(aiohttp.ClientError):
        await slack.conversations_setTopic(channel=channel, topic="kept")
    assert [m["text"] for m in bot_posts(emu, channel)] == ["once"]
    assert emu.channels[channel].topic == "kept"


async def test_chaos_fails_a_seeded_share_of_writes_after_they_commit(emu: SlackEmulator):
    slack = no_retries(emu)
    channel = await new_channel(slack)
    async with aiohttp.ClientSession() as http:
        control = emu.base_url.removesuffix("api/") + "_emulator/chaos"
        async with http.post(control, json={"rate": 0.5, "seed": 3}) as response:
            assert response.status == 200
        async with http.post(control, json={"rate": 2}) as response:
            assert response.status == 400
    failed = 0
    for n in range(20):
        try:
            await slack.chat_postMessage(channel=channel, text=str(n))
        except (SlackApiError, aiohttp.ClientError):
            failed += 1
    for _ in range(5):
        await slack.conversations_history(channel=channel)  # reads never fail
    assert 3 <= failed <= 17
    assert len(bot_posts(emu, channel)) == 20


async def test_tokens_have_scopes_and_a_missing_one_is_named(emu: SlackEmulator):
    bot = AsyncWebClient(base_url=emu.base_url, token=BOT_TOKEN)  # the manifest's scopes
    channel = await new_channel(bot)
    posted = await bot.chat_postMessage(channel=channel, text="allowed: chat:write")
    # The app hears reactions (reactions:read) but never adds one.
    error = await slack_error(
        bot.reactions_add(channel=channel, timestamp=posted["ts"], name="eyes")
    )
    assert error.response["error"] == "missing_scope"
    assert error.response["needed"] == "reactions:write"
    assert "chat:write" in error.response["provided"].split(",")


async def test_chat_write_public_lets_a_bot_post_where_it_is_not_a_member(
    emu: SlackEmulator, slack: AsyncWebClient
):
    bot = AsyncWebClient(base_url=emu.base_url, token=BOT_TOKEN)  # no chat:write.public
    channel = await new_channel(slack)
    emu.channels[channel].members.remove(BOT_USER_ID)
    error = await slack_error(bot.chat_postMessage(channel=channel, text="hi"))
    assert error.response["error"] == "not_in_channel"
    writer = AsyncWebClient(base_url=emu.base_url, token=PUBLIC_WRITER)
    await writer.chat_postMessage(channel=channel, text="hi")
    assert [m["text"] for m in bot_posts(emu, channel)] == ["hi"]


@pytest.mark.parametrize(
    "block",
    [
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "x"}] * 11},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "x" * 2001}]},
        {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}},
        {"type": "header", "text": {"type": "plain_text", "text": "x" * 151}},
        {
            "type": "actions",
            "elements": [{"type": "button", "text": {"type": "plain_text", "text": "x" * 76}}],
        },
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": "a" * 256,
                    "text": {"type": "plain_text", "text": "ok"},
                }
            ],
        },
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "ok"},
            "accessory": {
                "type": "button",
                "url": "https://x/" + "a" * 3000,
                "text": {"type": "plain_text", "text": "ok"},
            },
        },
    ],
)
async def test_block_kit_limits_answer_invalid_blocks(
    emu: SlackEmulator, slack: AsyncWebClient, block: dict[str, Any]
):
    channel = await new_channel(slack)
    error = await slack_error(slack.chat_postMessage(channel=channel, text="t", blocks=[block]))
    assert error.response["error"] == "invalid_blocks"
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "x"}}
    error = await slack_error(
        slack.chat_postMessage(channel=channel, text="t", blocks=[section] * 51)
    )
    assert error.response["error"] == "invalid_blocks"


async def test_invite_takes_at_most_a_hundred_users_per_call(
    emu: SlackEmulator, slack: AsyncWebClient
):
    channel = await new_channel(slack)
    users = ",".join(f"U0MANY{n:04d}" for n in range(101))
    error = await slack_error(slack.conversations_invite(channel=channel, users=users))
    assert error.response["error"] == "too_many_users"


async def test_bookmarks_are_added_edited_listed_and_removed(
    emu: SlackEmulator, slack: AsyncWebClient
):
    channel = await new_channel(slack)
    added = await slack.bookmarks_add(
        channel_id=channel, title="Runbook", type="link", link="https://runbooks.example.com/a"
    )
    bookmark_id = added["bookmark"]["id"]
    await slack.bookmarks_edit(channel_id=channel, bookmark_id=bookmark_id, title="Runbook A")
    listed = await slack.bookmarks_list(channel_id=channel)
    assert [b["title"] for b in listed["bookmarks"]] == ["Runbook A"]
    await slack.bookmarks_remove(channel_id=channel, bookmark_id=bookmark_id)
    assert (await slack.bookmarks_list(channel_id=channel))["bookmarks"] == []
    error = await slack_error(slack.bookmarks_remove(channel_id=channel, bookmark_id=bookmark_id))
    assert error.response["error"] == "not_found"


async def test_the_control_routes_refuse_cross_site_posts(emu: SlackEmulator):
    root = emu.base_url.removesuffix("api/")
    async with aiohttp.ClientSession() as http:
        for path in ("_emulator/reset", "_emulator/faults", "_emulator/chaos"):
            for forged in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
                async with http.post(root + path, json={}, headers=forged) as answer:
                    assert answer.status == 403, (path, forged)

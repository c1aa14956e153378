"""The emulator's page renders like Slack, safely, and its POST routes refuse other sites."""

from __future__ import annotations

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from localslack import BOT_TOKEN, SlackEmulator
from localslack.rendering import mrkdwn
from localslack.workspace import Workspace


def test_mrkdwn_renders_formatting_mentions_links_and_emoji_and_escapes_the_rest():
    ws = Workspace("incidents", False)
    general = next(c for c in ws.channels.values() if c.is_general)
    html = mrkdwn(
        ws,
        f"*INC-1* :rotating_light: _slow_ ~old~ `a&lt;b` <@U0ALICE01> in <#{general.id}> "
        "<!here> <!subteam^S0ONCALL1> <https://x.test/?a=1&amp;b=2|the runbook> "
        "&lt;!channel&gt; <script>x</script> :unknown_code:",
    )
    assert "<b>INC-1</b> 🚨 <i>slow</i> <s>old</s> <code>a&lt;b</code>" in html
    assert "<span class='mention'>@alice</span> in <span class='mention'>#general</span>" in html
    assert "<span class='mention'>@here</span> <span class='mention'>@oncall</span>" in html
    assert "<a href='https://x.test/?a=1&amp;b=2' rel='noreferrer noopener'" in html
    assert ">the runbook</a>" in html
    assert "&lt;!channel&gt; &lt;script&gt;x&lt;/script&gt; :unknown_code:" in html
    assert "<script>" not in html
    assert mrkdwn(ws, "_by <@U0BOB0002>_") == "<i>by <span class='mention'>@bob</span></i>"
    assert mrkdwn(ws, "due <!date^1700000000^{time}|10:02 UTC>") == "due 10:02 UTC"


@pytest.fixture
async def emu():
    async with SlackEmulator() as emulator:
        yield emulator


async def test_page_posts_from_another_site_are_refused(emu):
    root = emu.base_url.removesuffix("api/")
    general = next(c for c in emu.workspace.channels.values() if c.is_general)
    form = {"user": "U0ALICE01", "channel": general.id, "text": "hello from the page"}
    async with aiohttp.ClientSession() as http:
        for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.test"}):
            async with http.post(root + "_emulator/slash", data=form, headers=headers) as r:
                assert r.status == 403
        same = {"Sec-Fetch-Site": "same-origin", "Origin": root.rstrip("/")}
        async with http.post(
            root + "_emulator/slash", data=form, headers=same, allow_redirects=False
        ) as r:
            assert r.status == 303
        async with http.post(root + "_emulator/respond/Rnever", json={"text": "x"}) as r:
            assert r.status == 404
    assert [m["text"] for m in emu.messages(general.id)][-1] == "hello from the page"


async def test_the_page_draws_buttons_as_forms_and_open_modals_as_forms(emu):
    ws = emu.workspace
    general = next(c for c in ws.channels.values() if c.is_general)
    button = {
        "type": "button",
        "action_id": "incident_acknowledge",
        "value": "incident-1",
        "text": {"type": "plain_text", "text": "Acknowledge"},
        "style": "primary",
    }
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "*INC-1* &lt;b&gt;"}},
        {"type": "actions", "block_id": "kickoff", "elements": [button]},
    ]
    general.add({"type": "message", "ts": ws.next_ts(), "user": "U0BOT0001", "blocks": blocks})
    ws.triggers["1.T"] = "U0BOB0002"
    view = {
        "type": "modal",
        "callback_id": "incident_status",
        "title": {"type": "plain_text", "text": "Status of INC-1"},
        "blocks": [
            {
                "type": "input",
                "block_id": "message",
                "label": {"type": "plain_text", "text": "What changed"},
                "element": {"type": "plain_text_input", "action_id": "message", "multiline": True},
            }
        ],
    }
    client = AsyncWebClient(base_url=emu.base_url, token=BOT_TOKEN)
    await client.views_open(trigger_id="1.T", view=view)
    root = emu.base_url.removesuffix("api/")
    async with aiohttp.ClientSession() as http, http.get(root + "?as=U0BOB0002") as r:
        html = await r.text()
    assert "<b>INC-1</b> &lt;b&gt;" in html
    assert "action='/_emulator/click'" in html and "value='incident_acknowledge'" in html
    assert ">Acknowledge</button>" in html
    assert "Status of INC-1" in html and "<textarea name='message'" in html
    async with aiohttp.ClientSession() as http, http.get(root + "?as=U0ALICE01") as r:
        assert "Status of INC-1" not in await r.text()  # a modal is for whoever opened it


async def test_views_push_and_update_follow_slack_rules(emu):
    client = AsyncWebClient(base_url=emu.base_url, token=BOT_TOKEN)
    emu.workspace.triggers["2.T"] = "U0CAROL03"
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "One"}, "blocks": []}
    opened = (await client.views_open(trigger_id="2.T", view=modal))["view"]
    pushed = await client.views_push(trigger_id="2.T", view={**modal, "external_id": "x"})
    assert pushed["view"]["root_view_id"] == opened["id"]
    two = {**modal, "title": {"type": "plain_text", "text": "Two"}}
    updated = await client.views_update(view_id=opened["id"], hash=opened["hash"], view=two)
    assert updated["view"]["title"]["text"] == "Two" and updated["view"]["hash"] != opened["hash"]
    with pytest.raises(SlackApiError) as stale:
        await client.views_update(view_id=opened["id"], hash=opened["hash"], view=two)
    assert stale.value.response["error"] == "hash_conflict"
    by_external = await client.views_update(external_id="x", view=two)
    assert by_external["view"]["id"] == pushed["view"]["id"]
    with pytest.raises(SlackApiError) as missing:
        await client.views_update(view_id="Vnope", view=two)
    assert missing.value.response["error"] == "not_found"
    assert emu.workspace.views[opened["id"]]["user"] == "U0CAROL03"

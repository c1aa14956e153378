"""The emulator's external upload flow, driven by slack_sdk's own files_upload_v2."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from localslack import BOT_TOKEN, SlackEmulator


@pytest.fixture(scope="module")
async def emu() -> AsyncIterator[SlackEmulator]:
    emulator = SlackEmulator()
    await emulator.start(host="127.0.0.1", port=0)
    try:
        yield emulator
    finally:
        await emulator.stop()


@pytest.fixture
def web(emu: SlackEmulator) -> AsyncWebClient:
    return AsyncWebClient(base_url=emu.base_url, token=BOT_TOKEN)


async def channel(web: AsyncWebClient, name: str) -> str:
    created = await web.conversations_create(name=name)
    return str(created["channel"]["id"])


async def test_upload_v2_shares_files_in_the_channel_with_their_bytes(emu, web):
    channel_id = await channel(web, "files-shared")
    response = await web.files_upload_v2(
        channel=channel_id,
        file_uploads=[
            {"content": b"# Report\n", "filename": "report.md", "title": "The report"},
            {"content": b"BEGIN:VCALENDAR\r\n", "filename": "invite.ics"},
        ],
        initial_comment="Situation report",
    )
    files = response["files"]
    assert [f["title"] for f in files] == ["The report", "invite.ics"]
    assert files[0]["permalink"].endswith(f"/{files[0]['id']}/report.md")
    (message,) = [m for m in emu.messages(channel_id) if m.get("files")]
    assert message["text"] == "Situation report" and message["upload"] is True
    assert [f["name"] for f in message["files"]] == ["report.md", "invite.ics"]
    assert emu.workspace.files[files[0]["id"]]["content"] == b"# Report\n"


async def test_completing_an_upload_never_sent_is_file_not_found(emu, web):
    ticket = await web.files_getUploadURLExternal(filename="late.md", length=4)
    with pytest.raises(SlackApiError) as raised:
        await web.files_completeUploadExternal(files=[{"id": ticket["file_id"]}])
    assert raised.value.response["error"] == "file_not_found"


async def test_upload_url_takes_bytes_once_and_only_for_its_ticket(emu, web):
    ticket = await web.files_getUploadURLExternal(filename="once.md", length=3)
    async with aiohttp.ClientSession() as http:
        first = await http.post(ticket["upload_url"], data=b"abc")
        again = await http.post(ticket["upload_url"], data=b"abc")
        unknown = await http.post(ticket["upload_url"][:-3] + "XYZ", data=b"abc")
    assert (first.status, again.status, unknown.status) == (200, 404, 404)


async def test_upload_arguments_are_checked_like_slack(emu, web):
    for arguments, error in [
        ({"filename": "x.md"}, "missing_argument"),
        ({"filename": "x.md", "length": "0"}, "invalid_arguments"),
        ({"filename": "x.md", "length": "3", "alt_txt": "a" * 1001}, "alt_txt_too_large"),
    ]:
        with pytest.raises(SlackApiError) as raised:
            await web.api_call("files.getUploadURLExternal", params=arguments)
        assert raised.value.response["error"] == error
    with pytest.raises(SlackApiError) as raised:
        await web.api_call("files.completeUploadExternal", params={"files": "not json"})
    assert raised.value.response["error"] == "invalid_array_arg"
    ticket = await web.files_getUploadURLExternal(filename="lost.md", length=1)
    async with aiohttp.ClientSession() as http:
        await http.post(ticket["upload_url"], data=b"x")
    with pytest.raises(SlackApiError) as raised:
        await web.files_completeUploadExternal(
            files=[{"id": ticket["file_id"]}], channel_id="C0NOPE"
        )
    assert raised.value.response["error"] == "channel_not_found"


async def slack_error(call: Awaitable[Any]) -> str:
    with pytest.raises(SlackApiError) as raised:
        await call
    return str(raised.value.response["error"])


MARKDOWN = {"type": "markdown", "markdown": "# Draft\n\n- [ ] #1 <b>bold</b> & more\n"}


async def test_a_channel_has_one_channel_canvas_and_a_canvas_is_a_file(emu, web):
    channel_id = await channel(web, "canvas-one")
    made = await web.conversations_canvases_create(
        channel_id=channel_id, document_content=MARKDOWN, title="Retrospective (draft)"
    )
    canvas_id = made["canvas_id"]
    assert canvas_id.startswith("F") and emu.workspace.canvases[canvas_id]["channel_canvas"]
    again = web.conversations_canvases_create(channel_id=channel_id, document_content=MARKDOWN)
    assert await slack_error(again) == "channel_canvas_already_exists"
    listed = await web.files_list(user="U0BOT0001", ts_from="0")
    (found,) = [f for f in listed["files"] if f["id"] == canvas_id]
    assert found["title"] == "Retrospective (draft)" and found["channels"] == [channel_id]
    assert found["permalink"].endswith(f"/docs/T0LOCAL1/{canvas_id}")
    missing = web.api_call("conversations.canvases.create", json={"document_content": MARKDOWN})
    assert await slack_error(missing) == "invalid_arguments"
    bad = {"type": "html", "markdown": "x"}
    refused = web.canvases_create(title="x", document_content=bad)
    assert await slack_error(refused) == "canvas_creation_failed"


async def test_a_canvas_of_its_own_is_shared_with_a_channel_by_its_access(emu, web):
    channel_id = await channel(web, "canvas-shared")
    made = await web.canvases_create(title="INC-9 situation report", document_content=MARKDOWN)
    canvas_id = made["canvas_id"]
    both = web.canvases_access_set(
        canvas_id=canvas_id, access_level="read", channel_ids=[channel_id], user_ids=["U0ALICE01"]
    )
    assert await slack_error(both) == "invalid_parameters"
    level = web.canvases_access_set(canvas_id=canvas_id, access_level="admin", channel_ids=["C1"])
    assert await slack_error(level) == "invalid_arguments"
    unknown = web.canvases_access_set(canvas_id="F0NONE", access_level="read", user_ids=["U1"])
    assert await slack_error(unknown) == "canvas_not_found"
    shared = {"canvas_id": canvas_id, "access_level": "read", "channel_ids": [channel_id]}
    await web.canvases_access_set(**shared)
    assert emu.workspace.canvases[canvas_id]["access"] == {channel_id: "read"}
    listed = await web.files_list(channel=channel_id)
    assert [f["id"] for f in listed["files"]] == [canvas_id]


async def test_a_free_or_canvasless_workspace_refuses_like_slack(emu, web):
    channel_id = await channel(web, "canvas-plans")
    try:
        emu.workspace.canvas_plan = "off"
        off = web.conversations_canvases_create(channel_id=channel_id, document_content=MARKDOWN)
        assert await slack_error(off) == "canvas_disabled_user_team"
        emu.workspace.canvas_plan = "free"
        alone = web.canvases_create(title="report", document_content=MARKDOWN)
        assert await slack_error(alone) == "free_teams_cannot_create_standalone_canvases"
        await web.canvases_create(title="tab", document_content=MARKDOWN, channel_id=channel_id)
        second = web.conversations_canvases_create(channel_id=channel_id, document_content=MARKDOWN)
        assert await slack_error(second) == "free_team_canvas_tab_already_exists"
    finally:
        emu.workspace.canvas_plan = "paid"


async def test_the_page_links_a_channels_canvas_and_shows_its_markdown_escaped(emu, web):
    channel_id = await channel(web, "canvas-page")
    made = await web.conversations_canvases_create(
        channel_id=channel_id, document_content=MARKDOWN, title="<i>Draft</i>"
    )
    async with aiohttp.ClientSession() as http:
        async with http.get(emu.base_url.removesuffix("/api/") + "/") as response:
            page = await response.text()
        assert f"href='/_emulator/canvas/{made['canvas_id']}'>&lt;i&gt;Draft&lt;/i&gt;</a>" in page
        url = emu.base_url.removesuffix("/api/") + f"/_emulator/canvas/{made['canvas_id']}"
        async with http.get(url) as response:
            shown = await response.text()
    assert "<h2>Draft</h2>" in shown
    assert "<li>☐ #1 &lt;b&gt;bold&lt;/b&gt; &amp; more</li>" in shown and "<b>bold" not in shown
    async with aiohttp.ClientSession() as http:
        plan = emu.base_url.removesuffix("/api/") + "/_emulator/canvases"
        async with http.post(plan, json={"plan": "gold"}) as response:
            assert response.status == 400

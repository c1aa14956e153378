"""The emulator's external upload flow, driven by slack_sdk's own files_upload_v2."""

from __future__ import annotations

from collections.abc import AsyncIterator

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

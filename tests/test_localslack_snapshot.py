"""The emulator's workspace on disk: channels and messages outlive a restart of the emulator."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from localslack import BOT_TOKEN
from localslack.control import load
from localslack.workspace import Workspace
from tests.processes import EmulatorProcess


async def wait_for_save(path: Path, text: str, emulator: EmulatorProcess) -> None:
    await emulator.wait_for(
        lambda: path.exists() and text in path.read_text(), f"saving {text!r}", timeout=10
    )


async def test_emulator_workspace_survives_a_killed_emulator(tmp_path: Path) -> None:
    snapshot = tmp_path / "workspace.json"
    emulator = EmulatorProcess(tmp_path / "localslack.log", snapshot=snapshot)
    await emulator.started()
    try:
        slack = AsyncWebClient(token=BOT_TOKEN, base_url=emulator.base_url)
        created = await slack.conversations_create(name="inc-1-checkout")
        channel = created["channel"]["id"]
        posted = await slack.chat_postMessage(channel=channel, text="kickoff")
        await slack.pins_add(channel=channel, timestamp=posted["ts"])
        await wait_for_save(snapshot, '"pinned_to"', emulator)
        assert stat.S_IMODE(snapshot.stat().st_mode) == 0o600

        emulator.kill()  # no goodbye: what was saved is what comes back
        await emulator.started()

        info = await slack.conversations_info(channel=channel)
        assert info["channel"]["name"] == "inc-1-checkout"
        history = await slack.conversations_history(channel=channel)
        assert history["messages"][0]["text"] == "kickoff"
        # The app has no pins:read scope; the emulator's own record shows the pin.
        restored = {c["id"]: c for c in (await emulator.state())["channels"]}
        assert restored[channel]["pins"] == [posted["ts"]]
        with pytest.raises(SlackApiError) as taken:
            await slack.conversations_create(name="inc-1-checkout")
        assert taken.value.response["error"] == "name_taken"
        # New messages still sort after the old ones.
        later = await slack.chat_postMessage(channel=channel, text="update")
        assert float(later["ts"]) > float(posted["ts"])
    finally:
        emulator.stop()


def test_a_damaged_snapshot_is_set_aside_and_the_workspace_starts_fresh(tmp_path: Path) -> None:
    snapshot = tmp_path / "workspace.json"
    snapshot.write_text(json.dumps({"version": 1, "channels": [{"id": "C1"}]}))
    workspace = Workspace("incidents", per_channel_rate_limit=False)
    assert load(workspace, snapshot) is False
    assert not snapshot.exists() and (tmp_path / "workspace.json.damaged").exists()
    assert workspace.channel_by_name("incidents") is not None

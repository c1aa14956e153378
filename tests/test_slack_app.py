"""The Slack app end to end: the emulator signs and sends what Slack would, the API's Bolt app
answers through the desk and the session's worker, and replies land on the emulator's
response_url. Every assertion is on what Slack (the emulator) saw or on the incident itself."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn

from config import Settings
from localslack import SlackEmulator
from localslack.console import Reply, Sent
from starter.api import create_app
from starter.desk import IncidentDesk
from tests.support import eventually

SECRET = "test-signing-secret"
ALICE, BOB, CAROL = "U0ALICE01", "U0BOB0002", "U0CAROL03"


@pytest.fixture(scope="module")
async def app_url(
    settings: Settings, desk: IncidentDesk, slack: SlackEmulator
) -> AsyncIterator[str]:
    api_settings = settings.model_copy(
        update={"slack_signing_secret": SECRET, "api_tokens": "slack-test-token"}
    )
    app = create_app(api_settings, desk=desk)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    await eventually(lambda: server.started or serving.done(), timeout=10)
    url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    slack.console.app_url, slack.console.signing_secret = url, SECRET
    try:
        yield url
    finally:
        slack.console.app_url = ""
        server.should_exit = True
        await serving


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

    def open_view(self, callback_id: str) -> dict[str, Any]:
        views = [
            v
            for v in self.ws.views.values()
            if v["open"] and v["user"] == self.user and v["view"]["callback_id"] == callback_id
        ]
        assert views, f"no open {callback_id} modal for {self.user}"
        return views[-1]["view"]


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
    state = await declared(alice, desk, "Checkout failing", "sev1")
    assert state.severity == "sev1" and state.declared_by == ALICE and state.source == "slack"
    assert state.idempotency_key and state.idempotency_key.startswith("slack-")
    channel = slack.channel_by_name(state.channel.name)
    assert channel is not None and not channel.is_archived

"""What reaches Slack is safe: people's text escaped everywhere, mentions only from ids."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from localslack import SlackEmulator
from starter.desk import IncidentDesk
from tests.support import eventually
from workflows import commands as cmd
from workflows.models import Declaration, Status

HOSTILE = "<!channel> everyone look <@U0MALLORY> <!here> <!subteam^S0OPS> <https://x|y> & co"
# Control sequences only we may write: our own ids, channel links and dates.
LIVE = re.compile(r"<(?!@U0ALICE01>|@U0BOB0002>|@U0CAROL03>|#C[A-Z0-9]+>|!date\^)[^>]*>")
BARE_AMPERSAND = re.compile(r"&(?!amp;|lt;|gt;)")
WRITES = {
    "chat.postMessage": ("text", "blocks"),
    "chat.update": ("text", "blocks"),
    "conversations.setTopic": ("topic",),
    "conversations.setPurpose": ("purpose",),
}


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def written(slack: SlackEmulator, incident_id: str, channel_id: str) -> list[str]:
    """Every text this incident sent to Slack, as the emulator recorded the calls."""
    texts: list[str] = []
    for call in slack.calls:
        if call.method not in WRITES or not call.ok:
            continue
        payload = call.args.get("metadata", {}).get("event_payload", {})
        if call.args.get("channel") != channel_id and payload.get("incident_id") != incident_id:
            continue
        for name in WRITES[call.method]:
            texts += strings(call.args.get(name))
    return texts


async def test_peoples_text_reaches_slack_escaped_with_no_live_mention(
    desk: IncidentDesk, slack: SlackEmulator
) -> None:
    state, _ = await desk.declare(
        Declaration(
            title=HOSTILE,
            severity="sev2",
            summary=HOSTILE,
            components=[HOSTILE, "checkout"],
            commander="U0ALICE01",
        )
    )
    assert state.channel is not None
    for command in (
        cmd.SetStatus(status=Status.IDENTIFIED, message=HOSTILE, by="U0ALICE01"),
        cmd.PostUpdate(message=HOSTILE, by="U0ALICE01"),
        cmd.SetSeverity(severity="sev1", reason=HOSTILE),
        cmd.AssignRole(role="comms_lead", user="U0BOB0002"),
        cmd.AddResponders(users=["U0BOB0002", "U0ALICE01", "U0CAROL03"]),
        cmd.Escalate(reason=HOSTILE),
        cmd.AddActionItem(text=HOSTILE, owner="U0BOB0002"),
        cmd.CompleteActionItem(item_id=1),
        cmd.Resolve(message=HOSTILE),
        cmd.Reopen(reason=HOSTILE),
    ):
        state = await desk.command(state.id, command)
    channel_id = state.channel.id
    notices = 13  # kickoff, announcement and one per command above, some in both channels

    def all_sent() -> list[str] | None:
        posts = [
            c
            for c in slack.calls_to("chat.postMessage")
            if c.ok
            and c.args.get("metadata", {}).get("event_payload", {}).get("incident_id") == state.id
        ]
        return written(slack, state.id, channel_id) if len(posts) >= notices else None

    texts = await eventually(all_sent, timeout=30)
    assert any("&lt;!channel&gt; everyone look" in t for t in texts)
    assert any("&lt;https://x|y&gt; &amp; co" in t for t in texts)
    assert [t for t in texts if LIVE.search(t)] == []
    assert [t for t in texts if BARE_AMPERSAND.search(t)] == []
    # Our own mentions stay live, and the timeline keeps what people typed.
    assert any("<@U0BOB0002>" in t for t in texts)
    assert any(entry.text.endswith(HOSTILE) for entry in state.timeline)

"""What the app hears from Slack's Events API: pins and reactions in an incident's channel put a
message on its timeline (and take it off again), joining the channel makes a responder, an
acknowledging reaction on an escalation notice or a page acknowledges, as the button does, the
broadcast announcement's Join button adds who clicks it to the channel, and opening the app
shows the person their App Home (``Home``).

Bolt acks every event at once (Slack wants a 2xx within 3 seconds) and runs the listener
after, so a slow incident never makes Slack retry. Slack retries a delivery it thinks failed
and now and then delivers one event twice; either way the ``event_id`` is the same, and it is
the command's request key, applied once in whichever run it lands. An incident's channel is
found by its id (the ``IncidentChannelId`` search attribute), which events carry.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

import structlog
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from starter.oncall import OnCallDesk, ScheduleUnavailable
from starter.reading import HomeReading, person_home, shown_digest
from starter.slack import blocks
from starter.slack.commands import REFUSALS, SlackDesk, error_text
from workflows.effects import Notice
from workflows.lifecycle import commands as cmd
from workflows.text import parse_incident_ref

log = structlog.get_logger()

# The events the app subscribes to; the manifests list exactly these (tests/test_manifest.py).
EVENTS = (
    "reaction_added",
    "reaction_removed",
    "pin_added",
    "pin_removed",
    "member_joined_channel",
    "app_home_opened",
)
# Messages a reaction acknowledges from: the metadata key of an escalation notice and a page DM.
ACKNOWLEDGED_FROM = (f"{Notice.ESCALATED.value}-", f"{Notice.PAGED.value}-")
MAX_REF = 40  # the Join button's value: an incident's id
MAX_TEXT = 3000  # a pinned message's text on the timeline, as "Add to timeline" keeps it


def register_events(app: AsyncApp, slack: SlackDesk) -> None:
    heard = Heard(slack)
    app.event("reaction_added")(heard.reaction)
    app.event("reaction_removed")(heard.reaction)
    app.event("pin_added")(heard.pin)
    app.event("pin_removed")(heard.pin)
    app.event("member_joined_channel")(heard.joined)
    app.action("incident_join")(heard.join)
    home = Home(slack)
    app.event("app_home_opened")(home.opened)
    app.action(blocks.HOME_DONE)(home.done)


class Heard:
    def __init__(self, slack: SlackDesk) -> None:
        self.slack = slack

    async def reaction(
        self, body: dict[str, Any], event: dict[str, Any], client: AsyncWebClient
    ) -> None:
        item = event.get("item") or {}
        if item.get("type") != "message":
            return  # a reaction on a file
        name, channel, ts = str(event.get("reaction", "")), str(item["channel"]), str(item["ts"])
        policy = self.slack.desk.policy.slack
        on = event["type"] == "reaction_added"
        wanted = (on and name in policy.ack_reactions) or name in policy.timeline_reactions
        if not wanted:
            return
        message = await _message(client, channel, ts)
        if message is None:
            return
        if on and name in policy.ack_reactions:
            await self._acknowledge(body, event, message)
        if name in policy.timeline_reactions:
            await self._mark(body, event, channel, message, name, on)

    async def pin(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        item = event.get("item") or {}
        message = item.get("message")
        if item.get("type") != "message" or not isinstance(message, dict):
            return  # a pinned file
        channel = str(event.get("channel_id") or item.get("channel", ""))
        await self._mark(body, event, channel, message, "pin", event["type"] == "pin_added")

    async def joined(
        self, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        if context.bot_user_id in (event.get("user"), event.get("inviter")):
            return  # the incident's own doing (its channel, its invitations), already noted
        ref = await self.slack.desk.in_channel(str(event.get("channel", "")))
        if ref is not None:
            await self._run(body, ref, cmd.JoinChannel, {"by": event.get("user")})

    async def join(
        self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        """The announcement's Join: the bot invites who clicked into the incident's channel, and
        they become a responder (the bot's own invitations are not heard as joins)."""
        await ack()
        user = str((body.get("user") or {}).get("id", ""))
        try:
            state = await self.slack.desk.get(str(body["actions"][0].get("value", ""))[:MAX_REF])
        except REFUSALS as error:
            return await _tell(respond, f"Cannot join: {error_text(error)}")
        if state.channel is None or state.private or not state.is_open:
            return await _tell(respond, f"{state.label} has no channel open to join.")
        here = f"<#{state.channel.id}>"
        try:
            await client.conversations_invite(channel=state.channel.id, users=user)
        except SlackApiError as error:
            code = str(error.response.get("error"))
            said = "You are already in" if code == "already_in_channel" else f"{code}: not added to"
            return await _tell(respond, f"{said} {here}.")
        try:
            await self.slack.command(state.id, cmd.JoinChannel, {"by": user})
        except REFUSALS as error:  # already a responder: joining is what mattered
            log.info("slack_join_refused", incident_id=state.id, reason=error_text(error))
        except Exception:  # in the channel all the same; the timeline misses the join
            log.exception("slack_join_not_noted", incident_id=state.id)
        await _tell(respond, f"Added you to {here}.")

    async def _mark(
        self,
        body: dict[str, Any],
        event: dict[str, Any],
        channel: str,
        message: dict[str, Any],
        mark: str,
        on: bool,
    ) -> None:
        ref = await self.slack.desk.in_channel(channel)
        if ref is None:
            return
        fields = {
            "ts": str(message.get("ts", "")),
            "mark": mark,
            "on": on,
            "text": str(message.get("text") or "")[:MAX_TEXT],
            "author": message.get("user"),
            "by": event.get("user"),
        }
        await self._run(body, ref, cmd.MarkMessage, fields)

    async def _acknowledge(
        self, body: dict[str, Any], event: dict[str, Any], message: dict[str, Any]
    ) -> None:
        payload = (message.get("metadata") or {}).get("event_payload") or {}
        if not str(payload.get("key", "")).startswith(ACKNOWLEDGED_FROM):
            return
        try:
            ref = parse_incident_ref(str(payload.get("incident_id", "")))
        except ValueError:
            return
        await self._run(body, ref, cmd.Acknowledge, {"by": event.get("user")})

    async def _run(
        self, body: dict[str, Any], ref: str, model: type[cmd.Command], fields: dict[str, Any]
    ) -> None:
        """The command, applied once per event however often Slack delivers it."""
        event_id = str(body.get("event_id", ""))
        kind = (body.get("event") or {}).get("type")
        try:
            command = model.model_validate({**fields, "source": "slack"})
            await self.slack.desk.command(ref, command, request_key=f"slack-event-{event_id}")
            log.info("slack_event_applied", slack_event=kind, incident_id=ref, event_id=event_id)
        except REFUSALS as error:
            # Already so (a second pin, a repeated join), or the incident is closed.
            log.info(
                "slack_event_refused", slack_event=kind, incident_id=ref, reason=error_text(error)
            )
        except Exception:
            log.exception(
                "slack_event_failed", slack_event=kind, incident_id=ref, event_id=event_id
            )


async def _tell(respond: AsyncRespond, text: str) -> None:
    """Only the person who clicked sees the answer."""
    if respond.response_url:
        await respond(text=text, response_type="ephemeral", replace_original=False)


async def _message(client: AsyncWebClient, channel: str, ts: str) -> dict[str, Any] | None:
    """The message a reaction is on, with its metadata; None if the bot cannot read it."""
    try:
        found = await client.conversations_history(
            channel=channel, latest=ts, inclusive=True, limit=1, include_all_metadata=True
        )
    except SlackApiError as error:
        log.info("slack_event_message_unreadable", error=error.response.get("error"))
        return None
    messages = found.get("messages") or []
    return messages[0] if messages and messages[0].get("ts") == ts else None


# -- App Home ----------------------------------------------------------------------------------
HOME_INCIDENTS = 50  # the newest incidents one reading holds (each its state: roles, items)
HOME_KEPT = 500  # people whose Home is kept current: the latest to open it


class Home:
    """One person's open incidents with their roles, their open action items (Done completes
    one as them) and their next on-call shifts, published with ``views.publish``.

    Built when they open the tab, after a Done from it, and kept current for whoever opened it
    (the latest ``HOME_KEPT``, in this process): every ``[slack] home_refresh_every`` one
    ``HomeReading`` serves them all, and a tab is published again only where what it shows
    changed (a role, a status, an item, a handoff): a burst of changes publishes once, nothing
    loops. Roles but the commander's are not search attributes, so the states of the newest
    ``HOME_INCIDENTS`` unarchived incidents are read (an item of a resolved one too)."""

    def __init__(self, slack: SlackDesk) -> None:
        self.slack = slack
        self.shown: OrderedDict[str, str] = OrderedDict()  # person: what their tab shows (digest)
        self.read_at: dict[str, datetime] = {}  # person: when what their tab shows was read

    async def opened(self, event: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("tab") == "home":
            user = str(event.get("user", ""))
            self.shown.pop(user, None)  # the latest to open it: kept longest
            self.shown[user] = ""  # not yet published: the next round tries if this fails
            await self.publish(client, user)
            if not self.slack.background:
                self.slack.background.add(asyncio.create_task(self.keep_current(client)))

    async def done(self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        user = str((body.get("user") or {}).get("id", ""))
        ref, _, item = str(body["actions"][0].get("value", "")).partition(" ")
        note = ""
        try:
            fields = {"item_id": int(item), "by": user}
            await self.slack.command(ref, cmd.CompleteActionItem, fields)
        except REFUSALS as error:
            note = blocks.refused(error_text(error))
        await self.publish(client, user, note)

    async def publish(self, client: AsyncWebClient, user: str, note: str = "") -> None:
        self.read_at[user] = datetime.now(UTC)  # a round read before this must not follow it
        try:
            await self._publish(client, user, await self.read(), note)
        except Exception:  # Temporal or Slack down: the tab keeps what it showed last
            log.exception("slack_home_failed", user=user)

    async def keep_current(self, client: AsyncWebClient) -> None:
        """Beside the requests, for as long as the API runs; a Home that did not change is not
        published, and a refusal note stays atop the tab until something else changes."""
        while True:
            await asyncio.sleep(self.slack.desk.policy.slack.home_refresh_every.total_seconds())
            try:
                reading = await self.read()
                for user, shown in list(self.shown.items()):
                    await asyncio.sleep(0)  # requests go on between people (~0.3 ms each)
                    # An opening or a Done read (or is reading) after this round: not undone.
                    newer = self.read_at.get(user, reading.at) > reading.at
                    if newer or self.digest(reading, user) == shown:
                        continue
                    try:
                        await self._publish(client, user, reading)
                    except SlackApiError as error:  # refused for them (gone, say): until they
                        self.shown.pop(user, None)  # open it again, so the others get theirs
                        self.read_at.pop(user, None)
                        log.info("slack_home_dropped", user=user, error=error.response.get("error"))
            except Exception:  # Temporal or Slack down: the next round tries again
                log.exception("slack_home_not_kept_current")

    async def _publish(
        self, client: AsyncWebClient, user: str, reading: HomeReading, note: str = ""
    ) -> None:
        await client.views_publish(user_id=user, view=self.view(reading, user, note))
        self.shown[user], self.read_at[user] = self.digest(reading, user), reading.at
        while len(self.shown) > HOME_KEPT:
            self.read_at.pop(self.shown.popitem(last=False)[0], None)

    async def read(self) -> HomeReading:
        desk, started = self.slack.desk, datetime.now(UTC)  # what it shows is from then on
        states = await desk.running_states(HOME_INCIDENTS)
        try:
            rosters = await OnCallDesk(desk.client, desk.policy, desk.people).every_roster()
        except ScheduleUnavailable:
            rosters = None
        return HomeReading.of(states, rosters, started)

    def view(self, reading: HomeReading, user: str, note: str = "") -> dict[str, Any]:
        return blocks.home_view(*person_home(reading, user), note)

    def digest(self, reading: HomeReading, user: str) -> str:
        """What the tab shows, to tell a change by (a shift under way starts at the reading)."""
        return shown_digest(blocks.home_view(*person_home(reading, user, steady=True)))

"""The baselines: bare Temporal workflows doing the least the product's workflow does.

- ``BareDeclare`` (for bench.declare): started by update-with-start like an incident; the
  update returns once the workflow has run one no-op activity.
- ``BareTimer`` (for bench.timers and bench.replay): started by update-with-start like an
  incident (the update answers from its first workflow task); holds the same cadence timer as
  an incident (``wait_condition(lambda: False, timeout=due - now)``, due = start + n * every)
  and, when it fires, runs one activity that posts to Slack with the product's own slack_sdk
  client (``clients.slack_client.slack_client``): a text message whose metadata carries the
  key. With ``TimerInput.opening`` (bench.replay) it first runs one no-op activity and its
  ``opening`` update answers after it, as an incident's opening activity and update do; that
  activity takes an input (what a channel is opened with), as the incident's does.
- ``IncidentShape`` (for bench.replay): a standard incident's commands without its code.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio import activity, workflow
from temporalio.common import SearchAttributeKey

if TYPE_CHECKING:  # the sandbox re-imports this module for every workflow: keep it light
    from slack_sdk.web.async_client import AsyncWebClient

# The incident's (workflows/lifecycle/visibility.py), named here: this module stays light.
CHANNEL = SearchAttributeKey.for_keyword("IncidentChannel")
CHANNEL_ID = SearchAttributeKey.for_keyword("IncidentChannelId")


@dataclass
class TimerInput:
    every: float  # seconds
    channel_id: str
    opening: bool = False  # one activity before the first timer, as an incident's opening


@dataclass
class BarePost:
    channel_id: str
    workflow_id: str
    key: str
    due: float  # the timer's due time (epoch seconds), so lateness needs no other lookup


@dataclass
class BareIncidentInput:
    name: str  # channel name
    commander: str
    broadcast_channel: str


@activity.defn(name="bare_noop")
async def noop(request: BareIncidentInput | None = None) -> None:
    """Does nothing; ``BareTimer``'s opening hands it what an opening needs to know."""
    return None


class BareActivities:
    def __init__(self, slack: AsyncWebClient) -> None:
        self.slack = slack

    @activity.defn(name="bare_post")
    async def post(self, request: BarePost) -> None:
        await self.slack.chat_postMessage(
            channel=request.channel_id,
            text=f"A status update is due ({request.workflow_id}).",
            metadata={
                "event_type": "incident_notice",
                "event_payload": {
                    "incident_id": request.workflow_id,
                    "key": request.key,
                    "due": request.due,
                },
            },
        )


@workflow.defn
class BareDeclare:
    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity(noop, start_to_close_timeout=timedelta(seconds=30))
        self.done = True
        await workflow.wait_condition(workflow.all_handlers_finished)

    @workflow.update
    async def opened(self) -> bool:
        await workflow.wait_condition(lambda: self.done)
        return True


@workflow.defn
class BareTimer:
    @workflow.init
    def __init__(self, input: TimerInput) -> None:
        self.start = workflow.now()
        self.opened = not input.opening

    @workflow.update
    def started(self) -> float:
        """When the workflow started (its ``workflow.now()``), answered by its first task."""
        return self.start.timestamp()

    @workflow.update
    async def opening(self) -> float:
        """``started``, answered once the opening activity has run."""
        await workflow.wait_condition(lambda: self.opened)
        return self.start.timestamp()

    @workflow.run
    async def run(self, input: TimerInput) -> None:
        if not self.opened:
            # With an input, as the incident's opening has: the SDK visits each payload of a
            # command, which an activity without arguments is spared.
            opening = BareIncidentInput(f"bare-{workflow.info().workflow_id}", "", input.channel_id)
            await workflow.execute_activity(
                noop, opening, start_to_close_timeout=timedelta(seconds=30)
            )
            self.opened = True
        start = self.start
        n = 0
        while True:
            n += 1
            due = start + timedelta(seconds=input.every * n)
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: False, timeout=max(due - workflow.now(), timedelta(0))
                )
            await workflow.execute_activity_method(
                BareActivities.post,
                BarePost(
                    input.channel_id,
                    workflow.info().workflow_id,
                    f"update_due-{n}",
                    due.timestamp(),
                ),
                start_to_close_timeout=timedelta(seconds=30),
            )


class BareIncidentActivities:
    """The Slack calls a declaration makes, in the product's order, in one activity."""

    def __init__(self, slack: AsyncWebClient) -> None:
        self.slack = slack

    @activity.defn(name="bare_open_incident")
    async def open_incident(self, request: BareIncidentInput) -> None:
        workflow_id = activity.info().workflow_id
        created = await self.slack.conversations_create(name=request.name)
        channel = created["channel"]["id"]
        await self.slack.conversations_setPurpose(channel=channel, purpose=f"[{workflow_id}]")
        await self.slack.conversations_setTopic(channel=channel, topic="SEV2 investigating")
        await self.slack.conversations_invite(channel=channel, users=request.commander)
        kickoff = await self.slack.chat_postMessage(channel=channel, text="Kickoff")
        await self.slack.pins_add(channel=channel, timestamp=kickoff["ts"])
        await self.slack.chat_postMessage(
            channel=request.broadcast_channel,
            text=f"Declared {workflow_id} in <#{channel}>",
            metadata={
                "event_type": "incident_notice",
                "event_payload": {"incident_id": workflow_id, "key": "announcement"},
            },
        )


@workflow.defn
class BareIncident:
    """Started like an incident (a plain durable start) and makes the same Slack calls."""

    @workflow.run
    async def run(self, request: BareIncidentInput) -> None:
        await workflow.execute_activity(
            "bare_open_incident", request, start_to_close_timeout=timedelta(seconds=30)
        )


@workflow.defn(name="IncidentWorkflow")
class IncidentShape:
    """A standard incident's commands with none of the product's code (bench.replay): replayed
    against the incident's history, it is what the SDK spends on those commands and payloads
    alone, apart from what the incident's own code spends. Its payloads are plain JSON: the
    opening and the post with their inputs (the post with its Web UI summary), the search
    attributes and memo the channel brings, the opening update answered once open."""

    @workflow.init
    def __init__(self, input: dict[str, Any]) -> None:
        self.opened = False

    @workflow.update
    async def opening(self) -> dict[str, Any]:
        await workflow.wait_condition(lambda: self.opened)
        return {"opened": True}

    @workflow.run
    async def run(self, input: dict[str, Any]) -> None:
        timeout = timedelta(seconds=60)
        await workflow.execute_activity(
            "slack_open_incident", input, start_to_close_timeout=timeout
        )
        channel = "C0SHAPE"
        workflow.upsert_search_attributes(
            [CHANNEL.value_set(channel), CHANNEL_ID.value_set(channel)]
        )
        workflow.upsert_memo({"incident": {"channel": channel}})
        self.opened = True
        while True:
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: False, timeout=timedelta(seconds=10))
            await workflow.execute_activity(
                "slack_post_message",
                {"channel_id": channel},
                start_to_close_timeout=timeout,
                summary="post the update_due message",
            )

"""The opening part of IncidentWorkflow: the channel, its set-up and the announcement.

A base class of IncidentWorkflow, so incident.py stays one screen of sequencing. Since
``one-opening-activity`` the opening is one activity (``activities/opening.py``); histories
from before replay its single steps. In a lean run (``workflows/patching.py``) the opening
also records the incident in the archive, so a declaration costs two workflow tasks in all.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.opening import IncidentOpening
    from activities.slack import SlackActivities
    from workflows import bookmarks, drill, followup, opening
    from workflows.effects import AddBookmarks, Effect, IncidentBrief, OpenChannel
    from workflows.models import IncidentState
    from workflows.naming import MAX_CHANNEL_NAME, channel_name
    from workflows.patching import Patches
    from workflows.policy import Policy
    from workflows.visibility import publish

R = TypeVar("R")
T = TypeVar("T")

OPENING_WAIT = timedelta(seconds=20)  # runs from before lean-opening wait this long at most
OPENING_TIMEOUT = timedelta(seconds=60)  # a channel, then four lanes of Slack calls
ONE_OPENING_ACTIVITY = "one-opening-activity"  # patch: Slack's opening steps in one activity


class IncidentOpens:
    state: IncidentState
    policy: Policy
    outbox: list[Effect]
    opened: bool
    patched: Patches
    _recorded: tuple[object, ...] | None

    if TYPE_CHECKING:

        async def _call(
            self,
            activity: Callable[[Any, R], Awaitable[T]],
            request: R,
            what: str,
            limit: timedelta = ...,
        ) -> T | None: ...

        def _problem(self, text: str) -> None: ...

        def _brief(self) -> IncidentBrief: ...

        async def _drain_outbox(self) -> None: ...

    @workflow.update
    async def opening(self) -> IncidentState:
        """Waits (briefly) until the channel exists and the incident is announced."""
        # The caller bounds its own wait; a lean run spends no timer on it.
        wait = None if self.patched.lean else OPENING_WAIT
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: self.opened, timeout=wait)
        return self.state

    async def _open_channel(self) -> None:
        name = channel_name(
            self.policy.channel.name_template,
            title=self.state.title,
            number=self.state.number,
            severity=self.state.severity,
            at=self.state.declared_at,
        )
        if self.state.drill:
            # Only the name given to the same activity changes, and only for drills (which no
            # history before drills holds), so replay needs no patch here.
            name = drill.channel_name(name, MAX_CHANNEL_NAME - 3)
        request = OpenChannel(
            incident_id=self.state.id,
            label=self.state.label,
            title=self.state.title,
            name=name,
            drill=self.state.drill,
        )
        if self.patched(ONE_OPENING_ACTIVITY):
            await self._open_at_once(request)
        else:
            await self._open_step_by_step(request)
        await self._drain_outbox()
        self.opened = True

    async def _open_at_once(self, channel: OpenChannel) -> None:
        request, self.outbox = opening.request(
            self.state, self.policy, channel, self._brief(), self.outbox
        )
        recording = followup.record_signature(self.state) if self.patched.lean else None
        if recording is not None:  # the archive hears of the incident from the opening
            request.record = self.state
        what = "open the incident in Slack"
        opened = await self._call(IncidentOpening.open_incident, request, what, OPENING_TIMEOUT)
        if opened is None:  # Slack refused for longer than an opening may take
            self.outbox = [*opening.fallback(request), *self.outbox]
            await self._open_step_by_step(channel)
            return
        if opened.recorded and self._recorded is None:  # (a command may have moved on since)
            self._recorded = recording
        for problem in opening.apply(self.state, opened, workflow.now()):
            self._problem(problem)
        publish(self.state, self.policy, self.patched)

    async def _open_step_by_step(self, request: OpenChannel) -> None:
        channel = await self._call(SlackActivities.open_channel, request, "create the channel")
        if channel is not None:
            self.state.channel = channel
            self.state.note(workflow.now(), "channel", None, f"Channel #{channel.name}")
            publish(self.state, self.policy, self.patched)
            if self.patched("channel-bookmarks"):
                links = bookmarks.channel_bookmarks(self.state, self.policy)
                marks = AddBookmarks(incident_id=self.state.id, channel_id=channel.id, links=links)
                await self._call(SlackActivities.add_bookmarks, marks, "bookmark the links")

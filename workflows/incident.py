"""IncidentWorkflow: one durable workflow per incident, from declaration to archived channel.

Commands are Updates: a validator refuses a bad command before anything reaches history, the
handler changes the state, queues the side effects in the outbox and returns the new snapshot
at once. The run method is one loop: drain the outbox in order, then sleep until the earliest
deadline (escalation, update, archive; the follow-through's in followup_workflow.py) or command.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

from workflows.claims import release_key

# The domain is pure and deterministic, so it is shared with the sandbox instead of being
# re-imported for every workflow run: faster, leaner, and one class per model, so activity
# results and workflow state are instances of the same types.
with workflow.unsafe.imports_passed_through():
    from activities.opening import IncidentOpening
    from activities.paging import PagingActivities
    from activities.slack import SlackActivities
    from activities.statuspage import StatusPageActivities
    from workflows import (
        bookmarks,
        drill,
        followup,
        invitations,
        kickoff,
        lifecycle,
        opening,
        public,
        update_ids,
    )
    from workflows import commands as cmd
    from workflows.effects import (
        AddBookmarks,
        ArchiveChannel,
        Audience,
        BookmarkLinks,
        ChannelRef,
        EditKickoff,
        Effect,
        IncidentBrief,
        Invite,
        InviteUsers,
        OpenChannel,
        Page,
        Post,
        PostMessage,
        PublishStatus,
        RefreshTopic,
        ReleaseKey,
        SendPage,
        SetTopic,
        UpdateKickoff,
    )
    from workflows.firing import fire
    from workflows.followup_workflow import IncidentFollowUp
    from workflows.incident_commands import IncidentCommands
    from workflows.models import Declaration, IncidentState, MessageRef
    from workflows.naming import MAX_CHANNEL_NAME, channel_name
    from workflows.outbox import Step, lanes
    from workflows.policy import Policy
    from workflows.visibility import publish

C = TypeVar("C", bound=cmd.Command)
R = TypeVar("R")
T = TypeVar("T")

SLACK_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)
)
# Slack being down for longer than this must not hold back escalation and paging for ever.
SLACK_GIVE_UP = timedelta(minutes=10)
OPENING_WAIT = timedelta(seconds=20)
STEP_TIMEOUT = timedelta(seconds=30)
OPENING_TIMEOUT = timedelta(seconds=60)  # a channel, then four lanes of Slack calls
ONE_OPENING_ACTIVITY = "one-opening-activity"  # patch: Slack's opening steps in one activity
REST_AFTER_OPENING = "rest-after-opening"  # patch: continue as new once opened and recorded
KICKOFF_KEPT_CURRENT = "kickoff-kept-current"  # patch: the kickoff is edited as things change
PUBLIC_INCIDENTS = "public-incidents"  # patch: a public incident's resolution is published


class IncidentInput(BaseModel):
    """The declaration on first start; the whole state and outbox on continue-as-new."""

    number: int
    policy: Policy
    declaration: Declaration | None = None
    state: IncidentState | None = None
    outbox: list[Effect] = []
    opened: bool = False
    recorded: bool = False  # the archive database has the state as carried


@workflow.defn
class IncidentWorkflow(IncidentCommands, IncidentFollowUp):
    @workflow.init
    def __init__(self, input: IncidentInput) -> None:
        self.policy = input.policy
        # Only a run that opened the incident may start afresh once it is settled.
        self.fresh_start = input.state is None
        if input.state is not None:
            self.state, self.outbox, self.opened = input.state, list(input.outbox), input.opened
            if input.recorded:
                self._recorded = followup.record_signature(self.state)
        else:
            assert input.declaration is not None, "a new incident needs its declaration"
            self.state, self.outbox = lifecycle.start(
                input.number,
                workflow.info().workflow_id,
                input.declaration,
                self.policy,
                workflow.now(),
            )
            self.opened = False
        self.changes = 0

    @workflow.run
    async def run(self, input: IncidentInput) -> IncidentState:
        publish(self.state, self.policy)
        if not self.opened:
            await self._open_channel()
        while True:
            await self._drain_outbox()
            if self.state.archived_at is not None and self._may_finish():
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not self.outbox:
                    return self.state
                continue
            if self._settled_after_opening():
                workflow.continue_as_new(self._carry_over(recorded=True))
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not self.outbox:
                    workflow.continue_as_new(self._carry_over())
            await self._sleep_until_due()

    def _settled_after_opening(self) -> bool:
        """Whether to continue as new now that the incident is open, announced and recorded.

        An incident then waits, often for hours, for its next deadline; every worker that
        meets it without it in cache replays its history. Starting afresh here makes that a
        few events instead of the opening's dozens (see docs/performance.md).
        """
        if not self.fresh_start or not self.policy.history.continue_as_new_once_open:
            return False
        if self.outbox or self._recorded is None or self._archiving():
            return False
        if not workflow.all_handlers_finished():
            return False  # a command is being answered: look again after the next change
        self.fresh_start = workflow.patched(REST_AFTER_OPENING)
        return self.fresh_start

    async def _sleep_until_due(self) -> None:
        seen = self.changes
        due = self._deadlines()
        timeout = None
        if due:
            timeout = max(min(due.values()) - workflow.now(), timedelta(0))
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: bool(self.outbox) or self.changes != seen,
                timeout=timeout,
                timeout_summary="next incident deadline",
            )
        self._fire_due()

    def _fire_due(self) -> None:
        now = workflow.now()
        for name, at in self._deadlines().items():
            if at <= now:
                self._changed(fire(self.state, self.policy, name, now))

    def _carry_over(self, recorded: bool = False) -> IncidentInput:
        return IncidentInput(
            number=self.state.number,
            policy=self.policy,
            state=self.state,
            outbox=self.outbox,
            opened=self.opened,
            recorded=recorded,
        )

    # -- commands -------------------------------------------------------------------------

    def _apply(
        self, apply: Callable[[IncidentState, Policy, C, datetime], list[Effect]], command: C
    ) -> IncidentState:
        if update_ids.repeated(self.state):
            return self.state  # applied in an earlier run: answered, not applied twice
        if workflow.patched("deadlines-before-commands"):
            # A worker that was down gets a timer that fired and a later command in one
            # activation, and the SDK runs the command's handler first. Catch up on what was
            # due before applying it: a tier due before an acknowledgement still notifies.
            self._fire_due()
        self._changed(apply(self.state, self.policy, command, workflow.now()))
        update_ids.remember(self.state)
        return self.state

    def _changed(self, effects: list[Effect]) -> None:
        if kickoff.changes_kickoff(effects) and workflow.patched(KICKOFF_KEPT_CURRENT):
            effects = [*effects, UpdateKickoff()]
        if self.state.public is not None and workflow.patched(PUBLIC_INCIDENTS):
            effects = [*effects, *public.follow_resolution(self.state, workflow.now())]
        self.outbox.extend(self._followed_up(effects))
        self.changes += 1
        publish(self.state, self.policy)

    @workflow.query
    def snapshot(self) -> IncidentState:
        return self.state

    @workflow.update
    async def opening(self) -> IncidentState:
        """Waits (briefly) until the channel exists and the incident is announced."""
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: self.opened, timeout=OPENING_WAIT)
        return self.state

    # -- side effects ---------------------------------------------------------------------

    def _brief(self) -> IncidentBrief:
        return kickoff.brief(self.state, self.policy)

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
        if workflow.patched(ONE_OPENING_ACTIVITY):
            await self._open_at_once(request)
        else:
            await self._open_step_by_step(request)
        await self._drain_outbox()
        self.opened = True

    async def _open_at_once(self, channel: OpenChannel) -> None:
        request, self.outbox = opening.request(
            self.state, self.policy, channel, self._brief(), self.outbox
        )
        what = "open the incident in Slack"
        opened = await self._call(IncidentOpening.open_incident, request, what, OPENING_TIMEOUT)
        if opened is None:  # Slack refused for longer than an opening may take
            self.outbox = [*opening.fallback(request), *self.outbox]
            await self._open_step_by_step(channel)
            return
        for problem in opening.apply(self.state, opened, workflow.now()):
            self._problem(problem)
        publish(self.state, self.policy)

    async def _open_step_by_step(self, request: OpenChannel) -> None:
        channel = await self._call(SlackActivities.open_channel, request, "create the channel")
        if channel is not None:
            self.state.channel = channel
            self.state.note(workflow.now(), "channel", None, f"Channel #{channel.name}")
            publish(self.state, self.policy)
            if workflow.patched("channel-bookmarks"):
                links = bookmarks.channel_bookmarks(self.state, self.policy)
                marks = AddBookmarks(incident_id=self.state.id, channel_id=channel.id, links=links)
                await self._call(SlackActivities.add_bookmarks, marks, "bookmark the links")

    async def _drain_outbox(self) -> None:
        while self.outbox:
            batch, self.outbox = self.outbox, []
            await asyncio.gather(*(self._run_lane(steps) for steps in lanes(batch).values()))

    async def _run_lane(self, steps: list[Step]) -> None:
        for effect, audience in steps:
            await self._run_step(effect, audience)

    async def _run(self, effect: Effect, audience: Audience | None) -> None:
        channel_id = self.state.channel.id if self.state.channel else None
        if isinstance(effect, Post):
            target = channel_id if audience is Audience.CHANNEL else None
            if audience is Audience.CHANNEL and target is None:
                return  # no channel: the problem creating it is on the timeline already
            posted = await self._call(
                SlackActivities.post_message,
                PostMessage(channel_id=target, post=effect, brief=self._brief()),
                f"post the {effect.notice.value} message",
            )
            if posted and effect.key == "kickoff" and workflow.patched(KICKOFF_KEPT_CURRENT):
                self.state.kickoff = MessageRef(channel_id=posted.channel_id, ts=posted.ts)
        elif isinstance(effect, UpdateKickoff):
            if self.state.kickoff is not None:
                edit = EditKickoff(**self.state.kickoff.model_dump(), brief=self._brief())
                await self._call(SlackActivities.update_kickoff, edit, "update the kickoff")
        elif isinstance(effect, Page):
            page = SendPage(page=effect, brief=self._brief())
            what = f"send the {effect.action.value} page"
            await asyncio.gather(
                self._call(PagingActivities.send_pagerduty, page, f"{what} to PagerDuty"),
                self._call(PagingActivities.send_webhook, page, f"{what} to the webhook"),
            )
        elif isinstance(effect, ReleaseKey):
            await self._release_key()
        elif isinstance(effect, PublishStatus):
            incident = public.public_incident(self.state)
            what = "publish on the status page"
            if await self._call(StatusPageActivities.publish, incident, what) is not None:
                what = "tell the status page's subscribers"
                await self._call(StatusPageActivities.notify_subscribers, incident, what)
        elif channel_id is None:
            return
        elif isinstance(effect, RefreshTopic):
            await self._call(
                SlackActivities.set_topic,
                SetTopic(channel_id=channel_id, brief=self._brief()),
                "set the topic",
            )
        elif isinstance(effect, Invite):
            result = await self._call(
                SlackActivities.invite,
                InviteUsers(channel_id=channel_id, users=effect.users),
                "invite people",
            )
            for user, error in result.failed.items() if result else []:
                forget = workflow.patched("forget-unknown-responders")
                self._problem(invitations.invite_failed(self.state, user, error, forget))
        elif isinstance(effect, BookmarkLinks):
            marks = AddBookmarks(
                incident_id=self.state.id, channel_id=channel_id, links=effect.links
            )
            await self._call(SlackActivities.add_bookmarks, marks, "bookmark the alerts' links")
        elif isinstance(effect, ArchiveChannel):
            await self._call(
                SlackActivities.archive_channel,
                ChannelRef(channel_id=channel_id),
                "archive the channel",
            )

    async def _release_key(self) -> None:
        assert self.state.idempotency_key is not None
        await release_key(self.state.idempotency_key, self.state.number)

    async def _call(
        self,
        activity: Callable[[Any, R], Awaitable[T]],
        request: R,
        what: str,
        limit: timedelta = STEP_TIMEOUT,
    ) -> T | None:
        """Run one side effect; a failure retrying cannot fix goes on the timeline, not up."""
        try:
            return await workflow.execute_activity_method(
                activity,
                request,
                start_to_close_timeout=limit,
                schedule_to_close_timeout=SLACK_GIVE_UP,
                retry_policy=SLACK_RETRY,
                summary=what,  # what the Temporal UI shows for this step
            )
        except ActivityError as error:
            self._problem(f"could not {what}: {_cause(error)}")
            return None

    def _problem(self, text: str) -> None:
        workflow.logger.warning("incident side effect failed: %s", text)
        self.state.note(workflow.now(), "problem", None, text)
        publish(self.state, self.policy, problem=text)


def _cause(error: ActivityError) -> str:
    """The first application error's message (the Slack error code), not the wrapper's."""
    cause: BaseException = error
    while not isinstance(cause, ApplicationError) and isinstance(cause, FailureError):
        if cause.cause is None:
            break
        cause = cause.cause
    return str(cause)

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
from typing import Any, NoReturn, TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

from workflows.claims import release_key

# The domain is pure and deterministic, so it is shared with the sandbox instead of being
# re-imported for every workflow run: faster, leaner, and one class per model, so activity
# results and workflow state are instances of the same types.
with workflow.unsafe.imports_passed_through():
    from activities.paging import PagingActivities
    from activities.slack import SlackActivities
    from activities.statuspage import StatusPageActivities
    from workflows import commands as cmd
    from workflows import (
        followup,
        invitations,
        kickoff,
        lifecycle,
        public,
        update_ids,
    )
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
    from workflows.incident_opening import IncidentOpens
    from workflows.listing import MEMO_KEY, memo_of
    from workflows.models import Declaration, IncidentState, MessageRef
    from workflows.outbox import Step, lanes
    from workflows.patching import Patches
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
STEP_TIMEOUT = timedelta(seconds=30)
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
class IncidentWorkflow(IncidentOpens, IncidentCommands, IncidentFollowUp):
    @workflow.init
    def __init__(self, input: IncidentInput) -> None:
        self.patched = Patches()  # first: a handler may ask a patch in this very activation
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
                input.declaration.declared_time(workflow.now()),
            )
            self.opened = False
        self.changes = 0

    @workflow.run
    async def run(self, input: IncidentInput) -> IncidentState:
        publish(self.state, self.policy, self.patched)
        if not self.opened:
            await self._open_channel()
        while True:
            await self._drain_outbox()
            if self.state.archived_at is not None and self._may_finish():
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not self.outbox:
                    return self.state
                continue
            if await self._settled_after_opening():
                self._continue_as_new(recorded=True)
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not self.outbox:
                    self._continue_as_new()
            await self._sleep_until_due()

    async def _settled_after_opening(self) -> bool:
        """Whether to continue as new now that the incident is open, announced and recorded.

        An incident then waits, often for hours, for its next deadline; every worker that
        meets it without it in cache replays its history. Starting afresh here makes that a
        few events instead of the opening's dozens (see docs/performance.md).
        """
        if not self.fresh_start or not self.policy.history.continue_as_new_once_open:
            return False
        if self.patched.lean:  # the opening Update answers in this workflow task: let it
            await workflow.wait_condition(workflow.all_handlers_finished)
        if self.outbox or self._recorded is None or self._archiving():
            return False
        if not workflow.all_handlers_finished():
            return False  # a command is being answered: look again after the next change
        self.fresh_start = self.patched(REST_AFTER_OPENING)
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

    def _continue_as_new(self, recorded: bool = False) -> NoReturn:
        # A lean run hands its list view on, so the new run has no memo to write again.
        memo = {MEMO_KEY: memo_of(self.state)} if self.patched.lean else None
        workflow.continue_as_new(self._carry_over(recorded), memo=memo)

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
        if self.patched("deadlines-before-commands"):
            # A worker that was down gets a timer that fired and a later command in one
            # activation, and the SDK runs the command's handler first. Catch up on what was
            # due before applying it: a tier due before an acknowledgement still notifies.
            self._fire_due()
        self._changed(apply(self.state, self.policy, command, workflow.now()))
        update_ids.remember(self.state)
        return self.state

    def _changed(self, effects: list[Effect]) -> None:
        if kickoff.changes_kickoff(effects) and self.patched(KICKOFF_KEPT_CURRENT):
            effects = [*effects, UpdateKickoff()]
        if self.state.public is not None and self.patched(PUBLIC_INCIDENTS):
            effects = [*effects, *public.follow_resolution(self.state, workflow.now())]
        self.outbox.extend(self._followed_up(effects))
        self.changes += 1
        publish(self.state, self.policy, self.patched)

    @workflow.query
    def snapshot(self) -> IncidentState:
        return self.state

    def _brief(self) -> IncidentBrief:
        return kickoff.brief(self.state, self.policy)

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
            if posted and effect.key == "kickoff" and self.patched(KICKOFF_KEPT_CURRENT):
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
                forget = self.patched("forget-unknown-responders")
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
        await release_key(self.state.idempotency_key, self.state.number, self.patched)

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
        publish(self.state, self.policy, self.patched, problem=text)


def _cause(error: ActivityError) -> str:
    """The first application error's message (the Slack error code), not the wrapper's."""
    cause: BaseException = error
    while not isinstance(cause, ApplicationError) and isinstance(cause, FailureError):
        if cause.cause is None:
            break
        cause = cause.cause
    return str(cause)

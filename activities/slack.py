"""Slack side effects of an incident, as Temporal activities over ``clients.slack``.

Every client method is idempotent (a retry finds its own work); what is added here is the
Temporal part: the attempt number (a retry checks for an earlier copy before posting), the
heartbeat details that carry channel names of unknown outcome, and ``non_retryable`` for the
Slack errors that retrying cannot fix, which the workflow records on the timeline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog
from pydantic import BaseModel, Field
from temporalio import activity

from activities import non_retryable, recall
from clients import Permanent
from clients.archive import IncidentArchive
from clients.slack import Slack
from workflows.effects import Audience, Opened, OpenIncident, PostMessage
from workflows.lifecycle import opening
from workflows.models import Channel
from workflows.requests import (
    AddBookmarks,
    ChannelRef,
    DirectMessage,
    EditKickoff,
    IncidentBrief,
    InviteResult,
    InviteUsers,
    OpenChannel,
    Posted,
    ResolvePeople,
    SetTopic,
    SetUserGroup,
)
from workflows.text import SLACK_USER_ID

# A declaration's first minute in Slack, in one activity.
#
# Opening an incident is the latency people feel. Run as separate activities it costs a
# workflow task per step; here it costs one, and the steps go side by side once the channel
# exists: the topic, the invitations then the pinned kickoff, the announcement, the bookmarks.
#
# Every step is the same idempotent client code the single-step activities run. The heartbeat
# details keep what is done, so a retry skips it; and a retry checks for a post an attempt
# made whose answer was lost. A step that retrying cannot fix becomes a problem in the result
# (the workflow puts it on the timeline) and the others go on; anything else fails the attempt.
# Optional steps (topic, bookmarks, pin) never hold the channel or a timer: OPTIONAL_GRACE.
T = TypeVar("T")
STEP_TRIES = 3  # tries of one step inside an attempt, before the attempt fails
STEP_BACKOFF = 0.5  # seconds before the second try; doubled for the third
OPTIONAL_GRACE = 1.0  # seconds they may take after the others; then they are the workflow's
log = structlog.get_logger()


class Progress(BaseModel):
    """What earlier attempts did, as the heartbeat details carry it."""

    unknown: list[str] = Field(default_factory=list)  # channel names of unknown outcome
    done: list[str] = Field(default_factory=list)  # steps finished, or failed for good
    opened: Opened = Field(default_factory=Opened)


class Attempt:
    """One attempt at opening: runs each step once across attempts, keeps what it learnt."""

    def __init__(
        self, slack: Slack, request: OpenIncident, archive: IncidentArchive | None
    ) -> None:
        info = activity.info()
        self.slack = slack
        self.archive = archive
        self.request = request
        self.retry = info.attempt > 1  # an earlier attempt may have posted and lost the answer
        self.progress = Progress()
        if info.heartbeat_details:
            self.progress = Progress.model_validate(info.heartbeat_details[0])
        self.opened = self.progress.opened
        self.opened.left.clear()  # this attempt's say
        self.optional: dict[asyncio.Task[None], str] = {}  # running, by step name

    def record(self, unknown: list[str] | None = None) -> None:
        if unknown is not None:
            self.progress.unknown = unknown
        activity.heartbeat(self.progress.model_dump(mode="json"))

    async def step(self, name: str, what: str, work: Callable[[bool], Awaitable[T]]) -> T | None:
        """Run ``work`` unless an earlier attempt finished it; a permanent failure is noted.
        A transient failure is tried again here a few times before it fails the attempt, so a
        step that keeps failing does not hold the other lanes to the activity's growing backoff.
        ``work`` is told whether an earlier try may have done it (and lost the answer)."""
        if name in self.progress.done:
            return None
        result: T | None = None
        for tried in range(STEP_TRIES):
            try:
                result = await work(self.retry or tried > 0)
                break
            except Permanent as error:
                self.opened.problems.append(f"could not {what}: {error.message}")
                break
            except Exception as error:  # 5xx, a dropped connection: Slack may answer next time
                failure = error
            if tried == STEP_TRIES - 1:
                raise failure
            log.info("opening_step_tried_again", step=name, error=type(failure).__name__)
            await asyncio.sleep(STEP_BACKOFF * 2**tried)
        self.progress.done.append(name)
        self.record()
        return result

    async def run(self) -> Opened:
        request = self.request
        self.recalled = asyncio.ensure_future(recall(self.archive, request.brief))  # beside Slack
        if self.opened.channel is None:

            def create(_: bool) -> Awaitable[Channel]:  # the names of unknown outcome so far
                return self.slack.channels.create(
                    request.channel, self.progress.unknown, self.record
                )

            self.opened.channel = await self.step("channel", "create the channel", create)
        channel = self.opened.channel
        brief = request.brief.model_copy(update={"channel": channel})
        lanes = [
            self.post(PostMessage(channel_id=None, post=post, brief=brief))
            for post in request.posts
            if Audience.CHANNEL not in post.audience
        ]
        lanes.append(self.keep_record(channel))
        if channel is not None:
            lanes.append(self.invite_then_kickoff(channel, brief))
            channels, topic = self.slack.channels, SetTopic(channel_id=channel.id, brief=brief)
            if request.topic:
                self.aside("topic", "set the topic", lambda _: channels.set_topic(topic))
            marks = (channel.id, request.brief.id, opening.bookmarks(request, channel))
            self.aside("bookmarks", "bookmark the links", lambda _: channels.bookmark(*marks))
        outcomes = await asyncio.gather(*lanes, self.recalled, return_exceptions=True)
        if self.optional:
            await asyncio.wait(self.optional, timeout=OPTIONAL_GRACE)
            late = [task for task in self.optional if task.cancel()]  # left to the workflow
            self.opened.left += [self.optional[task] for task in late]
            await asyncio.gather(*late, return_exceptions=True)
        failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        if failures:
            raise failures[0]  # every lane has finished and recorded what it did
        return self.opened.model_copy(update={"similar": self.recalled.result()})

    def aside(self, name: str, what: str, work: Callable[[bool], Awaitable[object]]) -> None:
        """An optional step beside the rest; one still failing is left to the workflow too."""

        async def optional() -> None:
            try:
                await self.step(name, what, work)
            except Exception as error:
                log.info("opening_step_left", step=name, error=type(error).__name__)
                self.opened.left.append(name)

        self.optional[asyncio.create_task(optional())] = name

    async def post(self, message: PostMessage) -> None:
        post = message.post
        what = f"post the {post.notice.value} message"
        unpinned = message.model_copy(update={"post": post.model_copy(update={"pin": False})})

        def send(maybe_posted: bool) -> Awaitable[Posted]:
            # A retried opening (a new activity) looks first too: one before may have posted,
            # at the earliest when the incident was declared.
            tried = maybe_posted or post.check_first
            return self.slack.posts.post(unpinned, message.brief.declared_at if tried else None)

        posted = await self.step(f"post:{post.key}", what, send)
        if posted is not None:
            self.opened.posted[post.key] = posted
            self.record()
        if post.pin and (done := self.opened.posted.get(post.key)):
            pin, pinning = self.slack.posts.pin, f"pin the {post.notice.value} message"
            self.aside(f"pin:{post.key}", pinning, lambda _: pin(done))

    async def invite_then_kickoff(self, channel: Channel, brief: IncidentBrief) -> None:
        """The kickoff mentions the invited, so it follows them."""
        if self.request.invite:
            users = InviteUsers(channel_id=channel.id, users=self.request.invite)
            invited = await self.step(
                "invite", "invite people", lambda _: self.slack.channels.invite(users)
            )
            if invited is not None:
                self.opened.invited = invited
                self.record()
        if similar := await self.recalled:  # the kickoff lists them, if found in time
            brief = brief.model_copy(update={"similar": similar.closest})
        for post in [post for post in self.request.posts if Audience.CHANNEL in post.audience]:
            await self.post(PostMessage(channel_id=channel.id, post=post, brief=brief))

    async def keep_record(self, channel: Channel | None) -> None:
        """The incident into the archive, best effort: Slack's steps never wait on a database
        that is down; when this did not happen, the workflow records it with its own activity."""
        state = self.request.record
        if state is None or self.archive is None or "record" in self.progress.done:
            return
        try:
            await self.archive.record(state.model_copy(update={"channel": channel}))
        except Exception as error:
            log.warning("opening_record_failed", incident_id=state.id, error=type(error).__name__)
            return
        self.opened.recorded = True
        self.progress.done.append("record")
        self.record()


class IncidentOpening:
    def __init__(self, slack: Slack, archive: IncidentArchive | None = None) -> None:
        self.slack = slack
        self.archive = archive  # where the opening records the incident, when asked to

    @activity.defn(name="slack_open_incident")
    async def open_incident(self, request: OpenIncident) -> Opened:
        return await Attempt(self.slack, request, self.archive).run()


class SlackActivities:
    def __init__(self, slack: Slack) -> None:
        self.slack = slack

    @activity.defn(name="slack_open_channel")
    async def open_channel(self, request: OpenChannel) -> Channel:
        """Before each create the name goes into the heartbeat details as "outcome unknown",
        so a retry may adopt the channel an attempt made and lost the answer of."""
        details = activity.info().heartbeat_details
        unknown: list[str] = [str(name) for name in details[0]] if details else []
        with non_retryable():
            return await self.slack.channels.create(request, unknown, activity.heartbeat)

    @activity.defn(name="slack_set_topic")
    async def set_topic(self, request: SetTopic) -> None:
        with non_retryable():
            await self.slack.channels.set_topic(request)

    @activity.defn(name="slack_archive_channel")
    async def archive_channel(self, request: ChannelRef) -> None:
        with non_retryable():
            await self.slack.channels.archive(request.channel_id)

    @activity.defn(name="slack_invite")
    async def invite(self, request: InviteUsers) -> InviteResult:
        with non_retryable():
            return await self.slack.channels.invite(request)

    @activity.defn(name="slack_post_message")
    async def post_message(self, request: PostMessage) -> Posted:
        info = activity.info()
        tried_since = None
        if request.post.check_first:  # queued again after an earlier activity gave up
            tried_since = request.brief.declared_at
        elif info.attempt > 1:
            tried_since = info.scheduled_time  # this activity's first attempt
        with non_retryable():
            return await self.slack.posts.post(request, tried_since)

    @activity.defn(name="slack_add_bookmarks")
    async def add_bookmarks(self, request: AddBookmarks) -> None:
        with non_retryable():
            await self.slack.channels.bookmark(
                request.channel_id, request.incident_id, request.links
            )

    @activity.defn(name="slack_update_kickoff")
    async def update_kickoff(self, request: EditKickoff) -> None:
        with non_retryable():
            await self.slack.posts.update_kickoff(request)


# On-call handoffs, for the schedules' workflows (``workflows/oncall/rotation.py``).
class OncallActivities:
    def __init__(self, slack: Slack) -> None:
        self.people, self.handoffs = slack.people, slack.handoffs

    @activity.defn(name="oncall_resolve_people")
    async def resolve_people(self, request: ResolvePeople) -> list[str]:
        """Ids for people named as in the policy; someone Slack does not know stays as written."""
        with non_retryable():
            ids = await self.people.mention_ids(request.people)
        for given, found in zip(request.people, ids, strict=True):
            if not SLACK_USER_ID.match(found):
                log.warning("oncall_person_unknown", person=given)
        return ids

    @activity.defn(name="oncall_direct_message")
    async def direct_message(self, message: DirectMessage) -> None:
        with non_retryable():
            await self.handoffs.tell(message, retried=activity.info().attempt > 1)

    @activity.defn(name="oncall_set_user_group")
    async def set_user_group(self, request: SetUserGroup) -> None:
        with non_retryable():
            await self.handoffs.fill_group(request.handle, request.users)

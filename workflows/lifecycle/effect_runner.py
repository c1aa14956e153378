"""EffectRunner: the incident's side effects, run as activities by the workflow that holds it.

Runs queued effects lane by lane (in order inside one, lanes side by side) through one table,
``{effect type: method}``; the archive and the channel's topic and bookmarks in the background.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.services import (
        ArchiveActivities,
        DocumentActivities,
        MailActivities,
        PagingActivities,
        RosterActivities,
        StatusPageActivities,
    )
    from activities.slack import IncidentOpening, SlackActivities
    from workflows import effects as fx
    from workflows import requests as rq
    from workflows.escalation.tiers import reach
    from workflows.lifecycle import opening
    from workflows.lifecycle.channel import edits, incident_brief
    from workflows.lifecycle.notices import failure_reason, heard
    from workflows.lifecycle.numbering import release_key, schedule_drill
    from workflows.lifecycle.visibility import Shown, sent_once
    from workflows.models import IncidentState
    from workflows.policy import Policy
    from workflows.resolution import followup, report
    from workflows.statuspage import public_incident
    from workflows.text import drill_marked

R = TypeVar("R")
T = TypeVar("T")

SLACK_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))  # from 1 s, doubling
SLACK_GIVE_UP = timedelta(minutes=10)  # Slack down for longer must not hold paging back for ever
STEP_TIMEOUT = timedelta(seconds=30)
OPENING_TIMEOUT = timedelta(seconds=60)  # a channel, then four lanes of Slack calls
RETRY_AFTER = timedelta(minutes=1)  # what gave up for now (the opening) is tried this soon


class EffectRunner:
    def __init__(
        self,
        state: IncidentState,
        policy: Policy,
        outbox: list[fx.Effect],
        opened: bool,
        recorded: bool,
        wake: Callable[[], None],
        shown: Shown,  # what Temporal's UI shows of it
    ) -> None:
        self.state, self.policy, self.shown = state, policy, shown
        self.outbox = heard(state, outbox)  # queued, not yet run: continue-as-new carries it
        self.opened = opened  # the opening ran (or gave up for now, and is queued again)
        self.later: list[fx.Effect] = []  # gave up for now: queued again at the next turn
        self.recorded = followup.record_signature(state) if recorded else None  # last archived
        self.wake = wake  # the workflow's main loop looks again
        self.aside: dict[fx.Lane, list[fx.Step]] = {}  # queued or running in the background
        self.handlers: dict[type[Any], Callable[[Any, fx.Audience | None], Awaitable[None]]] = {
            fx.Post: self._post,
            fx.RefreshTopic: self._set_topic,
            fx.Invite: self._invite,
            fx.Page: self._page,
            fx.ArchiveChannel: self._archive_channel,
            fx.ReleaseKey: lambda _, __: release_key(self.state.idempotency_key, self.state.number),
            fx.PublishReport: self._publish_report,
            fx.SendRetrospective: self._send_retrospective,
            fx.RecordIncident: self._record,
            fx.UpdateKickoff: self._update_kickoff,
            fx.PublishStatus: self._publish_status,
            fx.BookmarkLinks: self._bookmark,
            fx.RetryOpening: self._retry_opening,
            fx.ReachOnCall: self._reach_on_call,
            fx.CallWebhook: self._call_webhook,
            fx.ScheduleDrill: lambda effect, _: schedule_drill(effect.plan),
        }

    def queue(self, effects: list[fx.Effect]) -> None:
        """A change's effects, and a record for the archive when what it holds changed."""
        signature = followup.record_signature(self.state)
        if signature != self.recorded:
            self.recorded = signature
            effects = [*effects, fx.RecordIncident()]
        self.outbox.extend(heard(self.state, effects))

    def retry_at(self) -> list[datetime]:
        """When what gave up for now is tried again, if anything did."""
        return [workflow.now() + RETRY_AFTER] if self.later else []

    def again(self) -> None:
        """The incident's next turn: what gave up before is tried again."""
        self.outbox[:0], self.later = self.later, []

    async def drain(self) -> None:
        while self.outbox:
            lanes, self.outbox = fx.lanes(self.outbox), []
            self.put_aside(lanes)
            await asyncio.gather(*(self._lane(steps) for steps in lanes.values()))

    def put_aside(self, lanes: dict[fx.Lane, list[fx.Step]]) -> None:
        """The background lanes' steps, one at a time in order; one already waiting runs once."""
        for lane in fx.ASIDE:
            queue, steps = self.aside.setdefault(lane, []), lanes.pop(lane, [])
            if steps and not queue:
                asyncio.create_task(self._run_aside(queue))  # noqa: RUF006 (held by what it awaits)
            queue += [s for i, s in enumerate(steps) if s not in steps[:i] and s not in queue[1:]]

    async def _run_aside(self, queue: list[fx.Step]) -> None:
        while queue:
            await self._lane(queue[:1])
            del queue[0]
        if self.state.archived_at is not None or self.policy.history.continue_as_new_once_open:
            self.wake()  # the main loop waits for the background: to finish, or to start afresh

    async def _lane(self, steps: list[fx.Step]) -> None:
        for effect, audience in steps:
            await self.handlers[type(effect)](effect, audience)

    async def open(self) -> None:
        """Channel, topic, invitations, kickoff, bookmarks, announcement, record: one activity."""
        for fill in opening.take_roles(self.outbox):  # first: the kickoff shows who holds them
            found = await self._call(RosterActivities.role_holders, fill.asked, "ask for the roles")
            self.outbox += opening.fill(self.state, fill, found or rq.RoleHolders(), workflow.now())
        channel = opening.channel(self.state, self.policy)
        request, self.outbox = opening.request(
            self.state, self.policy, channel, self._brief(), self.outbox
        )
        request.record = self.state
        await self._open(request, followup.record_signature(self.state))
        await self.drain()  # what the declaration queued besides (a page, the status page)
        self.opened = True

    async def _retry_opening(self, effect: fx.RetryOpening, _: object) -> None:
        await self._open(effect.request.model_copy(update={"brief": self._brief()}), None)

    async def _open(self, request: fx.OpenIncident, recording: tuple[object, ...] | None) -> None:
        what = "open the incident in Slack"
        opened = await self._call(IncidentOpening.open_incident, request, what, OPENING_TIMEOUT)
        if opened is None:  # Slack refused for longer than an opening may take
            self.later.append(opening.again(request))
            return
        if opened.recorded and self.recorded is None:  # (a command may have moved on since)
            self.recorded = recording
        for problem in opening.apply(self.state, opened, workflow.now()):
            self._problem(problem)
        self.put_aside({fx.Lane.TOPIC: opening.left(request, opened)})
        self.shown.publish(self.state)

    def _brief(self) -> rq.IncidentBrief:
        return incident_brief(self.state, self.policy)

    def _channel_id(self) -> str | None:
        return self.state.channel.id if self.state.channel else None

    async def _post(self, post: fx.Post, audience: fx.Audience | None) -> None:
        if audience is fx.Audience.OWNER:  # a direct message to the person it names first
            if post.mentions:
                await self._send(post, post.mentions[0], f"remind <@{post.mentions[0]}>")
            return
        target = self._channel_id() if audience is fx.Audience.CHANNEL else post.channel
        if audience is fx.Audience.CHANNEL and target is None:
            return  # no channel: the problem creating it is on the timeline already
        said = f"automation '{post.rule}'" if post.rule else post.notice.value
        if posted := await self._send(post, target, f"post the {said} message"):
            opening.remember(self.state, post.key, posted)

    async def _send(self, post: fx.Post, channel_id: str | None, what: str) -> rq.Posted | None:
        def message() -> fx.PostMessage:  # its brief rendered for Slack: not while replaying
            return fx.PostMessage(channel_id=channel_id, post=post, brief=self._brief())

        return await self._call(SlackActivities.post_message, sent_once(message), what, shown=True)

    async def _update_kickoff(self, _: fx.UpdateKickoff, __: object) -> None:
        """The pinned kickoff and the broadcast announcement, side by side, as it is now."""
        edit = SlackActivities.update_kickoff
        await asyncio.gather(*(self._call(edit, e, w) for e, w in edits(self.state, self.policy)))

    async def _set_topic(self, _: fx.RefreshTopic, __: object) -> None:
        if channel_id := self._channel_id():
            topic = rq.SetTopic(channel_id=channel_id, brief=self._brief())
            await self._call(SlackActivities.set_topic, topic, "set the topic")

    async def _invite(self, effect: fx.Invite, _: object) -> None:
        if channel_id := self._channel_id():
            users = rq.InviteUsers(channel_id=channel_id, users=effect.users)
            result = await self._call(SlackActivities.invite, users, "invite people")
            for user, error in result.failed.items() if result else []:
                self._problem(opening.invite_failed(self.state, user, error, forget=True))

    async def _bookmark(self, effect: fx.BookmarkLinks, _: object) -> None:
        if channel_id := self._channel_id():
            links = effect.links
            marks = rq.AddBookmarks(incident_id=self.state.id, channel_id=channel_id, links=links)
            await self._call(SlackActivities.add_bookmarks, marks, "bookmark the links")

    async def _archive_channel(self, _: fx.ArchiveChannel, __: object) -> None:
        if channel_id := self._channel_id():
            channel = rq.ChannelRef(channel_id=channel_id)
            await self._call(SlackActivities.archive_channel, channel, "archive the channel")

    async def _page(self, effect: fx.Page, _: object) -> None:
        page = fx.SendPage(page=effect, brief=self._brief())
        what = f"send the {effect.action.value} page"
        await asyncio.gather(
            self._call(PagingActivities.send_pagerduty, page, f"{what} to PagerDuty", shown=True),
            self._call(PagingActivities.send_webhook, page, f"{what} to the webhook", shown=True),
        )

    async def _call_webhook(self, effect: fx.CallWebhook, _: object) -> None:
        await self._call(PagingActivities.call_webhook, effect.call, effect.doing, shown=True)

    async def _reach_on_call(self, effect: fx.ReachOnCall, _: object) -> None:
        asking = self._call(RosterActivities.who_is_on_call, effect.asked, "ask who is on call")
        people = found.people if (found := await asking) else {}
        self.queue(reach(self.state, self.policy, effect, people, workflow.now()))

    async def _publish_status(self, _: fx.PublishStatus, __: object) -> None:
        incident = public_incident(self.state)
        what = "publish on the status page"
        if await self._call(StatusPageActivities.publish, incident, what) is not None:
            what = "tell the status page's subscribers"
            await self._call(StatusPageActivities.notify_subscribers, incident, what)

    async def _record(self, _: fx.RecordIncident, __: object) -> None:
        await self._call(ArchiveActivities.record_incident, self.state, "record the incident")

    async def _share(self, files: list[rq.DocumentFile], comment: str, key: str) -> str | None:
        """Files in the channel, the first linked from the broadcast with our words (not typed)."""
        if (channel_id := self._channel_id()) is None:
            return None
        marked = drill_marked(comment, self.state.drill)  # the link's post: by its rendering
        upload = rq.Upload(channel_id=channel_id, files=files, comment=marked)
        shared = await self._call(DocumentActivities.upload, upload, "share documents")
        if link := next(iter(shared.permalinks if shared else []), None):  # noted where it went
            self.state.note(workflow.now(), "document", None, report.shared_where(files[0], shared))
        if link and not self.state.private:  # nothing of a private incident is broadcast
            text, broadcast = f"{comment}: {link}", fx.Audience.BROADCAST
            post = fx.Post(key=key, notice=fx.Notice.DOCUMENT, audience=[broadcast], text=text)
            await self._post(post, broadcast)
        return link

    async def _publish_report(self, effect: fx.PublishReport, _: object) -> None:
        document, email = followup.report_documents(self.state, self.policy, effect.key)
        comment = f"Situation report of {self.state.label}"
        await self._share([document], comment, f"{effect.key}-link")
        if email is not None:
            await self._call(MailActivities.send, email, "email the report", shown=True)

    async def _send_retrospective(self, effect: fx.SendRetrospective, _: object) -> None:
        s, people = self.state, rq.People(users=effect.attendees)
        found = await self._call(DocumentActivities.emails, people, "look up emails")
        emails = list(found.by_user.values()) if found else []
        invitation = followup.retrospective_invitation(s, effect, emails)
        ics = await self._call(DocumentActivities.invitation, invitation, "make the invitation")
        files = followup.retrospective_files(s, effect, ics)
        comment = f"{s.label} retrospective proposed for {report.when(effect.meeting_at)}"
        if link := await self._share(files, comment, f"{effect.key}-link"):
            s.retrospective.document_url = link  # and the kickoff links it from now on
            await self._update_kickoff(fx.UpdateKickoff(), None)
        if emails:
            email = followup.retrospective_email(s, effect, emails, files)
            await self._call(MailActivities.send, email, "email the invitation", shown=True)

    async def _call(
        self,
        activity: Callable[[Any, R], Awaitable[T]],
        request: R,
        what: str,
        limit: timedelta = STEP_TIMEOUT,
        shown: bool = False,  # the UI shows ``what``: the type does not say which post, page, email
    ) -> T | None:
        """Run one side effect; a failure retrying cannot fix goes on the timeline, not up."""
        try:
            return await workflow.execute_activity_method(
                activity,
                sent_once(lambda: request),
                start_to_close_timeout=limit,
                schedule_to_close_timeout=SLACK_GIVE_UP,
                retry_policy=SLACK_RETRY,
                summary=what if shown and not self.state.private else None,
            )
        except ActivityError as error:
            self._problem(f"could not {what}: {failure_reason(error)}")
            return None

    def _problem(self, text: str) -> None:
        workflow.logger.warning("incident side effect failed: %s", text)
        self.state.note(workflow.now(), "problem", None, text)
        self.shown.publish(self.state, problem=text)

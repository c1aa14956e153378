"""The follow-through part of IncidentWorkflow: after-resolution Updates, deadlines and the
side effects that carry documents (report, retrospective, invitation, email, archive record).

A base class of IncidentWorkflow, so incident.py stays one screen of sequencing. Everything
here runs only in workflows patched for it (``FOLLOW_UP_PATCH``): incidents started by an
older worker keep their recorded course on replay.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.archive import ArchiveActivities
    from activities.documents import DocumentActivities
    from activities.mail import MailActivities
    from activities.slack import SlackActivities
    from workflows import commands as cmd
    from workflows import drill, followup, report, update_ids
    from workflows.deadlines import Deadline, deadlines, followup_deadlines
    from workflows.documents import DocumentFile, Email, Invitation, People, Upload
    from workflows.effects import (
        Audience,
        Effect,
        Notice,
        Post,
        PostMessage,
        PublishReport,
        RecordIncident,
        SendRetrospective,
    )
    from workflows.models import IncidentState
    from workflows.patching import Patches
    from workflows.policy import Policy

if TYPE_CHECKING:
    from workflows.effects import IncidentBrief

C = TypeVar("C", bound=cmd.Command)
R = TypeVar("R")
T = TypeVar("T")

FOLLOW_UP_PATCH = "after-resolution-follow-through"


class IncidentFollowUp:
    state: IncidentState
    policy: Policy
    outbox: list[Effect]
    patched: Patches  # workflow.patched, or yes for every patch in a lean run

    if TYPE_CHECKING:

        def _apply(
            self, apply: Callable[[IncidentState, Policy, C, datetime], list[Effect]], command: C
        ) -> IncidentState: ...

        async def _call(
            self, activity: Callable[[Any, R], Awaitable[T]], request: R, what: str
        ) -> T | None: ...

        async def _run(self, effect: Effect, audience: Audience | None) -> None: ...

        def _changed(self, effects: list[Effect]) -> None: ...

        changes: int

        def _brief(self) -> IncidentBrief: ...

    _follow_up: bool | None = None
    _recorded: tuple[object, ...] | None = None
    _record_wanted = False
    _archivist: asyncio.Task[None] | None = None

    def _following_up(self) -> bool:
        """Asked at the same point on replay; the answer holds for the rest of the run."""
        if self._follow_up is None:
            self._follow_up = self.patched(FOLLOW_UP_PATCH)
        return self._follow_up

    def _deadlines(self) -> dict[Deadline, datetime]:
        if not self._following_up():
            return deadlines(self.state, self.policy)
        if self._recorded is None:
            # The first wait of a run: the archive hears of a new (or continued) incident even
            # before anything changes in it.
            self._changed([])
        return followup_deadlines(self.state, self.policy)

    def _may_finish(self) -> bool:
        """Archived; with the follow-through, also no action item open and the archive told."""
        if not self._following_up():
            return True
        return followup.is_finished(self.state) and not self._archiving()

    def _archiving(self) -> bool:
        return self._archivist is not None and not self._archivist.done()

    def _record_soon(self) -> None:
        """The archive database is told in the background, one upsert at a time, newest state
        last: a slow or lost database call never holds back Slack, paging or a timer."""
        self._record_wanted = True
        if not self._archiving():
            self._archivist = asyncio.create_task(self._tell_archive())

    async def _tell_archive(self) -> None:
        while self._record_wanted:
            self._record_wanted = False
            await self._call(ArchiveActivities.record_incident, self.state, "record the incident")
        if not self.patched.lean or self._waits_for_archive():
            self.changes += 1  # wakes the main loop: it waits for the archive now and then

    def _waits_for_archive(self) -> bool:
        """Whether the main loop waits for this record: to finish, or to continue as new."""
        at_rest = self.policy.history.continue_as_new_once_open
        return self.state.archived_at is not None or at_rest

    def _followed_up(self, effects: list[Effect]) -> list[Effect]:
        """What a change adds: the report at resolution, the archive record on news."""
        if not self._following_up():
            return effects
        if followup.newly_resolved(self.state):
            effects = followup.on_resolved(self.state, self.policy, effects)
        signature = followup.record_signature(self.state)
        if signature != self._recorded:
            self._recorded = signature
            effects = [*effects, RecordIncident()]
        return effects

    # -- commands -------------------------------------------------------------------------

    @workflow.update
    def complete_retrospective(self, c: cmd.CompleteRetrospective) -> IncidentState:
        return self._apply(followup.apply_complete_retrospective, c)

    @complete_retrospective.validator
    def _complete_retrospective_allowed(self, c: cmd.CompleteRetrospective) -> None:
        if not update_ids.repeated(self.state):
            followup.check_complete_retrospective(self.state, self.policy, c)

    @workflow.update
    def assign_action_item(self, c: cmd.AssignActionItem) -> IncidentState:
        return self._apply(followup.apply_assign_action_item, c)

    @assign_action_item.validator
    def _assign_action_item_allowed(self, c: cmd.AssignActionItem) -> None:
        if not update_ids.repeated(self.state):
            followup.check_assign_action_item(self.state, self.policy, c)

    @workflow.update
    def set_action_item_due(self, c: cmd.SetActionItemDue) -> IncidentState:
        return self._apply(followup.apply_set_action_item_due, c)

    @set_action_item_due.validator
    def _set_action_item_due_allowed(self, c: cmd.SetActionItemDue) -> None:
        if not update_ids.repeated(self.state):
            followup.check_set_action_item_due(self.state, self.policy, c)

    @workflow.update
    def drop_action_item(self, c: cmd.DropActionItem) -> IncidentState:
        return self._apply(followup.apply_drop_action_item, c)

    @drop_action_item.validator
    def _drop_action_item_allowed(self, c: cmd.DropActionItem) -> None:
        if not update_ids.repeated(self.state):
            followup.check_drop_action_item(self.state, self.policy, c)

    # -- side effects ---------------------------------------------------------------------

    async def _run_step(self, effect: Effect, audience: Audience | None) -> None:
        """Run the effects only the follow-through makes; the others as always."""
        if isinstance(effect, Post) and audience is Audience.OWNER:
            if effect.mentions:
                await self._call(
                    SlackActivities.post_message,
                    PostMessage(channel_id=effect.mentions[0], post=effect, brief=self._brief()),
                    f"remind <@{effect.mentions[0]}>",
                )
        elif isinstance(effect, PublishReport):
            await self._publish_report(effect)
        elif isinstance(effect, SendRetrospective):
            await self._send_retrospective(effect)
        elif isinstance(effect, RecordIncident):
            self._record_soon()
        else:
            await self._run(effect, audience)

    async def _share(self, files: list[DocumentFile], comment: str, key: str) -> str | None:
        """Share files in the channel and link the first from the broadcast channel; the
        comment (our words, no one's typed text) introduces both."""
        channel = self.state.channel
        if channel is None:
            return None
        # The link's post below is marked as a drill by its rendering; the file's comment is not.
        marked = drill.marked(comment, self.state.drill)
        upload = Upload(channel_id=channel.id, files=files, comment=marked)
        shared = await self._call(DocumentActivities.upload, upload, "share documents")
        link = shared.permalinks[0] if shared and shared.permalinks else None
        if link:
            text = f"{comment}: {link}"
            post = Post(key=key, notice=Notice.DOCUMENT, audience=[Audience.BROADCAST], text=text)
            await self._run(post, Audience.BROADCAST)
        return link

    async def _publish_report(self, effect: PublishReport) -> None:
        s = self.state
        text = s.report or ""
        name = f"{s.id}-{effect.key}.md"
        document = DocumentFile(filename=name, title=f"{s.label} situation report", content=text)
        await self._share([document], f"Situation report of {s.label}", f"{effect.key}-link")
        stakeholders = self.policy.severity(s.severity).stakeholders
        if stakeholders:
            email = Email(
                key=f"{s.id}-{effect.key}",
                to=stakeholders,
                subject=f"[{s.label}] Resolved: {s.title}",
                body=text,
                attachments=[document],
            )
            await self._call(MailActivities.send, email, "email the report")

    async def _send_retrospective(self, effect: SendRetrospective) -> None:
        s = self.state
        found = await self._call(
            DocumentActivities.emails, People(users=effect.attendees), "look up emails"
        )
        emails = list(found.by_user.values()) if found else []
        summary = f"Retrospective: {s.label} {s.title}"
        invitation = Invitation(
            uid=f"{s.id}-{effect.key}@incidents",
            summary=summary,
            description=f"Draft shared in #{s.channel.name if s.channel else s.label}.",
            start=effect.meeting_at,
            length_seconds=effect.meeting_length_seconds,
            attendees=emails,
        )
        ics = await self._call(DocumentActivities.invitation, invitation, "make the invitation")
        draft = DocumentFile(
            filename=f"{s.id}-{effect.key}.md", title=f"{summary} (draft)", content=effect.draft
        )
        files = [draft, *([ics] if ics else [])]
        when = report.when(effect.meeting_at)
        comment = f"{s.label} retrospective proposed for {when}"
        link = await self._share(files, comment, f"{effect.key}-link")
        s.retrospective.document_url = link or s.retrospective.document_url
        if emails:
            email = Email(
                key=f"{s.id}-{effect.key}",
                to=emails,
                subject=f"[{s.label}] {summary}, {when}",
                body=effect.draft,
                attachments=files,
            )
            await self._call(MailActivities.send, email, "email the invitation")

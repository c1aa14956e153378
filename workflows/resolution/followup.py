"""After resolution: the report, the retrospective, action items and their reminders.

Pure functions over ``IncidentState`` in the style of ``lifecycle``: ``check_*`` for the
Update validators, ``apply_*`` to change the state and return effects, what the workflow
does when a follow-up deadline falls due, and the documents and emails its effects send.
"""

from __future__ import annotations

from datetime import datetime

from workflows.effects import (
    Audience,
    Effect,
    Notice,
    Post,
    PublishReport,
    SendRetrospective,
)
from workflows.escalation.deadlines import action_item_reminder_at, first_free_slot
from workflows.lifecycle import commands as cmd
from workflows.lifecycle.notices import CHANNEL, CommandRefused
from workflows.lifecycle.timeline import open_action_item
from workflows.models import IncidentState, Status
from workflows.policy import Policy
from workflows.requests import DocumentFile, Email, Invitation
from workflows.resolution import report


def _post(
    state: IncidentState,
    notice: Notice,
    audience: list[Audience],
    text: str,
    actor: str | None = None,
    mentions: list[str] | None = None,
) -> Post:
    state.notices_posted += 1
    return Post(
        key=f"{notice.value}-{state.notices_posted}",
        notice=notice,
        audience=audience,
        actor=actor,
        text=text,
        mentions=mentions or [],
    )


def record_signature(state: IncidentState) -> tuple[object, ...]:
    """What the archive database must hear about when it changes; the last change (archived,
    no item open) is the incident's completion."""
    open_items = sum(1 for item in state.action_items if item.is_open)
    return (
        state.title,
        state.status,
        state.severity,
        state.acknowledged_at,
        state.escalation_level,
        state.archived_at,
        open_items,
    )


def newly_resolved(state: IncidentState) -> bool:
    """Resolved, and the report of this resolution is not written yet."""
    return state.status is Status.RESOLVED and state.report_at != state.resolved_at


def on_resolved(state: IncidentState, policy: Policy, effects: list[Effect]) -> list[Effect]:
    """Resolution: the notice says what support needs, the report is written, the
    retrospective is placed in business hours."""
    notice = report.resolution_notice(state)
    for effect in effects:
        if isinstance(effect, Post) and effect.notice is Notice.RESOLVED:
            effect.text = notice
    retro = state.retrospective
    retro.drafted_at, retro.reminders_sent, retro.meeting_at = None, 0, None
    if retro.required and retro.due_at is not None:
        length = policy.severity(state.severity).retrospective.meeting_length
        retro.meeting_at = first_free_slot(retro.due_at, policy.business_hours, length)
    state.report = report.situation_report(state, policy)
    state.report_at = state.resolved_at
    state.notices_posted += 1
    return [*effects, PublishReport(key=f"report-{state.notices_posted}")]


def send_retrospective(state: IncidentState, policy: Policy, now: datetime) -> list[Effect]:
    """The retrospective falls due: draft, invitation, and the reminders start."""
    retro = state.retrospective
    severity = policy.severity(state.severity)
    if retro.meeting_at is None:  # no slot was placed at resolution
        retro.meeting_at = first_free_slot(
            now, policy.business_hours, severity.retrospective.meeting_length
        )
    retro.drafted_at = now
    state.notices_posted += 1
    proposed = f"Retrospective proposed for {report.when(retro.meeting_at)}"
    state.note(now, "retrospective", None, proposed)
    return [
        SendRetrospective(
            key=f"retrospective-{state.notices_posted}",
            draft=report.retrospective_draft(state, policy, retro.meeting_at),
            meeting_at=retro.meeting_at,
            meeting_length_seconds=severity.retrospective.meeting_length.total_seconds(),
            attendees=report.attendees(state),
        )
    ]


def report_documents(
    state: IncidentState, policy: Policy, key: str
) -> tuple[DocumentFile, Email | None]:
    """The situation report (a canvas, else a file), and the email to the stakeholders of its
    severity and its type (if any); of a private incident, only to its type's: the severity's
    stakeholders are everyone's, and a private incident's type says who may hear of it."""
    text = state.report or ""
    name = f"{state.id}-{key}.md"
    title = f"{state.label} situation report"
    document = DocumentFile(filename=name, title=title, content=text, canvas="own")
    kind = policy.types.get(state.type or "")
    typed = kind.stakeholders if kind else []
    everyone = [] if state.private else policy.severity(state.severity).stakeholders
    stakeholders = list(dict.fromkeys([*everyone, *typed]))
    if not stakeholders:
        return document, None
    subject = f"[{state.label}] Resolved: {state.title}"
    email = Email(key=f"{state.id}-{key}", to=stakeholders, subject=subject, body=text)
    return document, email.model_copy(update={"attachments": [document]})


def retrospective_title(state: IncidentState) -> str:
    return f"Retrospective: {state.label} {state.title}"


def retrospective_invitation(
    state: IncidentState, effect: SendRetrospective, emails: list[str]
) -> Invitation:
    """The meeting, for everyone involved whose email Slack knows."""
    where = state.channel.name if state.channel else state.label
    return Invitation(
        uid=f"{state.id}-{effect.key}@incidents",
        summary=retrospective_title(state),
        description=f"Draft shared in #{where}.",
        start=effect.meeting_at,
        length_seconds=effect.meeting_length_seconds,
        attendees=emails,
    )


def retrospective_files(
    state: IncidentState, effect: SendRetrospective, ics: DocumentFile | None
) -> list[DocumentFile]:
    """The draft (the channel's canvas, else Markdown), and the invitation (.ics) if made."""
    title = f"{retrospective_title(state)} (draft)"
    name = f"{state.id}-{effect.key}.md"
    draft = DocumentFile(filename=name, title=title, content=effect.draft, canvas="channel")
    return [draft, *([ics] if ics else [])]


def retrospective_email(
    state: IncidentState, effect: SendRetrospective, emails: list[str], files: list[DocumentFile]
) -> Email:
    subject = f"[{state.label}] {retrospective_title(state)}, {report.when(effect.meeting_at)}"
    return Email(
        key=f"{state.id}-{effect.key}",
        to=emails,
        subject=subject,
        body=effect.draft,
        attachments=files,
    )


def _to_person(state: IncidentState, user: str | None) -> list[Audience]:
    """The person directly when there is one, else the channel while it is not archived."""
    if user:
        return [Audience.OWNER]
    return CHANNEL if state.archived_at is None else []


def remind_retrospective(state: IncidentState, policy: Policy, now: datetime) -> list[Effect]:
    state.retrospective.reminders_sent += 1
    commander = state.roles.commander
    text = (
        f"The retrospective of {state.label} is not marked done yet: "
        "`/incident retro done` once it is held."
    )
    audience = CHANNEL if state.archived_at is None else _to_person(state, commander)
    if not audience:
        return []
    return [_post(state, Notice.RETROSPECTIVE_DUE, audience, text, mentions=_ids(commander))]


def remind_action_items(state: IncidentState, policy: Policy, now: datetime) -> list[Effect]:
    effects: list[Effect] = []
    for item in state.action_items:
        at = action_item_reminder_at(item, policy, state.severity)
        if at is None or at > now:
            continue
        item.reminders_sent += 1
        audience = _to_person(state, item.owner)
        if audience:
            text = f"Action item #{item.id} of {state.label} is due: {item.text}"
            effects.append(
                _post(state, Notice.ACTION_ITEM_DUE, audience, text, mentions=_ids(item.owner))
            )
    return effects


def _ids(user: str | None) -> list[str]:
    return [user] if user else []


def is_finished(state: IncidentState) -> bool:
    """The workflow ends when the channel is archived and no action item is open."""
    return state.archived_at is not None and not any(i.is_open for i in state.action_items)


# -- commands ---------------------------------------------------------------------------


def check_complete_retrospective(
    state: IncidentState, policy: Policy, c: cmd.CompleteRetrospective
) -> None:
    if state.status is not Status.RESOLVED:
        raise CommandRefused(f"{state.label} is {state.status.value}; resolve it first")
    if state.retrospective.completed_at is not None:
        raise CommandRefused(f"the retrospective of {state.label} is already done")


def apply_complete_retrospective(
    state: IncidentState, policy: Policy, c: cmd.CompleteRetrospective, now: datetime
) -> list[Effect]:
    check_complete_retrospective(state, policy, c)
    state.retrospective.completed_at = now
    state.retrospective.document_url = c.document_url or state.retrospective.document_url
    text = "Retrospective done."
    state.note(now, "retrospective_done", c.by, text)
    if state.archived_at is not None:
        return []
    return [_post(state, Notice.RETROSPECTIVE_DONE, CHANNEL, text, actor=c.by)]


def _item_changed(
    state: IncidentState, now: datetime, by: str | None, kind: str, text: str
) -> list[Effect]:
    state.note(now, kind, by, text)
    if state.archived_at is not None:
        return []
    return [_post(state, Notice.ACTION_ITEM, CHANNEL, text, actor=by)]


def check_assign_action_item(state: IncidentState, policy: Policy, c: cmd.AssignActionItem) -> None:
    if open_action_item(state, c.item_id).owner == c.owner:
        raise CommandRefused(f"<@{c.owner}> already owns action item #{c.item_id}")


def apply_assign_action_item(
    state: IncidentState, policy: Policy, c: cmd.AssignActionItem, now: datetime
) -> list[Effect]:
    check_assign_action_item(state, policy, c)
    item = open_action_item(state, c.item_id)
    item.owner = c.owner
    text = f"Action item #{item.id} is now owned by <@{c.owner}>: {item.text}"
    return _item_changed(state, now, c.by, "action_item", text)


def check_set_action_item_due(
    state: IncidentState, policy: Policy, c: cmd.SetActionItemDue
) -> None:
    open_action_item(state, c.item_id)


def apply_set_action_item_due(
    state: IncidentState, policy: Policy, c: cmd.SetActionItemDue, now: datetime
) -> list[Effect]:
    check_set_action_item_due(state, policy, c)
    item = open_action_item(state, c.item_id)
    item.due_at, item.reminders_sent = c.due, 0
    text = f"Action item #{item.id} is due {report.when(c.due)}: {item.text}"
    return _item_changed(state, now, c.by, "action_item", text)


def check_drop_action_item(state: IncidentState, policy: Policy, c: cmd.DropActionItem) -> None:
    open_action_item(state, c.item_id)


def apply_drop_action_item(
    state: IncidentState, policy: Policy, c: cmd.DropActionItem, now: datetime
) -> list[Effect]:
    check_drop_action_item(state, policy, c)
    item = open_action_item(state, c.item_id)
    item.dropped_at = now
    why = f" ({c.reason})" if c.reason else ""
    text = f"Action item #{item.id} dropped{why}: {item.text}"
    return _item_changed(state, now, c.by, "action_item_dropped", text)

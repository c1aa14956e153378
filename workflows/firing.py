"""What happens when an incident's deadline comes due.

One dispatch for the workflow's deadline loop and the policy preview, so the preview can never
show something the workflow would not do.
"""

from __future__ import annotations

from datetime import datetime

from workflows import commands as cmd
from workflows import escalation, followup, notices
from workflows.deadlines import Deadline, refresh_deadlines
from workflows.effects import ArchiveChannel, Effect, Notice
from workflows.models import IncidentState
from workflows.policy import Policy


def fire(state: IncidentState, policy: Policy, deadline: Deadline, now: datetime) -> list[Effect]:
    if deadline is Deadline.ESCALATION:
        return escalation.apply_escalate(state, policy, cmd.Escalate(), now, automatic=True)
    if deadline is Deadline.UPDATE:
        return remind_update(state, policy, now)
    if deadline is Deadline.ARCHIVE:
        return archive(state, now)
    if deadline is Deadline.RETROSPECTIVE:
        return followup.send_retrospective(state, policy, now)
    if deadline is Deadline.RETROSPECTIVE_REMINDER:
        return followup.remind_retrospective(state, policy, now)
    return followup.remind_action_items(state, policy, now)


def remind_update(state: IncidentState, policy: Policy, now: datetime) -> list[Effect]:
    """No update for a whole cadence: nudge the commander; a second miss in a row goes wider.

    Reminders stay off the timeline (a long incident would drown in them); only the first
    time an update is overdue is a fact worth keeping for the retrospective.
    """
    severity = policy.severity(state.severity)
    state.updates_missed += 1
    leads = [p for p in (state.roles.commander, state.roles.comms_lead) if p]
    if state.updates_missed == 1:
        text = "A status update is due: post one with `/incident update <message>`."
        post = notices.post_notice(state, Notice.UPDATE_DUE, notices.CHANNEL, None, text, leads)
    else:
        text = f"No status update for {state.updates_missed} update periods in a row."
        audience = notices.BOTH if severity.missed_update_broadcast else notices.CHANNEL
        mentions = [*leads, *severity.missed_update_notify]
        post = notices.post_notice(state, Notice.UPDATE_OVERDUE, audience, None, text, mentions)
        if state.updates_missed == 2:
            state.note(now, "update_overdue", None, "Status update overdue")
    refresh_deadlines(state, policy, now)
    return [post]


def archive(state: IncidentState, now: datetime) -> list[Effect]:
    state.archived_at = now
    state.note(now, "archived", None, "Channel archived")
    return [ArchiveChannel()]

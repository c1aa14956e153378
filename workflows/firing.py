"""What happens when an incident's deadline comes due.

One dispatch for the workflow's deadline loop and the policy preview, so the preview can never
show something the workflow would not do.
"""

from __future__ import annotations

from datetime import datetime

from workflows import commands as cmd
from workflows import followup, lifecycle
from workflows.deadlines import Deadline
from workflows.effects import Effect
from workflows.models import IncidentState
from workflows.policy import Policy


def fire(state: IncidentState, policy: Policy, deadline: Deadline, now: datetime) -> list[Effect]:
    if deadline is Deadline.ESCALATION:
        return lifecycle.apply_escalate(state, policy, cmd.Escalate(), now, automatic=True)
    if deadline is Deadline.UPDATE:
        return lifecycle.remind_update(state, policy, now)
    if deadline is Deadline.ARCHIVE:
        return lifecycle.archive(state, now)
    if deadline is Deadline.RETROSPECTIVE:
        return followup.send_retrospective(state, policy, now)
    if deadline is Deadline.RETROSPECTIVE_REMINDER:
        return followup.remind_retrospective(state, policy, now)
    return followup.remind_action_items(state, policy, now)

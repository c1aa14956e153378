"""What an incident does with alerts of its own group: fold them, never echo each one.

A storm of one group is one incident; its later notifications become one running digest on
the timeline (a new entry only after a quiet spell), and Slack hears about the group again
only when all of it resolves. Then the rule may move the incident to monitoring, never to
resolved: people decide when an incident is over.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel

from workflows.alerts.routing import AlertBatch, AlertStatus, ResolvedAlert
from workflows.effects import Effect, Notice
from workflows.lifecycle import commands as cmd
from workflows.lifecycle import notices, states
from workflows.models import IncidentState, Status
from workflows.policy import Policy

DIGEST_WINDOW = timedelta(minutes=10)
SHOWN_NAMES = 5


SHOWN_EVENTS = 50  # a signal stays small whatever the storm: the rest are counted


class AlertSignal(BaseModel):
    """One webhook's worth of alerts for the incident's group (a signal: no one waits)."""

    batch: AlertBatch
    on_resolved: ResolvedAlert = ResolvedAlert.NOTE
    more_firing: int = 0  # alerts of the batch beyond those it carries
    more_resolved: int = 0

    @classmethod
    def of(cls, batch: AlertBatch, on_resolved: ResolvedAlert) -> AlertSignal:
        """Far below Temporal's payload limit: at most SHOWN_EVENTS alerts, the rest counted."""
        rest = batch.events[SHOWN_EVENTS:]
        return cls(
            batch=batch.model_copy(update={"events": batch.events[:SHOWN_EVENTS]}),
            on_resolved=on_resolved,
            more_firing=sum(e.status is AlertStatus.FIRING for e in rest),
            more_resolved=sum(e.status is AlertStatus.RESOLVED for e in rest),
        )


def _names(batch: AlertBatch) -> str:
    names = sorted({e.name for e in batch.events if e.name})
    more = len(names) - SHOWN_NAMES
    return ", ".join(names[:SHOWN_NAMES]) + (f" and {more} more" if more > 0 else "")


def fold(state: IncidentState, policy: Policy, signal: AlertSignal, now: datetime) -> list[Effect]:
    batch, tally = signal.batch, state.alerts
    tally.batches += 1
    tally.firing += signal.more_firing + sum(e.status is AlertStatus.FIRING for e in batch.events)
    tally.resolved += signal.more_resolved + sum(
        e.status is AlertStatus.RESOLVED for e in batch.events
    )
    tally.last_at = now
    names = _names(batch)
    text = (
        f"Alerts: {tally.firing} firing, {tally.resolved} resolved "
        f"({tally.batches} notifications)" + (f": {names}" if names else "")
    )
    last = state.timeline[-1] if state.timeline else None
    if last is not None and last.kind == "alerts" and now - last.at < DIGEST_WINDOW:
        last.text = text  # the storm goes on: one entry, kept current
    else:
        state.note(now, "alerts", None, text)
    if batch.status is not AlertStatus.RESOLVED:
        tally.group_resolved = False
        return []
    if tally.group_resolved or not state.is_open:
        return []  # Alertmanager repeats itself (and runs in pairs): say it once
    tally.group_resolved = True
    effects: list[Effect] = [
        notices.channel_notice(state, Notice.ALERTS_RESOLVED, "All alerts of the group resolved.")
    ]
    moving = state.status in (Status.INVESTIGATING, Status.IDENTIFIED)
    if signal.on_resolved is ResolvedAlert.MONITORING and moving:
        change = cmd.SetStatus(status=Status.MONITORING, message="All alerts resolved.")
        effects += states.apply_set_status(state, policy, change, now)
    return effects

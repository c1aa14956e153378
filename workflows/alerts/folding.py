"""What an incident does with alerts of its own group: fold them, never echo each one.

A storm of one group is one incident; its later notifications become one running digest on
the timeline (a new entry only after a quiet spell), and Slack hears about the group again
only when all of it resolves. Then the rule may move the incident to monitoring, never to
resolved: people decide when an incident is over.

Alertmanager sends the whole group in every notification, so the digest counts distinct
alerts (by fingerprint) in their latest state, not the alerts of every notification summed.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from workflows.alerts.routing import AlertBatch, AlertEvent, AlertStatus, ResolvedAlert
from workflows.effects import Effect, Notice
from workflows.lifecycle import commands as cmd
from workflows.lifecycle import notices, states
from workflows.models import AlertTally, IncidentState, Status
from workflows.policy import Policy

DIGEST_WINDOW = timedelta(minutes=10)
SHOWN_NAMES = 5
SHOWN_EVENTS = 50  # a signal stays small whatever the storm: the rest travel as fingerprints
TOLD_APART = 1000  # distinct alerts an incident tells apart; past that they are only counted
_SHORT_ID = 32


def identity(event: AlertEvent) -> str:
    """What tells an alert from the others of its group: its fingerprint, kept short (a long
    one is hashed), or its name when the sender gave none."""
    given = event.fingerprint or f"name:{event.name}"
    if len(given) <= _SHORT_ID:
        return given
    return hashlib.sha256(given.encode()).hexdigest()[:_SHORT_ID]


class AlertSignal(BaseModel):
    """One webhook's worth of alerts for the incident's group (a signal: no one waits)."""

    batch: AlertBatch
    on_resolved: ResolvedAlert = ResolvedAlert.NOTE
    # The state of the batch's alerts beyond the events it carries, by ``identity``.
    others: dict[str, AlertStatus] = Field(default_factory=dict)
    untold: int = 0  # alerts of the group past TOLD_APART, or that the sender left out

    @classmethod
    def of(cls, batch: AlertBatch, on_resolved: ResolvedAlert) -> AlertSignal:
        """Far below Temporal's payload limit: at most SHOWN_EVENTS alerts in full, the
        states of up to TOLD_APART in all, and a count of the rest."""
        shown = batch.events[:SHOWN_EVENTS]
        others: dict[str, AlertStatus] = {}
        for event in batch.events[SHOWN_EVENTS:TOLD_APART]:
            others[identity(event)] = event.status
        return cls(
            batch=batch.model_copy(update={"events": shown}),
            on_resolved=on_resolved,
            others=others,
            untold=max(len(batch.events) - TOLD_APART, 0) + batch.truncated,
        )


def _names(batch: AlertBatch) -> str:
    names = sorted({e.name for e in batch.events if e.name})
    more = len(names) - SHOWN_NAMES
    return ", ".join(names[:SHOWN_NAMES]) + (f" and {more} more" if more > 0 else "")


def _count(tally: AlertTally, signal: AlertSignal) -> None:
    """Each alert's latest state; Alertmanager resending the group changes no count."""
    states = {identity(e): e.status for e in signal.batch.events} | signal.others
    untold = signal.untold
    for alert, status in states.items():
        if alert in tally.latest or len(tally.latest) < TOLD_APART:
            tally.latest[alert] = status.value
        else:
            untold += 1
    tally.untold = untold  # the group as its latest notification has it
    tally.firing = sum(s == AlertStatus.FIRING for s in tally.latest.values())
    tally.resolved = len(tally.latest) - tally.firing


def fold(state: IncidentState, policy: Policy, signal: AlertSignal, now: datetime) -> list[Effect]:
    batch, tally = signal.batch, state.alerts
    tally.batches += 1
    _count(tally, signal)
    tally.last_at = now
    names = _names(batch)
    untold = f", {tally.untold} more not told apart" if tally.untold else ""
    text = (
        f"Alerts: {tally.firing} firing, {tally.resolved} resolved{untold} "
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

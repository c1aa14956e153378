"""Time in each status, the escalations and the breakdown by severity, without a server:
scripted histories with known times, through the same ``apply_*`` functions the workflow runs,
so a change of the timeline's words for a status change would show here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workflows.escalation import tiers
from workflows.lifecycle import commands as cmd
from workflows.lifecycle import states, timeline
from workflows.lifecycle.notices import CommandRefused
from workflows.lifecycle.timeline import time_in_status
from workflows.models import Declaration, IncidentState, Status
from workflows.policy import default_policy
from workflows.resolution import followup
from workflows.resolution.metrics import BREAKDOWNS, aggregate, digest, record_of

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
POLICY = default_policy()
INVESTIGATING, IDENTIFIED, MONITORING = Status.INVESTIGATING, Status.IDENTIFIED, Status.MONITORING


def declared(number: int = 1, severity: str = "sev2", at: datetime = T0) -> IncidentState:
    declaration = Declaration(
        title=f"incident {number}", severity=severity, declared_by="U0ALICE01"
    )
    state, _ = states.start(number, f"incident-{number}", declaration, POLICY, at)
    return state


def move(state: IncidentState, status: Status, at: datetime, message: str = "") -> None:
    states.apply_set_status(state, POLICY, cmd.SetStatus(status=status, message=message), at)


def resolve(state: IncidentState, at: datetime) -> None:
    states.apply_resolve(state, POLICY, cmd.Resolve(message="fixed"), at)


def test_forward_changes_count_each_status_until_the_next():
    state = declared()
    move(state, IDENTIFIED, T0 + 10 * MIN, "bad deploy. Status: identified → monitoring")
    timeline.apply_add_timeline_entry(
        state, POLICY, cmd.AddTimelineEntry(text="Status: x → monitoring", at=T0 + 11 * MIN), T0
    )
    move(state, MONITORING, T0 + 40 * MIN)
    resolve(state, T0 + 100 * MIN)
    spent = time_in_status(state, T0 + timedelta(days=3))  # resolved: now changes nothing
    assert spent == {INVESTIGATING: 10 * MIN, IDENTIFIED: 30 * MIN, MONITORING: 60 * MIN}
    assert list(spent) == [INVESTIGATING, IDENTIFIED, MONITORING]


def test_a_skipped_status_and_one_never_entered_are_left_out():
    state = declared()
    move(state, MONITORING, T0 + 5 * MIN)  # straight to monitoring: never identified
    resolve(state, T0 + 25 * MIN)
    assert time_in_status(state, T0 + 25 * MIN) == {INVESTIGATING: 5 * MIN, MONITORING: 20 * MIN}
    never_moved = declared(2)
    resolve(never_moved, T0 + 7 * MIN)
    assert time_in_status(never_moved, T0 + 60 * MIN) == {INVESTIGATING: 7 * MIN}


def test_a_reopened_incident_counts_again_from_the_reopening_not_while_resolved():
    state = declared()
    move(state, IDENTIFIED, T0 + 10 * MIN)
    resolve(state, T0 + 30 * MIN)
    states.apply_reopen(state, POLICY, cmd.Reopen(reason="errors again"), T0 + 90 * MIN)
    move(state, MONITORING, T0 + 95 * MIN)
    resolve(state, T0 + 125 * MIN)
    # investigating 10 + 5 after the reopening; the hour resolved counts nowhere
    assert time_in_status(state, T0 + 125 * MIN) == {
        INVESTIGATING: 15 * MIN,
        IDENTIFIED: 20 * MIN,
        MONITORING: 30 * MIN,
    }


def test_an_open_incident_counts_its_current_status_up_to_now_reopened_or_not():
    state = declared()
    move(state, IDENTIFIED, T0 + 10 * MIN)
    assert time_in_status(state, T0 + 45 * MIN) == {INVESTIGATING: 10 * MIN, IDENTIFIED: 35 * MIN}
    resolve(state, T0 + 50 * MIN)
    states.apply_reopen(state, POLICY, cmd.Reopen(), T0 + 60 * MIN)
    assert time_in_status(state, T0 + 62 * MIN) == {INVESTIGATING: 12 * MIN, IDENTIFIED: 40 * MIN}


def test_the_report_shows_the_time_in_each_status_and_says_a_reopening_counts_afresh():
    state = declared()
    move(state, IDENTIFIED, T0 + 20 * MIN)
    resolve(state, T0 + 30 * MIN)
    states.apply_reopen(state, POLICY, cmd.Reopen(), T0 + 40 * MIN)
    effects = states.apply_resolve(state, POLICY, cmd.Resolve(), T0 + 45 * MIN)
    followup.on_resolved(state, POLICY, effects)
    assert state.report is not None
    section = state.report.split("## Time in each status\n\n")[1].split("\n\n")[0]
    assert section.splitlines() == [
        "- Investigating: 25m 00s",  # 20 before, 5 after the reopening
        "- Identified: 10m 00s",
        "- Monitoring: never",
        "- Reopened 1 time: the time between a resolution and its reopening counts in no status",
    ]


# A generated history: each step waits some minutes, then asks for a status (resolved too) or a
# reopening; what the state machine refuses changes nothing, as in the workflow.
STEPS = st.lists(
    st.tuples(st.integers(0, 90), st.sampled_from([*Status, None])), min_size=0, max_size=12
)


@given(STEPS, st.integers(0, 90))
def test_any_history_splits_its_open_time_exactly_between_the_statuses(steps, left) -> None:
    """Counted by the test as it goes: the time in each status it was in, and none while
    resolved; the derivation from the timeline must find exactly that."""
    state, at = declared(), T0
    expected: dict[Status, timedelta] = {}
    for minutes, asked in steps:
        if state.status is not Status.RESOLVED:
            expected[state.status] = expected.get(state.status, timedelta()) + minutes * MIN
        at += minutes * MIN
        try:
            if asked is None:
                states.apply_reopen(state, POLICY, cmd.Reopen(), at)
            else:
                move(state, asked, at)
        except CommandRefused:
            continue
        expected.setdefault(state.status, timedelta())
    if state.status is not Status.RESOLVED:
        expected[state.status] = expected.get(state.status, timedelta()) + left * MIN
    expected.pop(Status.RESOLVED, None)
    spent = time_in_status(state, at + left * MIN)
    assert spent == {
        s: expected[s] for s in (INVESTIGATING, IDENTIFIED, MONITORING) if s in expected
    }


def records() -> list:
    """sev1: 10 + 20 minutes, one escalation; sev2: 30 minutes investigating, then 60 more
    after a reopening; sev2 still open; a sev1 drill."""
    first = declared(1, "sev1")
    tiers.apply_escalate(first, POLICY, cmd.Escalate(), T0 + 2 * MIN, automatic=True)
    move(first, IDENTIFIED, T0 + 10 * MIN)
    resolve(first, T0 + 30 * MIN)
    second = declared(2, "sev2")
    resolve(second, T0 + 30 * MIN)
    states.apply_reopen(second, POLICY, cmd.Reopen(), T0 + 40 * MIN)
    resolve(second, T0 + 100 * MIN)
    still_open = declared(3, "sev2")
    drill = declared(4, "sev1")
    drill.drill = True
    resolve(drill, T0 + 500 * MIN)
    return [record_of(s, T0 + 200 * MIN) for s in (first, second, still_open, drill)]


def test_metrics_average_time_in_status_over_resolved_incidents_and_count_escalations():
    figures = aggregate(records())
    assert figures.incidents == 3 and figures.open == 1
    # investigating (10 + 90) / 2; only the first was ever identified; the open one is left out
    assert figures.mean_seconds_in_status == {"investigating": 50 * 60, "identified": 20 * 60}
    assert figures.escalations == 1
    assert figures.escalations_per_incident == pytest.approx(1 / 3)
    assert figures.mean_escalation_level == pytest.approx(1 / 3)
    assert "Mean time in status: investigating 50m 00s · identified 20m 00s" in digest(figures)


def test_every_figure_is_broken_down_by_severity_and_type():
    typed = records()
    typed[0].type = "security"
    by_type = aggregate(typed).breakdown["type"]
    assert (by_type["security"].incidents, by_type["none"].incidents) == (1, 2)
    assert by_type["security"].mttr_seconds == 30 * 60
    figures = aggregate(records())
    assert list(BREAKDOWNS) == ["severity", "type"]
    sev1, sev2 = figures.breakdown["severity"]["sev1"], figures.breakdown["severity"]["sev2"]
    assert (sev1.incidents, sev1.open, sev1.escalations, sev1.mean_escalation_level) == (1, 0, 1, 1)
    assert sev1.mean_seconds_in_status == {"investigating": 600, "identified": 1200}
    assert sev1.mttr_seconds == 30 * 60
    assert (sev2.incidents, sev2.open, sev2.escalations_per_incident) == (2, 1, 0)
    assert sev2.mean_seconds_in_status == {"investigating": 90 * 60}
    assert sev2.mttr_seconds == 100 * 60
    assert figures.by_severity == {"sev1": 1, "sev2": 2}
    only_sev2 = aggregate(records(), severity="sev2")
    assert list(only_sev2.breakdown["severity"]) == ["sev2"]


def test_a_record_archived_before_the_level_was_kept_is_left_out_of_its_mean():
    old = records()[0].model_dump(mode="json")
    del old["escalation_level"]
    record = type(records()[0]).model_validate(old)
    assert record.escalation_level is None
    figures = aggregate([record])
    assert figures.mean_escalation_level is None and figures.escalations_per_incident == 1

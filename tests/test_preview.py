"""The policy preview runs the workflow's own functions on a simulated clock."""

from __future__ import annotations

from datetime import timedelta

from workflows.policy import default_policy
from workflows.preview import Scenario, preview

POLICY = default_policy()


def minutes(m: float) -> timedelta:
    return timedelta(minutes=m)


def test_unacknowledged_sev1_pages_through_its_tiers_and_nags_for_updates() -> None:
    steps = preview(POLICY, Scenario(severity="sev1", horizon=minutes(45)))
    pages = [s.after for s in steps if s.what == "page (trigger)"]
    # Tier one after 5 minutes, tier two 10 minutes later and three repeats, 10 minutes apart.
    assert pages == [minutes(5), minutes(15), minutes(25), minutes(35), minutes(45)]
    reminders = [(s.after, s.what) for s in steps if s.what.startswith("update_")]
    assert reminders == [
        (minutes(15), "update_due"),
        (minutes(30), "update_overdue"),
        (minutes(45), "update_overdue"),
    ]
    assert steps[0].what == "kickoff" and steps[1].what == "announcement"


def test_acknowledging_stops_escalation_and_updates_keep_reminders_away() -> None:
    scenario = Scenario(
        severity="sev1", ack_after=minutes(7), updates_every=minutes(10), horizon=minutes(60)
    )
    steps = preview(POLICY, scenario)
    pages = [(s.after, s.what) for s in steps if s.what.startswith("page")]
    assert pages == [(minutes(5), "page (trigger)"), (minutes(7), "page (acknowledge)")]
    assert any(s.what == "acknowledged" and s.after == minutes(7) for s in steps)
    assert not [s for s in steps if s.what.startswith("update_")]
    assert len([s for s in steps if s.what == "update"]) == 6


def test_resolution_schedules_the_archive_after_the_retrospective() -> None:
    scenario = Scenario(
        severity="sev2", ack_after=minutes(1), resolve_after=minutes(20), horizon=timedelta(days=30)
    )
    steps = preview(POLICY, scenario)
    resolved = next(s for s in steps if s.what == "resolved")
    archived = next(s for s in steps if s.what == "archive")
    assert resolved.after == minutes(20)
    assert resolved.where == ["channel", "broadcast"]
    kinds = [s.what for s in steps]
    assert "situation report" in kinds
    draft = next(s for s in steps if s.what == "retrospective draft and invitation")
    # sev2: the retrospective three days after resolution, its meeting in the first business
    # hours slot (resolved Saturday 00:20, so Tuesday 09:00), the archive seven days after.
    assert draft.after == minutes(20) + timedelta(days=3)
    assert draft.text == "meeting proposed for Tue 09:00 UTC"
    assert archived.after == timedelta(days=3, hours=9) + timedelta(days=7)
    assert steps[-1] is archived


def test_a_late_acknowledgement_never_comes_after_resolution() -> None:
    scenario = Scenario(severity="sev3", ack_after=minutes(90), resolve_after=minutes(30))
    steps = preview(POLICY, scenario)
    assert not [s for s in steps if s.what == "acknowledged"]

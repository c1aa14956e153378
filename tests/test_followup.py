"""After resolution, without a server: the report, the retrospective slot, action items, the
follow-up deadlines and the incident figures, against a scripted history with known times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from workflows.effects import Audience, Notice, Post, PublishReport, SendRetrospective
from workflows.escalation import tiers
from workflows.escalation.deadlines import Deadline, first_free_slot, followup_deadlines
from workflows.lifecycle import commands as cmd
from workflows.lifecycle import states, timeline
from workflows.lifecycle.notices import CommandRefused
from workflows.models import Declaration, IncidentState, Role, Status
from workflows.policy import BusinessHours, Policy, default_policy
from workflows.resolution import followup, report
from workflows.resolution.metrics import aggregate, digest, record_of, seconds_in_status

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)  # a Friday
MIN = timedelta(minutes=1)


def policy(**hours: object) -> Policy:
    data = default_policy().model_dump()
    data["business_hours"] = {"timezone": "Europe/Paris", **hours}
    data["severities"]["sev1"]["stakeholders"] = ["vp@example.com"]
    return Policy.model_validate(data)


POLICY = policy()


def run_script(p: Policy = POLICY) -> tuple[IncidentState, list]:
    """Declared 09:00, escalated 09:05, acknowledged 09:07, identified 09:20, resolved 10:30."""
    declaration = Declaration(
        title="Checkout failing",
        severity="sev1",
        summary="Card payments fail for EU customers",
        components=["checkout", "payments"],
        commander="U0ALICE01",
        responders=["U0BOB0002"],
        declared_by="U0ALICE01",
    )
    state, _ = states.start(7, "incident-7", declaration, p, T0)
    tiers.apply_escalate(state, p, cmd.Escalate(), T0 + 5 * MIN, automatic=True)
    states.apply_acknowledge(state, p, cmd.Acknowledge(by="U0BOB0002"), T0 + 7 * MIN)
    states.apply_assign_role(
        state, p, cmd.AssignRole(role=Role.TECH_LEAD, user="U0CAROL03"), T0 + 8 * MIN
    )
    states.apply_set_status(
        state, p, cmd.SetStatus(status=Status.IDENTIFIED, message="bad deploy"), T0 + 20 * MIN
    )
    states.apply_post_update(
        state, p, cmd.PostUpdate(message="rolling back", by="U0DAVE004"), T0 + 30 * MIN
    )
    timeline.apply_add_action_item(
        state, p, cmd.AddActionItem(text="canary deploys", owner="U0CAROL03"), T0 + 40 * MIN
    )
    effects = states.apply_resolve(
        state, p, cmd.Resolve(message="rolled back to v41", by="U0ALICE01"), T0 + 90 * MIN
    )
    return state, followup.on_resolved(state, p, effects)


def test_resolution_notice_says_normal_operations_are_restored_with_duration_and_impact():
    _, effects = run_script()
    resolved = next(e for e in effects if isinstance(e, Post) and e.notice is Notice.RESOLVED)
    assert resolved.audience == [Audience.CHANNEL, Audience.BROADCAST]
    assert resolved.text.startswith("Normal operations restored after 1h 30m.")
    assert "Impact: major. Affected components: checkout, payments." in resolved.text
    assert "Resolution: rolled back to v41" in resolved.text
    assert any(isinstance(e, PublishReport) for e in effects)


def test_situation_report_holds_times_people_solution_and_open_items():
    state, _ = run_script()
    text = state.report
    assert text is not None and state.report_at == T0 + 90 * MIN
    assert text.startswith("# INC-7 situation report: Checkout failing")
    assert "- Reported: 2026-11-20 09:00:00 UTC by @U0ALICE01 (via api)" in text
    assert "- Acknowledged: 2026-11-20 09:07:00 UTC by @U0BOB0002" in text
    assert "- Closed: 2026-11-20 10:30:00 UTC" in text
    assert "- Response time (acknowledged - declared): 7m 00s" in text
    assert "- Time to resolve: 1h 30m" in text
    assert "- Incident commander: @U0ALICE01" in text
    assert "- Tech lead: @U0CAROL03" in text
    assert "- Comms lead: unassigned" in text
    assert "## Solution\n\nrolled back to v41" in text
    assert "- Affected components: checkout, payments" in text
    assert "- Escalations: 1 (highest level 1)" in text
    assert "- Missed status updates: 0" in text
    assert "- [ ] #1 canary deploys (@U0CAROL03; open)" in text
    assert "role · Tech lead: @U0CAROL03" in text  # Slack's <@U…> reads as @U… in documents


def test_retrospective_is_placed_in_the_first_business_slot_after_the_delay():
    state, _ = run_script()
    # sev1: after 1 day -> Saturday 10:30 UTC; Paris business hours -> Monday 09:00 Paris.
    assert state.retrospective.due_at == T0 + 90 * MIN + timedelta(days=1)
    assert state.retrospective.meeting_at == datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("after", "length", "expected"),
    [
        # Tuesday 10:00 Paris (09:00 UTC): inside hours, as is.
        (datetime(2026, 11, 24, 9, 0, tzinfo=UTC), 60, datetime(2026, 11, 24, 9, 0, tzinfo=UTC)),
        # Tuesday 07:00 Paris: when the day opens, 09:00 Paris.
        (datetime(2026, 11, 24, 6, 0, tzinfo=UTC), 60, datetime(2026, 11, 24, 8, 0, tzinfo=UTC)),
        # Tuesday 16:30 Paris, one hour does not fit before 17:00: Wednesday 09:00.
        (datetime(2026, 11, 24, 15, 30, tzinfo=UTC), 60, datetime(2026, 11, 25, 8, 0, tzinfo=UTC)),
        # Friday 16:30 Paris: Monday.
        (datetime(2026, 11, 20, 15, 30, tzinfo=UTC), 60, datetime(2026, 11, 23, 8, 0, tzinfo=UTC)),
        # Summer time: 09:00 Paris is 07:00 UTC.
        (datetime(2026, 7, 1, 5, 0, tzinfo=UTC), 30, datetime(2026, 7, 1, 7, 0, tzinfo=UTC)),
    ],
)
def test_first_free_slot_keeps_to_business_hours_and_days(after, length, expected):
    hours = BusinessHours(timezone="Europe/Paris")
    assert first_free_slot(after, hours, timedelta(minutes=length)) == expected


def test_a_meeting_may_cross_midnight_when_business_hours_run_round_the_clock():
    hours = BusinessHours(start="00:00", end="24:00", days=list(range(7)))
    late = datetime(2026, 11, 24, 23, 50, tzinfo=UTC)
    assert first_free_slot(late, hours, timedelta(minutes=30)) == late


def test_business_hours_refuse_an_unknown_timezone():
    with pytest.raises(ValueError, match="unknown timezone 'Mars/Olympus'"):
        BusinessHours(timezone="Mars/Olympus")


def test_retrospective_falls_due_then_reminds_until_done():
    state, _ = run_script()
    due = followup_deadlines(state, POLICY)
    assert due[Deadline.RETROSPECTIVE] == state.retrospective.due_at
    assert Deadline.RETROSPECTIVE_REMINDER not in due
    assert due[Deadline.ARCHIVE] == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # meeting + 7d
    sent_at = state.retrospective.due_at
    assert sent_at is not None
    effects = followup.send_retrospective(state, POLICY, sent_at)
    (retro,) = effects
    assert isinstance(retro, SendRetrospective)
    assert retro.meeting_at == state.retrospective.meeting_at
    assert retro.attendees == ["U0ALICE01", "U0CAROL03", "U0BOB0002", "U0DAVE004"]
    assert "## Root cause and contributing factors" in retro.draft
    assert "- [ ] #1 canary deploys (@U0CAROL03; open)" in retro.draft
    due = followup_deadlines(state, POLICY)
    assert Deadline.RETROSPECTIVE not in due
    assert due[Deadline.RETROSPECTIVE_REMINDER] == sent_at + timedelta(days=1)
    followup.remind_retrospective(state, POLICY, sent_at + timedelta(days=1))
    assert followup_deadlines(state, POLICY)[
        Deadline.RETROSPECTIVE_REMINDER
    ] == sent_at + timedelta(days=2)
    followup.apply_complete_retrospective(
        state, POLICY, cmd.CompleteRetrospective(by="U0ALICE01"), sent_at + timedelta(days=2)
    )
    assert Deadline.RETROSPECTIVE_REMINDER not in followup_deadlines(state, POLICY)
    with pytest.raises(CommandRefused, match="already done"):
        followup.check_complete_retrospective(state, POLICY, cmd.CompleteRetrospective())


def test_reopening_cancels_the_retrospective_and_rearms_the_update_cadence():
    state, _ = run_script()
    now = T0 + 100 * MIN
    states.apply_reopen(state, POLICY, cmd.Reopen(reason="errors again"), now)
    due = followup_deadlines(state, POLICY)
    assert Deadline.RETROSPECTIVE not in due and Deadline.ARCHIVE not in due
    assert due[Deadline.UPDATE] == now + timedelta(minutes=15)
    assert not followup.newly_resolved(state)
    effects = states.apply_resolve(state, POLICY, cmd.Resolve(message="fixed"), now + 10 * MIN)
    assert followup.newly_resolved(state)
    followup.on_resolved(state, POLICY, effects)
    assert state.report is not None and "## Solution\n\nfixed" in state.report


def test_action_item_reminds_its_owner_when_due_and_every_interval_while_open():
    state, _ = run_script()
    due_at = T0 + timedelta(days=2)
    followup.apply_set_action_item_due(
        state, POLICY, cmd.SetActionItemDue(item_id=1, due=due_at), T0 + 95 * MIN
    )
    assert followup_deadlines(state, POLICY)[Deadline.ACTION_ITEM] == due_at
    assert followup.remind_action_items(state, POLICY, due_at - MIN) == []
    (reminder,) = followup.remind_action_items(state, POLICY, due_at)
    assert isinstance(reminder, Post) and reminder.audience == [Audience.OWNER]
    assert reminder.mentions == ["U0CAROL03"] and "canary deploys" in reminder.text
    assert followup_deadlines(state, POLICY)[Deadline.ACTION_ITEM] == due_at + timedelta(days=1)
    followup.apply_assign_action_item(
        state, POLICY, cmd.AssignActionItem(item_id=1, owner="U0DAVE004"), due_at + MIN
    )
    (reminder,) = followup.remind_action_items(state, POLICY, due_at + timedelta(days=1))
    assert reminder.mentions == ["U0DAVE004"]
    followup.apply_drop_action_item(state, POLICY, cmd.DropActionItem(item_id=1), due_at + 2 * MIN)
    assert Deadline.ACTION_ITEM not in followup_deadlines(state, POLICY)
    with pytest.raises(CommandRefused, match="was dropped"):
        timeline.check_complete_action_item(state, POLICY, cmd.CompleteActionItem(item_id=1))
    with pytest.raises(CommandRefused, match="has no action item #9"):
        followup.check_drop_action_item(state, POLICY, cmd.DropActionItem(item_id=9))


def test_workflow_finishes_only_when_archived_and_no_item_is_open():
    state, _ = run_script()
    tiers.archive(state, T0 + timedelta(days=10))
    assert not followup.is_finished(state)
    timeline.apply_complete_action_item(
        state, POLICY, cmd.CompleteActionItem(item_id=1), T0 + timedelta(days=11)
    )
    assert followup.is_finished(state)


def test_incident_record_has_per_incident_figures():
    state, _ = run_script()
    record = record_of(state, T0 + timedelta(days=1))
    assert record.time_to_acknowledge == 7 * 60
    assert record.time_to_resolve == 90 * 60
    assert record.escalations == 1 and record.missed_updates == 0
    assert record.seconds_in_status == {"investigating": 20 * 60, "identified": 70 * 60}
    assert record.people == ["U0ALICE01", "U0CAROL03", "U0BOB0002"]
    assert seconds_in_status(state, T0)["identified"] == 70 * 60


def scripted_week() -> list:
    """Four incidents in a week with known acknowledge and resolve times."""
    records = []
    script = [  # severity, offset days, ack minutes, resolve minutes, components, commander
        ("sev1", 0, 4, 60, ["checkout"], "U0ALICE01"),
        ("sev2", 1, 10, 120, ["checkout", "search"], "U0BOB0002"),
        ("sev2", 3, 16, 240, ["search"], "U0ALICE01"),
        ("sev3", 5, None, None, ["billing"], "U0CAROL03"),
    ]
    for number, (sev, day, ack, fix, components, commander) in enumerate(script, start=1):
        at = T0 + timedelta(days=day)
        declaration = Declaration(
            title=f"incident {number}", severity=sev, components=components, commander=commander
        )
        state, _ = states.start(number, f"incident-{number}", declaration, POLICY, at)
        if ack is not None:
            states.apply_acknowledge(state, POLICY, cmd.Acknowledge(by=commander), at + ack * MIN)
        if fix is not None:
            states.apply_resolve(state, POLICY, cmd.Resolve(), at + fix * MIN)
        records.append(record_of(state, at + timedelta(hours=6)))
    return records


def test_metrics_of_a_scripted_week():
    metrics = aggregate(scripted_week())
    assert metrics.incidents == 4 and metrics.open == 1
    assert metrics.mtta_seconds == 10 * 60  # (4 + 10 + 16) / 3 minutes
    assert metrics.mttr_seconds == 140 * 60  # (60 + 120 + 240) / 3 minutes
    assert metrics.by_severity == {"sev1": 1, "sev2": 2, "sev3": 1}
    assert metrics.recurring_components == {"checkout": 2, "search": 2}
    assert metrics.workload == {"U0ALICE01": 2, "U0BOB0002": 1, "U0CAROL03": 1}
    sev2 = aggregate(scripted_week(), since=T0 + timedelta(days=2), severity="sev2")
    assert sev2.incidents == 1 and sev2.mttr_seconds == 240 * 60
    text = digest(metrics)
    assert "4 (SEV1 1, SEV2 2, SEV3 1); 1 still open" in text
    assert "MTTA 10m 00s · MTTR 2h 20m" in text
    assert "Recurring components: checkout (2), search (2)" in text


def test_report_durations_read_naturally():
    assert report.duration(timedelta(seconds=5)) == "5s"
    assert report.duration(timedelta(minutes=3, seconds=20)) == "3m 20s"
    assert report.duration(timedelta(hours=1, minutes=5)) == "1h 05m"
    assert report.duration(timedelta(days=2, hours=4)) == "2d 4h"
    assert report.duration(None) == "-"


def test_readme_after_resolution_policy_example_parses(tmp_path):
    import re
    from pathlib import Path

    from workflows.policy import load_policy

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme[readme.index("## After resolution") :]
    example = re.search(r"```toml\n(.*?)```", section, re.S)
    assert example is not None
    path = tmp_path / "policy.toml"
    path.write_text(example.group(1))
    loaded = load_policy(path)
    assert loaded.business_hours.timezone == "Europe/Paris"
    assert loaded.digest.every == timedelta(days=7)
    assert loaded.severity("sev1").retrospective.meeting_length == timedelta(hours=1)

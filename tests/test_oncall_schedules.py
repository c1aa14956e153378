"""Shift arithmetic: properties across daylight saving in several zones, overrides, layers,
restrictions and gaps; and the policy's schedules, teams and ``oncall:`` targets."""

from __future__ import annotations

import itertools
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from structlog.testing import capture_logs

from config import Settings
from workflows.escalation.deadlines import escalation_path
from workflows.models import Impact, IncidentState
from workflows.oncall.rotation import Definition, Roster
from workflows.oncall.schedules import (
    Override,
    Restriction,
    Schedule,
    coverage_warnings,
    gaps,
    next_handoff,
    on_call,
    shifts,
)
from workflows.policy import Policy

ZONES = ["Europe/Paris", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "UTC"]
PEOPLE = ["U0ALICE01", "U0BOB0002", "U0CAROL03"]
instants = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31)).map(
    lambda t: t.replace(tzinfo=UTC)
)


def weekly(zone: str, start: str = "2026-01-05T09:00:00", people: list[str] = PEOPLE) -> Schedule:
    return Schedule.model_validate(
        {"timezone": zone, "people": people, "shift": "1w", "start": start}
    )


@settings(max_examples=150, deadline=None)
@given(zone=st.sampled_from(ZONES), at=instants)
def test_a_weekly_handoff_stays_at_nine_local_across_daylight_saving(
    zone: str, at: datetime
) -> None:
    schedule = weekly(zone)  # 09:00 local on a Monday, read in the zone
    shift = on_call(schedule, [], at)
    if at < datetime(2026, 1, 5, 9, tzinfo=ZoneInfo(zone)):
        assert shift is None, "nobody before the rotation starts"
        return
    assert shift is not None
    for edge in (shift.start, shift.end):
        local = edge.astimezone(ZoneInfo(zone))
        assert (local.weekday(), local.hour, local.minute) == (0, 9, 0)
    assert shift.start <= at < shift.end
    weeks = round((shift.start - datetime(2026, 1, 5, 9, tzinfo=ZoneInfo(zone))).days / 7)
    assert shift.user == PEOPLE[weeks % 3], "people[n mod len], n whole shifts since start"
    assert next_handoff(schedule, [], at) == shift.end


@settings(max_examples=100, deadline=None)
@given(at=instants, seconds=st.integers(min_value=1, max_value=7200))
def test_short_shifts_are_exact_seconds(at: datetime, seconds: int) -> None:
    start = datetime(2024, 12, 1, tzinfo=UTC)
    schedule = Schedule.model_validate(
        {"timezone": "Europe/Paris", "people": PEOPLE, "shift": seconds, "start": start}
    )
    shift = on_call(schedule, [], at)
    n = int((at - start).total_seconds() // seconds)
    assert shift is not None and shift.user == PEOPLE[n % 3]
    assert shift.start == start + timedelta(seconds=n * seconds)
    assert shift.end == shift.start + timedelta(seconds=seconds)


@settings(max_examples=100, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    at=instants,
    length=st.integers(min_value=60, max_value=10 * 86400),
    offset=st.integers(min_value=-5 * 86400, max_value=5 * 86400),
)
def test_an_override_wins_for_its_window_only(
    zone: str, at: datetime, length: int, offset: int
) -> None:
    schedule = weekly(zone, start="2024-06-03T09:00:00")
    start = at + timedelta(seconds=offset)
    end = start + timedelta(seconds=length)
    override = Override(id="1", user="U0DAVE004", start=start, end=end)
    shift = on_call(schedule, [override], at)
    assert shift is not None
    if override.start <= at < override.end:
        assert (shift.user, shift.override) == ("U0DAVE004", True)
        assert (shift.start, shift.end) == (override.start, override.end)
    else:  # the rotation's person, within their shift, cut where the override begins or ends
        plain = on_call(schedule, [], at)
        assert plain is not None and (shift.user, shift.override) == (plain.user, False)
        assert plain.start <= shift.start <= at < shift.end <= plain.end


@settings(max_examples=60, deadline=None)
@given(zone=st.sampled_from(ZONES), at=instants)
def test_shifts_tile_the_window_and_agree_with_on_call(zone: str, at: datetime) -> None:
    schedule = Schedule.model_validate(
        {
            "timezone": zone,
            "layers": [
                {"people": PEOPLE, "shift": "1d", "start": "2024-06-01T08:00:00"},
                {
                    "people": ["U0ERIN005", "U0DAVE004"],
                    "shift": "1w",
                    "start": "2024-06-01T00:00:00",
                    "restrictions": ["weekends"],
                },
            ],
        }
    )
    override = Override(id="1", user="U0BOB0002", start=at, end=at + timedelta(hours=5))
    found = shifts(schedule, [override], at, at + timedelta(days=10))
    assert found[0].start <= at and found[-1].end == at + timedelta(days=10)
    for before, after in itertools.pairwise(found):
        assert before.end == after.start, "no hole: every layer-1 moment has someone"
        assert (before.user, before.override) != (after.user, after.override)
    for shift in found:
        middle = shift.start + (shift.end - shift.start) / 2
        current = on_call(schedule, [override], middle)
        assert current is not None and current.user == shift.user
        weekend = middle.astimezone(ZoneInfo(zone)).weekday() >= 5
        if not shift.override:
            assert (shift.user in ("U0ERIN005", "U0DAVE004")) == weekend


def test_business_hours_leave_gaps_that_are_reported() -> None:
    schedule = Schedule.model_validate(
        {
            "timezone": "America/New_York",
            "people": PEOPLE,
            "shift": "1d",
            "start": "2026-03-02T00:00:00",
            "restrictions": ["business_hours"],
        }
    )
    monday = datetime(2026, 3, 9, tzinfo=ZoneInfo("America/New_York"))  # DST starts Sunday 8th
    found = gaps(schedule, monday, monday + timedelta(days=7))
    local = [(a.astimezone(monday.tzinfo), b.astimezone(monday.tzinfo)) for a, b in found]
    assert [(a.hour, b.hour) for a, b in local[:2]] == [(0, 9), (17, 9)]
    assert local[-1][0].weekday() == 4 and local[-1][0].hour == 17, "Friday evening on"
    assert on_call(schedule, [], monday + timedelta(hours=10)) is not None
    assert on_call(schedule, [], monday + timedelta(hours=18)) is None
    warnings = coverage_warnings({"nine-to-five": schedule}, monday)
    assert len(warnings) == 1 and "nine-to-five" in warnings[0]
    assert "2026-03-09 17:00 to 2026-03-10 09:00" in warnings[0]
    assert coverage_warnings({"always": weekly("UTC", "2026-01-05T09:00:00")}, monday) == []


def test_a_night_restriction_runs_past_midnight() -> None:
    schedule = Schedule.model_validate(
        {
            "timezone": "Australia/Sydney",
            "people": ["U0ALICE01"],
            "shift": "1w",
            "start": "2026-01-01T00:00:00",
            "restrictions": [{"days": [0], "start": "22:00", "end": "06:00"}],
        }
    )
    sydney = ZoneInfo("Australia/Sydney")
    assert on_call(schedule, [], datetime(2026, 4, 6, 23, tzinfo=sydney)) is not None  # Mon 23h
    assert on_call(schedule, [], datetime(2026, 4, 7, 5, tzinfo=sydney)) is not None  # Tue 5h
    assert on_call(schedule, [], datetime(2026, 4, 7, 7, tzinfo=sydney)) is None


POLICY = """
[severities.sev1]
escalation = [{after = "5m", page = true}]
[severities.sev2]
escalation = [{after = "5m", notify = ["oncall:payments-primary", "@carol"]}]

[schedules.payments-primary]
timezone = "Europe/Paris"
people = ["@alice", "@bob", "@carol"]
shift = "1w"
start = "2026-12-07T09:00:00+01:00"
user_group = "payments-oncall"

[components.checkout]
team = "payments"

[teams.payments]
escalation = [{after = "1m", notify = ["oncall:payments-primary"]}]
"""


def incident(severity: str, components: list[str]) -> IncidentState:
    at = datetime(2026, 12, 8, tzinfo=UTC)
    return IncidentState(
        id="incident-1",
        number=1,
        title="Checkout fails",
        severity=severity,
        impact=Impact.MAJOR,
        components=components,
        declared_at=at,
        last_update_at=at,
    )


def test_the_policy_reads_schedules_teams_and_oncall_targets() -> None:
    policy = Policy.model_validate(tomllib.loads(POLICY))
    schedule = policy.schedules["payments-primary"]
    assert schedule.layers[0].people == ["@alice", "@bob", "@carol"]
    assert schedule.layers[0].shift == timedelta(weeks=1)
    assert Policy.model_validate_json(policy.model_dump_json()) == policy
    on_checkout = incident("sev1", ["checkout"])
    assert escalation_path(policy, on_checkout) == policy.teams["payments"].escalation
    on_checkout.severity = "sev2"  # its own tiers name people: they win
    assert escalation_path(policy, on_checkout) == policy.severities["sev2"].escalation
    elsewhere = incident("sev1", ["search"])
    assert escalation_path(policy, elsewhere) == policy.severities["sev1"].escalation


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ('notify = ["oncall:payments-primary"]', "oncall:payments-primaryy"),
        ('team = "payments"', "unknown team 'paymentz'"),
        ('timezone = "Europe/Paris"', "unknown timezone 'Europe/Pariss'"),
        ('shift = "1w"', "not a duration"),
    ],
)
def test_a_policy_naming_what_does_not_exist_is_refused(change: str, message: str) -> None:
    broken = {
        "oncall:payments-primary": "oncall:payments-primaryy",
        "payments": "paymentz",
        "Europe/Paris": "Europe/Pariss",
        "1w": "one week",
    }
    old = next(k for k in broken if k in change)
    text = POLICY.replace(change, change.replace(old, broken[old]))
    with pytest.raises(ValidationError, match=message):
        Policy.model_validate(tomllib.loads(text))


def test_an_override_must_end_after_it_starts() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ValidationError, match="end after it starts"):
        Override(id="1", user="U0ALICE01", start=at, end=at)


layered = st.builds(
    lambda zone, shift, hours, days: Schedule.model_validate(
        {
            "timezone": zone,
            "layers": [
                {"people": PEOPLE, "shift": shift, "start": "2026-01-01T00:00:00"},
                {
                    "people": ["U0DAVE004", "U0ERIN005"],
                    "shift": "1d",
                    "start": "2026-02-01T00:00:00",
                    "restrictions": [{"days": days, "start": hours[0], "end": hours[1]}],
                },
            ],
        }
    ),
    st.sampled_from(ZONES),
    st.sampled_from(["8h", "1d", "1w", "2d"]),
    st.sampled_from([("09:00", "17:00"), ("22:00", "06:00"), ("00:00", "24:00")]),
    st.lists(st.integers(min_value=0, max_value=6), min_size=1, max_size=3),
)
moments = st.datetimes(min_value=datetime(2025, 12, 1), max_value=datetime(2026, 12, 1)).map(
    lambda t: t.replace(tzinfo=UTC)
)


@settings(max_examples=80, deadline=None)
@given(
    schedule=layered,
    at=moments,
    probes=st.lists(st.floats(0, 1, exclude_max=True), min_size=5, max_size=5),
)
def test_gaps_are_exactly_where_nobody_is_on_call(
    schedule: Schedule, at: datetime, probes: list[float]
) -> None:
    week = timedelta(weeks=1)
    found = gaps(schedule, at, at + 2 * week)  # a probe rounded up to ``at + week`` stays inside
    for fraction in probes:
        t = at + week * fraction
        in_gap = any(a <= t < b for a, b in found)
        assert (on_call(schedule, [], t) is None) == in_gap


@settings(max_examples=80, deadline=None)
@given(schedule=layered, at=moments)
def test_the_next_handoff_is_the_next_change_of_person(schedule: Schedule, at: datetime) -> None:
    handoff = next_handoff(schedule, [], at)
    assert handoff is not None and handoff > at
    who = on_call(schedule, [], at)
    just_before = on_call(schedule, [], handoff - timedelta(microseconds=1))
    after = on_call(schedule, [], handoff)
    assert (just_before.user if just_before else None) == (who.user if who else None)
    assert (after.user if after else None) != (who.user if who else None)


def test_an_edit_applies_from_when_it_is_made_and_never_changes_a_past_shift() -> None:
    before = weekly("Europe/Paris", "2026-01-05T09:00:00")
    after = weekly("Europe/Paris", "2026-01-05T09:00:00", people=["U0ERIN005"])
    edited = datetime(2026, 1, 21, 12, tzinfo=UTC)  # mid-shift: Wednesday of week 3
    roster = Roster(
        name="payments-primary",
        schedule=after,
        written=after,
        definitions=[
            Definition(schedule=before, since=datetime(2026, 1, 1, tzinfo=UTC)),
            Definition(schedule=after, since=edited),
        ],
        overrides=[],
    )
    start, end = datetime(2026, 1, 5, 8, tzinfo=UTC), datetime(2026, 2, 2, 8, tzinfo=UTC)
    found = roster.shifts(start, end)
    assert [s.user for s in found] == [*PEOPLE, "U0ERIN005"]
    assert found[2].end == found[3].start == edited, "the shift in progress ends at the edit"
    assert found[:2] == shifts(before, [], start, edited)[:2], "the past as it was"


def test_a_gap_in_the_next_four_weeks_is_logged_when_the_policy_loads(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(
        POLICY.replace('user_group = "payments-oncall"', 'restrictions = ["business_hours"]')
    )
    with capture_logs() as logs:
        policy = Settings(policy_file=str(path)).policy
    assert "payments-primary" in policy.schedules, "loaded: a gap is no refusal"
    assert [entry["event"] for entry in logs] == ["oncall_gap"]
    assert "schedule payments-primary: nobody on call" in logs[0]["warning"]
    assert " 17:00 to " in logs[0]["warning"], "with the windows, in the schedule's zone"


def read_directly(schedule: Schedule, at: datetime) -> str | None:
    """The rules read off the wall clock, without the walk: the last layer that applies at
    ``at`` answers people[n mod len], n the whole shifts of wall-clock time since its start."""
    zone = ZoneInfo(schedule.timezone)
    local = at.astimezone(zone)
    for layer in reversed(schedule.layers):
        start = layer.start.astimezone(zone)
        if at < layer.start:
            continue
        if layer.restrictions and not any(within(r, local) for r in layer.restrictions):
            continue
        calendar = layer.shift % timedelta(days=1) == timedelta(0)
        wall = local.replace(tzinfo=None) - start.replace(tzinfo=None)
        n = (wall if calendar else at - layer.start) // layer.shift
        return layer.people[n % len(layer.people)]
    return None


def within(restriction: Restriction, local: datetime) -> bool:
    clock = local.strftime("%H:%M")
    today, yesterday = local.weekday(), (local.weekday() - 1) % 7
    if restriction.end <= restriction.start:  # overnight
        return (today in restriction.days and clock >= restriction.start) or (
            yesterday in restriction.days and clock < restriction.end
        )
    return today in restriction.days and restriction.start <= clock < restriction.end


@settings(max_examples=300, deadline=None)
@given(schedule=layered, at=moments)
def test_on_call_agrees_with_the_rules_read_off_the_wall_clock(
    schedule: Schedule, at: datetime
) -> None:
    shift = on_call(schedule, [], at)
    assert (shift.user if shift else None) == read_directly(schedule, at)

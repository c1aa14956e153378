"""The state machine, without a server: what each command allows and what it changes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from workflows.effects import Audience, Invite, Notice, Page, PageAction, Post, RefreshTopic
from workflows.escalation import tiers as escalation
from workflows.escalation.deadlines import Deadline, deadlines, escalation_tier
from workflows.lifecycle import commands as cmd
from workflows.lifecycle import states
from workflows.lifecycle.channel import changes_kickoff
from workflows.lifecycle.notices import CommandRefused
from workflows.models import Declaration, IncidentState, Role, Status
from workflows.policy import default_policy

T0 = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
POLICY = default_policy()


def declared(**fields: object) -> IncidentState:
    declaration = Declaration.model_validate(
        {"title": "Checkout failing", "severity": "sev1", "commander": "U0ALICE01", **fields}
    )
    state, _ = states.start(7, "incident-7", declaration, POLICY, T0)
    return state


def posts(effects: Sequence[object]) -> list[Post]:
    return [e for e in effects if isinstance(e, Post)]


def test_declaration_queues_topic_invite_pinned_kickoff_and_announcement():
    declaration = Declaration(
        title="Checkout failing",
        severity="sev1",
        commander="U0ALICE01",
        responders=["U0BOB0002", "U0ALICE01"],
    )
    state, effects = states.start(7, "incident-7", declaration, POLICY, T0)
    assert state.roles.commander == "U0ALICE01"
    assert state.responders == ["U0BOB0002"]
    assert state.next_update_due == T0 + timedelta(minutes=15)
    assert isinstance(effects[0], RefreshTopic)
    assert effects[1] == Invite(users=["U0ALICE01", "U0BOB0002"])
    kickoff, announcement = posts(effects)
    assert kickoff.pin and kickoff.audience == [Audience.CHANNEL]
    assert announcement.audience == [Audience.BROADCAST]
    assert [e.kind for e in state.timeline] == ["declared"]


def test_unknown_severity_is_refused_at_declaration():
    with pytest.raises(ValueError, match="unknown severity 'sev9'; this policy knows sev1"):
        declared(severity="sev9")


@pytest.mark.parametrize(
    "path",
    [
        ["identified", "monitoring", "resolved"],
        ["monitoring"],  # skipping ahead is allowed
        ["resolved"],
    ],
)
def test_statuses_move_forward(path):
    state = declared()
    for step, status in enumerate(path, start=1):
        now = T0 + timedelta(minutes=step)
        effects = states.apply_set_status(state, POLICY, cmd.SetStatus(status=status), now)
        assert state.status == status
        assert state.status_entered_at[Status(status)] == now
        assert {Audience.CHANNEL, Audience.BROADCAST} <= set(posts(effects)[0].audience)


def test_moving_back_is_refused_with_the_way_out():
    state = declared()
    states.apply_set_status(state, POLICY, cmd.SetStatus(status=Status.MONITORING), T0)
    with pytest.raises(
        CommandRefused,
        match=r"cannot move from monitoring back to identified; "
        r".*reopen a resolved incident instead",
    ):
        states.check_set_status(state, POLICY, cmd.SetStatus(status=Status.IDENTIFIED))


def test_same_status_is_refused():
    with pytest.raises(CommandRefused, match="already investigating"):
        states.check_set_status(declared(), POLICY, cmd.SetStatus(status="investigating"))


def test_resolve_then_reopen_returns_to_investigating():
    state = declared()
    effects = states.apply_resolve(state, POLICY, cmd.Resolve(message="rolled back"), T0)
    assert state.status is Status.RESOLVED and state.resolved_at == T0
    assert state.next_update_due is None
    assert state.retrospective.required and state.retrospective.due_at == T0 + timedelta(days=1)
    assert not [e for e in effects if isinstance(e, Page)]  # nobody was paged
    with pytest.raises(CommandRefused, match="resolved; reopen it to go back to monitoring"):
        states.check_set_status(state, POLICY, cmd.SetStatus(status="monitoring"))
    later = T0 + timedelta(hours=1)
    states.apply_reopen(state, POLICY, cmd.Reopen(reason="errors are back"), later)
    assert state.status.value == "investigating" and state.resolved_at is None
    assert state.next_update_due == later + timedelta(minutes=15)


def test_reopen_of_an_open_incident_is_refused():
    with pytest.raises(CommandRefused, match="only a resolved incident can be reopened"):
        states.check_reopen(declared(), POLICY, cmd.Reopen())


def test_acknowledge_once_and_acknowledger_without_commander_takes_the_role():
    state = declared(commander=None)
    effects = states.apply_acknowledge(state, POLICY, cmd.Acknowledge(by="U0BOB0002"), T0)
    assert state.acknowledged_by == "U0BOB0002" and state.roles.commander == "U0BOB0002"
    assert Invite(users=["U0BOB0002"]) in effects
    with pytest.raises(CommandRefused, match="already acknowledged by <@U0BOB0002>"):
        states.check_acknowledge(state, POLICY, cmd.Acknowledge(by="U0CAROL03"))


def test_one_commander_at_a_time():
    state = declared()
    states.apply_assign_role(
        state, POLICY, cmd.AssignRole(role=Role.COMMANDER, user="U0CAROL03"), T0
    )
    assert state.roles.commander == "U0CAROL03"
    with pytest.raises(CommandRefused, match="already the incident commander"):
        states.check_assign_role(
            state, POLICY, cmd.AssignRole(role=Role.COMMANDER, user="U0CAROL03")
        )


def test_severity_change_must_name_a_known_different_severity():
    state = declared()
    with pytest.raises(CommandRefused, match="unknown severity 'sev0'"):
        states.check_set_severity(state, POLICY, cmd.SetSeverity(severity="sev0"))
    with pytest.raises(CommandRefused, match="already SEV1"):
        states.check_set_severity(state, POLICY, cmd.SetSeverity(severity="sev1"))
    states.apply_set_severity(state, POLICY, cmd.SetSeverity(severity="sev2"), T0)
    assert state.next_update_due == T0 + timedelta(minutes=30)


def test_rename_changes_the_title_says_so_in_the_channel_and_refreshes_topic_and_kickoff():
    state = declared()
    with pytest.raises(CommandRefused, match="INC-7 is already called 'Checkout failing'"):
        states.check_rename(state, POLICY, cmd.Rename(title="  Checkout failing "))
    with pytest.raises(ValueError, match="must contain visible text"):
        cmd.Rename(title=" \u200b ")
    with pytest.raises(ValueError, match="at most 200"):
        cmd.Rename(title="x" * 201)
    renamed = cmd.Rename(title="Checkout fails for <EU> cards", by="U0BOB0002")
    effects = states.apply_rename(state, POLICY, renamed, T0)
    assert state.title == "Checkout fails for <EU> cards"
    entry = state.timeline[-1]
    assert (entry.kind, entry.actor) == ("renamed", "U0BOB0002")
    assert entry.text == "Renamed from 'Checkout failing' to 'Checkout fails for <EU> cards'"
    post = posts(effects)[0]
    assert (post.notice, post.audience, post.text) == (
        Notice.RENAMED,
        [Audience.CHANNEL],
        "Was: Checkout failing",
    )
    assert RefreshTopic() in effects and changes_kickoff(effects)


def test_update_resets_the_cadence():
    state = declared()
    later = T0 + timedelta(minutes=10)
    states.apply_post_update(state, POLICY, cmd.PostUpdate(message="still looking"), later)
    assert state.next_update_due == later + timedelta(minutes=15)
    assert state.timeline[-1].text == "still looking"


def test_user_ids_are_checked():
    with pytest.raises(ValueError, match="'alice' is not a Slack user id"):
        cmd.AssignRole(role=Role.TECH_LEAD, user="alice")
    assert cmd.AssignRole(role=Role.TECH_LEAD, user="<@U0BOB0002>").user == "U0BOB0002"


def test_commands_on_resolved_incident_say_reopen_first():
    state = declared()
    states.apply_resolve(state, POLICY, cmd.Resolve(), T0)
    checks: list[tuple[Callable[..., None], Any]] = [
        (states.check_acknowledge, cmd.Acknowledge()),
        (escalation.check_escalate, cmd.Escalate()),
        (states.check_set_severity, cmd.SetSeverity(severity="sev2")),
        (states.check_rename, cmd.Rename(title="Checkout fails")),
    ]
    for check, command in checks:
        with pytest.raises(CommandRefused, match="INC-7 is resolved; reopen it before"):
            check(state, POLICY, command)


def test_notices_have_unique_keys():
    state = declared()
    keys = set()
    for message in ["a", "b", "c"]:
        effects = states.apply_post_update(state, POLICY, cmd.PostUpdate(message=message), T0)
        keys.add(posts(effects)[0].key)
    assert len(keys) == 3
    assert all(k.startswith(Notice.UPDATE.value) for k in keys)


def test_paged_incident_sends_acknowledge_and_resolve_pages():
    from workflows.policy import EscalationTier

    policy = POLICY.model_copy(deep=True)
    policy.severities["sev1"].escalation = [
        EscalationTier(after=60, notify=["U0BOB0002"], page=True)
    ]
    state = declared()
    effects = escalation.apply_escalate(state, policy, cmd.Escalate(), T0, automatic=True)
    assert effects[0] == Page(action=PageAction.TRIGGER, targets=["U0BOB0002"])
    assert state.paged_at == T0
    assert Page(action=PageAction.ACKNOWLEDGE) in states.apply_acknowledge(
        state, policy, cmd.Acknowledge(), T0
    )
    assert Page(action=PageAction.RESOLVE) in states.apply_resolve(state, policy, cmd.Resolve(), T0)


def test_effects_run_in_lanes_that_keep_their_own_order():
    from workflows.effects import Lane, lanes

    state, effects = states.start(
        7, "incident-7", Declaration(title="x", severity="sev1", commander="U0ALICE01"), POLICY, T0
    )
    effects += states.apply_set_status(state, POLICY, cmd.SetStatus(status=Status.IDENTIFIED), T0)
    grouped = lanes(effects)
    assert set(grouped) == {Lane.CHANNEL, Lane.BROADCAST, Lane.TOPIC}
    kinds = [type(e).__name__ for e, _ in grouped[Lane.CHANNEL]]
    assert kinds == ["Invite", "Post", "Post"]  # invite, kickoff, status change
    assert [e.notice for e, _ in grouped[Lane.BROADCAST]] == [
        Notice.ANNOUNCEMENT,
        Notice.STATUS_CHANGED,
    ]
    assert len(grouped[Lane.TOPIC]) == 1  # only the newest refresh runs


def tiered_policy(**sev1: Any) -> Any:
    """sev1 with three tiers: U0TIER001 invited at 5 m, U0TIER002 paged at 10 m (twice), then
    U0TIER003 invited and paged at 15 m."""
    policy = default_policy().model_dump()
    policy["severities"]["sev1"]["escalation"] = [
        {"after": 300, "notify": ["U0TIER001"]},
        {"after": 600, "notify": ["U0TIER002"], "page": True, "invite": False, "repeat": 1},
        {"after": 900, "notify": ["U0TIER003", "U0TIER001"], "page": True},
    ]
    policy["severities"]["sev1"].update(sev1)
    return type(POLICY).model_validate(policy)


def start_at(tiers: int, **fields: object) -> tuple[IncidentState, list[Any]]:
    declaration = Declaration.model_validate(
        {"title": "Checkout failing", "severity": "sev1", "escalation_level": tiers, **fields}
    )
    return states.start(7, "incident-7", declaration, tiered_policy(), T0)


def test_declared_at_tier_one_notifies_it_at_once_and_times_tier_two_from_the_declaration():
    state, effects = start_at(1)
    assert state.escalation_level == 1 and state.escalated_at == T0
    assert Invite(users=["U0TIER001"]) in effects
    assert not [e for e in effects if isinstance(e, Page)], "tier 1 does not page"
    (said,) = [p for p in posts(effects) if p.notice is Notice.ESCALATED]
    assert said.mentions == ["U0TIER001"]
    assert deadlines(state, tiered_policy())[Deadline.ESCALATION] == T0 + timedelta(minutes=10)
    later = T0 + timedelta(minutes=10)
    fired = escalation.apply_escalate(state, tiered_policy(), cmd.Escalate(), later, automatic=True)
    assert fired[0] == Page(action=PageAction.TRIGGER, targets=["U0TIER002"])


def test_declared_at_tier_two_pages_and_invites_as_each_tier_says_then_repeats_tier_two():
    state, effects = start_at(2)
    assert state.escalation_level == 2, "tier 1 fired once, tier 2 once: level 2"
    assert Page(action=PageAction.TRIGGER, targets=["U0TIER002"]) in effects
    assert Invite(users=["U0TIER001"]) in effects, "tier 2 pages without inviting"
    assert state.paged_at == T0
    sev1 = tiered_policy().severity("sev1")
    assert escalation_tier(sev1.escalation, state.escalation_level + 1) == sev1.escalation[1], (
        "its repeat"
    )
    assert deadlines(state, tiered_policy())[Deadline.ESCALATION] == T0 + timedelta(minutes=10)


def test_a_level_beyond_the_last_tier_notifies_every_tier_at_once_and_nothing_is_left():
    state, effects = start_at(20)
    assert state.escalation_level == 4, "levels count tier 2's repeat it skipped"
    assert Page(action=PageAction.TRIGGER, targets=["U0TIER002", "U0TIER003", "U0TIER001"]) in (
        effects
    )
    assert Invite(users=["U0TIER001", "U0TIER003"]) in effects
    assert Deadline.ESCALATION not in deadlines(state, tiered_policy())
    assert [e.kind for e in state.timeline] == ["declared", "escalated"]


def test_a_drill_declared_past_paging_tiers_skips_the_page_and_says_so():
    state, effects = start_at(3, drill=True)
    assert not [e for e in effects if isinstance(e, Page)]
    assert state.paged_at is None
    assert "page-skipped" in [e.kind for e in state.timeline]


def test_an_escalation_level_past_what_any_policy_holds_is_refused_naming_the_field():
    with pytest.raises(ValueError, match="escalation_level"):
        Declaration(title="x", severity="sev1", escalation_level=21)

"""Properties of the pure domain, over many generated cases: state machine, deadlines, names.

The state machine is driven the way the workflow drives it: commands go through their
``check_*`` (the Update validator) and then ``apply_*``; time moves on and whatever deadline
is due fires. Invariants hold after every step.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from workflows.effects import Post
from workflows.escalation import tiers as escalation
from workflows.escalation.deadlines import Deadline, deadlines, escalation_tier
from workflows.escalation.tiers import fire
from workflows.lifecycle import commands as cmd
from workflows.lifecycle import states
from workflows.lifecycle.notices import CommandRefused
from workflows.models import Declaration, IncidentState, Role, Status
from workflows.policy import Policy, default_policy, parse_duration
from workflows.text import MAX_CHANNEL_NAME, channel_name, with_suffix

T0 = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
PEOPLE = ["U0ALICE01", "U0BOB0002", "U0CAROL03"]
CHANNEL_NAME = re.compile(r"^[a-z0-9_-]{1,80}$")


def seconds_policy() -> Policy:
    """The default policy on a seconds scale, with a zero-delay tier to stress the loop."""
    policy = default_policy().model_dump()
    for sev in policy["severities"].values():
        sev["update_every"] = 30
        sev["escalation"] = [{"after": 0}, {"after": 20, "repeat": 2}]
        sev["retrospective"] = {"required": True, "after": 60}
        sev["archive_after"] = 120
    return Policy.model_validate(policy)


POLICY = seconds_policy()
MAX_FIRES_AT_ONE_INSTANT = 10
people = st.sampled_from(PEOPLE)
# Updates need visible text (the models refuse blank ones); anything else people type goes.
words = st.text(min_size=1, max_size=40).filter(lambda t: t.strip() and t.isprintable())


class IncidentLifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        declaration = Declaration(title="Checkout failing", severity="sev1")
        self.now = T0
        self.state, effects = states.start(1, "incident-1", declaration, POLICY, T0)
        self.keys = {e.key for e in effects if isinstance(e, Post)}
        self.had_commander = False
        self.last_escalation = T0

    def _command(self, check: object, apply: object, command: cmd.Command) -> None:
        before = self.state.model_dump()
        try:
            check(self.state, POLICY, command)  # type: ignore[operator]
        except CommandRefused:
            assert self.state.model_dump() == before, "a refused command changed the state"
            return
        status = self.state.status
        effects = apply(self.state, POLICY, command, self.now)  # type: ignore[operator]
        self._record(effects)
        after = self.state.status
        reopened = status is Status.RESOLVED and isinstance(command, cmd.Reopen)
        assert after is status or after.rank > status.rank or reopened, f"{status} -> {after}"
        if isinstance(command, cmd.Escalate):
            self.last_escalation = self.now

    def _record(self, effects: Sequence[object]) -> None:
        for post in (e for e in effects if isinstance(e, Post)):
            assert post.key not in self.keys, f"notice key {post.key} used twice"
            self.keys.add(post.key)

    @precondition(lambda self: self.state.archived_at is None)
    @rule(seconds=st.integers(min_value=0, max_value=200))
    def time_passes(self, seconds: int) -> None:
        """The deadline loop: wake at the earliest deadline, fire what is due, repeat."""
        target = self.now + timedelta(seconds=seconds)
        while self.state.archived_at is None:
            due = deadlines(self.state, POLICY)
            earliest = min(due.values(), default=None)
            if earliest is None or earliest > target:
                break
            self.now = max(self.now, earliest)
            for _ in range(MAX_FIRES_AT_ONE_INSTANT):
                ready = [d for d, at in deadlines(self.state, POLICY).items() if at <= self.now]
                if not ready:
                    break
                for deadline in ready:
                    if deadline is Deadline.ESCALATION:
                        self._tier_waited_its_turn()
                    self._record(fire(self.state, POLICY, deadline, self.now))
            else:
                raise AssertionError("deadlines stay due at one instant: the loop would spin")
        self.now = max(self.now, target)

    def _tier_waited_its_turn(self) -> None:
        severity = POLICY.severity(self.state.severity)
        tier = escalation_tier(severity.escalation, self.state.escalation_level + 1)
        assert tier is not None
        assert self.now - self.last_escalation >= tier.after, "a tier fired before its time"
        self.last_escalation = self.now

    @precondition(lambda self: self.state.archived_at is None)
    @rule(by=people)
    def acknowledge(self, by: str) -> None:
        self._command(states.check_acknowledge, states.apply_acknowledge, cmd.Acknowledge(by=by))

    @precondition(lambda self: self.state.archived_at is None)
    @rule(status=st.sampled_from(list(Status)), message=st.text(max_size=20))
    def set_status(self, status: Status, message: str) -> None:
        command = cmd.SetStatus(status=status, message=message)
        self._command(states.check_set_status, states.apply_set_status, command)

    @precondition(lambda self: self.state.archived_at is None)
    @rule(message=words)
    def post_update(self, message: str) -> None:
        command = cmd.PostUpdate(message=message)
        self._command(states.check_post_update, states.apply_post_update, command)

    @precondition(lambda self: self.state.archived_at is None)
    @rule(severity=st.sampled_from(["sev1", "sev2", "sev3"]))
    def set_severity(self, severity: str) -> None:
        command = cmd.SetSeverity(severity=severity)
        self._command(states.check_set_severity, states.apply_set_severity, command)

    @precondition(lambda self: self.state.archived_at is None)
    @rule(role=st.sampled_from(list(Role)), user=people)
    def assign_role(self, role: Role, user: str) -> None:
        command = cmd.AssignRole(role=role, user=user)
        self._command(states.check_assign_role, states.apply_assign_role, command)

    @precondition(lambda self: self.state.archived_at is None)
    @rule(reason=st.text(max_size=20))
    def escalate(self, reason: str) -> None:
        command = cmd.Escalate(reason=reason)
        self._command(escalation.check_escalate, escalation.apply_escalate, command)

    @precondition(lambda self: self.state.archived_at is None)
    @rule(message=st.text(max_size=20))
    def resolve(self, message: str) -> None:
        command = cmd.Resolve(message=message)
        self._command(states.check_resolve, states.apply_resolve, command)

    @precondition(lambda self: self.state.archived_at is None)
    @rule(reason=st.text(max_size=20))
    def reopen(self, reason: str) -> None:
        command = cmd.Reopen(reason=reason)
        self._command(states.check_reopen, states.apply_reopen, command)

    @rule()
    def continue_as_new(self) -> None:
        """The state survives the trip through history that continue-as-new makes, exactly."""
        carried = IncidentState.model_validate_json(self.state.model_dump_json())
        assert carried == self.state
        self.state = carried

    @invariant()
    def statuses_only_move_forward_or_reopen(self) -> None:
        entered = self.state.status_entered_at
        assert self.state.status in entered
        # The status entered last is the current one: nothing moved it back behind our back.
        assert entered[self.state.status] == max(entered.values())

    @invariant()
    def resolved_exactly_when_resolved_at_is_set(self) -> None:
        assert (self.state.status is Status.RESOLVED) == (self.state.resolved_at is not None)

    @invariant()
    def a_commander_once_named_stays_named(self) -> None:
        if self.state.roles.commander:
            self.had_commander = True
        assert self.state.roles.commander or not self.had_commander

    @invariant()
    def escalation_waits_for_nobody_once_acknowledged_or_resolved(self) -> None:
        due = deadlines(self.state, POLICY)
        if self.state.acknowledged_at or self.state.status is Status.RESOLVED:
            assert Deadline.ESCALATION not in due

    @invariant()
    def the_timeline_is_in_order(self) -> None:
        times = [entry.at for entry in self.state.timeline]
        assert times == sorted(times)

    @invariant()
    def the_shown_update_deadline_is_the_real_one(self) -> None:
        assert self.state.next_update_due == deadlines(self.state, POLICY).get(Deadline.UPDATE)


TestIncidentLifecycle = IncidentLifecycle.TestCase
TestIncidentLifecycle.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)


@given(
    title=st.text(max_size=300),
    number=st.integers(min_value=1, max_value=10**9),
    template=st.sampled_from(
        ["inc-{yymmdd}-{slug}", "{severity}-{number}-{slug}", "incident-{number}", "{slug}"]
    ),
    attempt=st.integers(min_value=1, max_value=50),
)
def test_channel_names_are_always_valid_slack_names(
    title: str, number: int, template: str, attempt: int
) -> None:
    name = channel_name(template, title=title, number=number, severity="sev1", at=T0)
    assert CHANNEL_NAME.match(name), name
    assert len(with_suffix(name, attempt)) <= MAX_CHANNEL_NAME


@given(
    amount=st.integers(min_value=0, max_value=10**6),
    unit=st.sampled_from(["", "s", "m", "h", "d", "w"]),
)
def test_durations_read_as_the_seconds_they_say(amount: int, unit: str) -> None:
    scale = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit]
    assert parse_duration(f"{amount}{unit}") == timedelta(seconds=amount * scale)

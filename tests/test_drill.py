"""Drills run on a compressed clock: every duration of the policy, however deep, scales."""

from __future__ import annotations

from datetime import timedelta

from workflows import drill
from workflows.naming import MAX_CHANNEL_NAME
from workflows.policy import default_policy


def test_every_duration_of_the_policy_is_compressed() -> None:
    policy = default_policy()
    fast = drill.compress(policy, 0.1)
    sev1, fast_sev1 = policy.severity("sev1"), fast.severity("sev1")
    assert fast_sev1.update_every == timedelta(seconds=90)
    assert [t.after for t in fast_sev1.escalation] == [timedelta(seconds=30), timedelta(minutes=1)]
    assert fast_sev1.retrospective.after == sev1.retrospective.after / 10
    assert fast.severity("sev3").archive_after == timedelta(hours=7.2)
    assert fast_sev1.description == sev1.description
    assert fast_sev1.escalation[1].repeat == sev1.escalation[1].repeat
    assert policy.severity("sev1").update_every == timedelta(minutes=15), "the original is kept"


def test_a_drill_channel_is_named_as_one_within_slacks_limit() -> None:
    name = "inc-261124-" + "x" * 66
    marked = drill.channel_name(name, MAX_CHANNEL_NAME - 3)
    assert marked.startswith("drill-inc-261124-")
    assert len(marked) <= MAX_CHANNEL_NAME - 3

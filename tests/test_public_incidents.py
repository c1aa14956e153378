"""Public incidents, pure: what a public update changes, what resolution adds, what is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from starter.command_words import Malformed
from starter.slack.commands import parse
from workflows import statuspage
from workflows.effects import Audience, Notice, Post, PublishStatus
from workflows.lifecycle import commands as cmd
from workflows.lifecycle import states
from workflows.lifecycle.notices import CommandRefused
from workflows.models import Declaration, Impact, IncidentState, Status
from workflows.policy import ComponentPolicy, default_policy

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
POLICY = default_policy().model_copy(
    update={"components": {n: ComponentPolicy(group="Shop") for n in ("checkout", "search")}}
)


def declared() -> IncidentState:
    declaration = Declaration(
        title="Checkout fails", severity="sev2", impact=Impact.MINOR, components=["checkout"]
    )
    state, _ = states.start(7, "incident-7", declaration, POLICY, T0)
    return state


def test_the_first_public_update_makes_the_incident_public_with_its_components_and_impact():
    state = declared()
    command = cmd.PostPublicUpdate(message="Some payments fail", by="U0ALICE01")
    effects = statuspage.apply_post_public_update(state, POLICY, command, T0)
    assert state.public is not None
    assert (state.public.components, state.public.impact) == (["checkout"], Impact.MINOR)
    assert [u.status for u in state.public.updates] == [Status.INVESTIGATING]
    post, publish = effects
    assert isinstance(post, Post) and post.notice is Notice.PUBLIC_UPDATE
    assert post.audience == [Audience.CHANNEL] and "Some payments fail" in post.text
    assert isinstance(publish, PublishStatus)
    seen = statuspage.public_incident(state)
    assert seen.status is Status.INVESTIGATING and seen.resolved_at is None


def test_overrides_change_the_public_side_only():
    state = declared()
    command = cmd.PostPublicUpdate(
        message="Worse", status=Status.IDENTIFIED, impact=Impact.CRITICAL, components=["search"]
    )
    statuspage.apply_post_public_update(state, POLICY, command, T0)
    seen = statuspage.public_incident(state)
    assert (seen.impact, seen.components, seen.status) == (
        Impact.CRITICAL,
        ["search"],
        Status.IDENTIFIED,
    )
    assert state.impact is Impact.MINOR and state.status is Status.INVESTIGATING


def test_resolution_and_reopening_are_published_without_anyone_asking():
    state = declared()
    assert statuspage.follow_resolution(state, T0) == []  # not public: nothing
    statuspage.apply_post_public_update(state, POLICY, cmd.PostPublicUpdate(message="On it"), T0)
    states.apply_set_status(state, POLICY, cmd.SetStatus(status=Status.IDENTIFIED), T0)
    assert statuspage.follow_resolution(state, T0) == []  # internal status: the comms lead says
    later = T0 + timedelta(hours=1)
    states.apply_resolve(state, POLICY, cmd.Resolve(), later)
    assert statuspage.follow_resolution(state, later) == [PublishStatus()]
    assert statuspage.follow_resolution(state, later) == []  # once
    seen = statuspage.public_incident(state)
    assert seen.status is Status.RESOLVED and seen.resolved_at == later
    states.apply_reopen(state, POLICY, cmd.Reopen(), later)
    assert statuspage.follow_resolution(state, later) == [PublishStatus()]
    assert statuspage.public_incident(state).status is Status.INVESTIGATING


def test_unknown_components_and_too_many_updates_are_refused():
    state = declared()
    with pytest.raises(CommandRefused, match="unknown components nowhere"):
        statuspage.check_post_public_update(
            state, POLICY, cmd.PostPublicUpdate(message="x", components=["nowhere"])
        )
    for _ in range(statuspage.MAX_PUBLIC_UPDATES):
        statuspage.apply_post_public_update(state, POLICY, cmd.PostPublicUpdate(message="x"), T0)
    with pytest.raises(CommandRefused, match="public updates already"):
        statuspage.check_post_public_update(state, POLICY, cmd.PostPublicUpdate(message="x"))


def test_a_drill_never_goes_public():
    state = declared().model_copy(update={"drill": True})
    with pytest.raises(CommandRefused, match="drill"):
        statuspage.check_post_public_update(state, POLICY, cmd.PostPublicUpdate(message="x"))


def test_slack_public_takes_the_message_and_an_incident_outside_its_channel():
    asked = parse("public Payments fail for some", True, ["sev1"])
    assert (asked.model, asked.fields) == (
        cmd.PostPublicUpdate,
        {"message": "Payments fail for some"},
    )
    asked = parse("public 42 Payments fail", False, ["sev1"])
    assert (asked.incident, asked.fields) == ("incident-42", {"message": "Payments fail"})
    with pytest.raises(Malformed, match="public <message>"):
        parse("public", True, ["sev1"])

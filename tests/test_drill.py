"""Drills run on a compressed clock: every duration of the policy, however deep, scales."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from clients import messages
from clients.outbound import pagerduty_event, webhook_event
from starter.intake import policy_for
from workflows import policy as drill
from workflows.effects import Audience, Invite, Notice, Page, PageAction, Post, SendPage
from workflows.escalation import tiers
from workflows.lifecycle import channel, states, visibility
from workflows.lifecycle import commands as cmd
from workflows.lifecycle.visibility import memo_of
from workflows.models import Declaration, IncidentState
from workflows.policy import DrillPolicy, EscalationTier, Policy, default_policy
from workflows.resolution import report
from workflows.resolution.metrics import aggregate, record_of
from workflows.text import MAX_CHANNEL_NAME, drill_channel_name

MINUTE = timedelta(minutes=1)


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
    marked = drill_channel_name(name, MAX_CHANNEL_NAME - 3)
    assert marked.startswith("drill-inc-261124-")
    assert len(marked) <= MAX_CHANNEL_NAME - 3


# -- a declared drill, without a server ------------------------------------------------------

T0 = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
POLICY = default_policy()


def declared(policy: Policy = POLICY, **fields: object) -> IncidentState:
    declaration = Declaration.model_validate(
        {"title": "Checkout <failing> & slow", "severity": "sev1", "commander": "U0ALICE01"}
        | fields
    )
    state, _ = states.start(7, "incident-7", declaration, policy, T0)
    return state


def test_a_drill_is_declared_with_the_policy_on_its_compressed_clock() -> None:
    drill_declaration = Declaration(title="Practice", severity="sev1", drill=True)
    fast = policy_for(POLICY, drill_declaration)
    assert fast.severity("sev1").update_every == timedelta(seconds=90)
    assert fast.drill == POLICY.drill, "the factor itself is no duration"
    real = Declaration(title="Real", severity="sev1")
    assert policy_for(POLICY, real) is POLICY

    state = declared(fast, drill=True)
    assert state.drill
    assert state.next_update_due == T0 + timedelta(seconds=90)
    assert state.timeline[0].text.startswith("Declared DRILL SEV1")


def paging(policy: Policy = POLICY, **drill_options: object) -> Policy:
    paged = policy.model_copy(deep=True)
    paged.severities["sev1"].escalation = [
        EscalationTier(after=60, notify=["U0BOB0002"], page=True)
    ]
    paged.drill = DrillPolicy.model_validate(drill_options)
    return paged


def test_a_drill_escalates_without_paging_and_says_so() -> None:
    policy = paging()
    state = declared(policy, drill=True)
    effects = tiers.apply_escalate(state, policy, cmd.Escalate(), T0, automatic=True)
    assert not [e for e in effects if isinstance(e, Page)]
    assert Invite(users=["U0BOB0002"]) in effects, "people are still asked to join"
    assert state.paged_at is None
    assert [e.kind for e in state.timeline][-2:] == ["page-skipped", "escalated"]
    assert "drill" in state.timeline[-2].text
    later = [
        *states.apply_acknowledge(state, policy, cmd.Acknowledge(), T0),
        *states.apply_resolve(state, policy, cmd.Resolve(), T0),
    ]
    assert not [e for e in later if isinstance(e, Page)]


def test_a_drill_pages_when_its_team_practises_the_pager_too() -> None:
    policy = paging(page=True)
    state = declared(policy, drill=True)
    effects = tiers.apply_escalate(state, policy, cmd.Escalate(), T0, automatic=True)
    assert effects[0] == Page(action=PageAction.TRIGGER, targets=["U0BOB0002"])
    assert "page-skipped" not in [e.kind for e in state.timeline]


def test_a_drill_that_practises_the_pager_says_drill_on_the_page() -> None:
    policy = paging(page=True)
    state = declared(policy, drill=True)
    (page, *_) = tiers.apply_escalate(state, policy, cmd.Escalate(), T0, automatic=True)
    assert isinstance(page, Page)
    sent = SendPage(page=page, brief=channel.incident_brief(state, policy))
    event = pagerduty_event(sent, "R0UTINGKEY", "http://ui/incident-7")
    assert event["payload"]["summary"] == "DRILL INC-7 SEV1: Checkout <failing> & slow"
    assert webhook_event(sent, "http://ui/incident-7")["incident"]["drill"] is True


def test_every_drill_message_and_its_topic_say_drill_and_text_stays_escaped() -> None:
    state = declared(drill=True)
    brief = channel.incident_brief(state, POLICY)
    title = "Checkout &lt;failing&gt; &amp; slow"
    for notice in Notice:
        post = Post(key=f"{notice.value}-1", notice=notice, audience=[Audience.CHANNEL])
        text, blocks = messages.render(post, brief, "http://ui/incident-7")
        assert text.startswith(":construction: DRILL · "), notice
        assert blocks[0]["text"]["text"].startswith(":construction: DRILL · "), notice
    kickoff_text, _ = messages.render(
        Post(key="kickoff", notice=Notice.KICKOFF, audience=[Audience.CHANNEL]), brief, "u"
    )
    assert title in kickoff_text and "<failing>" not in kickoff_text
    topic = messages.topic(brief)
    assert topic.startswith(":construction: DRILL · SEV1") and title in topic
    assert visibility.summary(state) == "DRILL INC-7 SEV1 Checkout <failing> & slow"


def test_a_real_incident_carries_no_drill_marker() -> None:
    state = declared()
    brief = channel.incident_brief(state, POLICY)
    text, _ = messages.render(
        Post(key="kickoff", notice=Notice.KICKOFF, audience=[Audience.CHANNEL]), brief, "u"
    )
    assert "DRILL" not in text and "DRILL" not in messages.topic(brief)
    assert visibility.summary(state) == "INC-7 SEV1 Checkout <failing> & slow"
    assert "drill" not in memo_of(state), "memos of recorded histories stay as they were"
    assert memo_of(declared(drill=True))["drill"] is True


def test_drills_are_archived_but_left_out_of_the_figures() -> None:
    real = declared()
    states.apply_acknowledge(real, POLICY, cmd.Acknowledge(by="U0ALICE01"), T0 + MINUTE * 4)
    states.apply_resolve(real, POLICY, cmd.Resolve(), T0 + MINUTE * 60)
    practice = declared(drill=True, components=["checkout"])
    states.apply_acknowledge(practice, POLICY, cmd.Acknowledge(by="U0BOB0002"), T0 + MINUTE)
    states.apply_resolve(practice, POLICY, cmd.Resolve(), T0 + MINUTE * 2)
    records = [record_of(real, T0 + MINUTE * 90), record_of(practice, T0 + MINUTE * 90)]
    assert [r.drill for r in records] == [False, True]
    figures = aggregate(records)
    assert figures.incidents == 1
    assert figures.mtta_seconds == 4 * 60 and figures.mttr_seconds == 60 * 60
    assert figures.workload == {"U0ALICE01": 1}
    assert figures.recurring_components == {}


def test_a_drills_retrospective_asks_what_it_taught() -> None:
    practice, real = declared(drill=True), declared()
    for state in (practice, real):
        states.apply_resolve(state, POLICY, cmd.Resolve(), T0 + MINUTE)
    drill_draft = report.retrospective_draft(practice, POLICY, T0 + MINUTE * 60)
    assert "## What did this drill teach us?" in drill_draft
    assert "Root cause" not in drill_draft
    assert drill_draft.startswith("# Retrospective: DRILL INC-7")
    real_draft = report.retrospective_draft(real, POLICY, T0 + MINUTE * 60)
    assert "## Root cause and contributing factors" in real_draft
    assert "drill" not in real_draft.lower()

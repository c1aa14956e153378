"""Pure decisions about the incident channel: bookmarks, who stays a responder, what the
kickoff follows, what the outbox keeps. No server needed."""

from __future__ import annotations

from tests.test_lifecycle import declared
from workflows.effects import Audience, Lane, Notice, Post, RefreshTopic, UpdateKickoff, lanes
from workflows.lifecycle import channel as incident_channel
from workflows.lifecycle import opening
from workflows.models import Channel, Link
from workflows.policy import Policy, default_policy


def policy(**extra: object) -> Policy:
    return Policy.model_validate({**default_policy().model_dump(), **extra})


def test_bookmarks_conference_then_runbooks_then_declared_links_without_repeats() -> None:
    state = declared(components=["checkout", "search", "checkout"])
    state.channel = Channel(id="C0INC0001", name="inc-261125-checkout")
    state.links = [
        Link(title="Dashboard", url="https://grafana.example.com/d/1"),
        Link(title="Same runbook", url="https://runbooks.example.com/checkout"),
    ]
    chosen = incident_channel.channel_bookmarks(
        state,
        policy(
            channel={"conference_url": "https://meet.example.com/{channel}-{number}"},
            components={"checkout": {"runbook": "https://runbooks.example.com/checkout"}},
        ),
    )
    assert [(b.title, b.url) for b in chosen] == [
        ("Conference", f"https://meet.example.com/inc-261125-checkout-{state.number}"),
        ("Runbook: checkout", "https://runbooks.example.com/checkout"),
        ("Dashboard", "https://grafana.example.com/d/1"),
    ]
    assert incident_channel.channel_bookmarks(state, default_policy()) == state.links


def test_only_a_person_slack_does_not_know_stops_being_a_responder() -> None:
    state = declared(responders=["U0BOB0002", "U0NOBODY9", "U0CAROL03"])
    note = opening.invite_failed(state, "U0CAROL03", "cant_invite", forget=True)
    assert note == "could not invite <@U0CAROL03>: cant_invite"
    opening.invite_failed(state, "U0NOBODY9", "user_not_found", forget=False)
    assert "U0NOBODY9" in state.responders  # histories recorded before the patch
    opening.invite_failed(state, "U0NOBODY9", "user_not_found", forget=True)
    assert state.responders == ["U0BOB0002", "U0CAROL03"]
    note = opening.invite_failed(state, "@ghost", "user_not_found", forget=True)
    assert note == "could not invite @ghost: user_not_found"


def test_kickoff_follows_what_it_shows_and_the_outbox_keeps_the_newest_edit() -> None:
    def post(notice: Notice) -> Post:
        return Post(key=notice.value, notice=notice, audience=[Audience.CHANNEL])

    assert incident_channel.changes_kickoff([post(Notice.STATUS_CHANGED), RefreshTopic()])
    assert incident_channel.changes_kickoff([post(Notice.ACKNOWLEDGED)])
    assert not incident_channel.changes_kickoff([post(Notice.UPDATE), post(Notice.ESCALATED)])
    first, second = UpdateKickoff(), UpdateKickoff()
    grouped = lanes([first, post(Notice.UPDATE), second])
    assert [effect is second for effect, _ in grouped[Lane.KICKOFF]] == [True]

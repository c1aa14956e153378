"""Alerts of an incident's own group fold into one digest; resolution may mean monitoring; their
new links become bookmarks, once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from starter.api.routes.alerts import AlertmanagerWebhook, GenericAlert
from workflows.alerts.folding import AlertSignal, fold
from workflows.alerts.routing import AlertStatus, ResolvedAlert
from workflows.effects import BookmarkLinks, Notice, Post
from workflows.lifecycle import channel, states
from workflows.lifecycle import commands as cmd
from workflows.models import Declaration, IncidentState, Link, Status
from workflows.policy import default_policy

FIXTURES = Path(__file__).parent / "fixtures" / "alerts"
T0 = datetime(2026, 11, 24, 21, 0, tzinfo=UTC)
POLICY = default_policy()


def signal(status: AlertStatus, on_resolved: ResolvedAlert = ResolvedAlert.NOTE) -> AlertSignal:
    batch = GenericAlert(key="checkout-5xx", title="CheckoutErrorRate", status=status).batch()
    return AlertSignal(batch=batch, on_resolved=on_resolved)


def incident() -> IncidentState:
    declaration = Declaration(title="Checkout failing", severity="sev2", source="alertmanager")
    state, _ = states.start(3, "incident-3", declaration, POLICY, T0)
    return state


def test_a_storm_of_one_group_is_one_running_timeline_entry_and_no_slack_message() -> None:
    state = incident()
    for second in range(1000):
        effects = fold(state, POLICY, signal(AlertStatus.FIRING), T0 + timedelta(seconds=second))
        assert effects == []
    alerts = [e for e in state.timeline if e.kind == "alerts"]
    assert len(alerts) == 2, "a new digest entry only after ten quiet-free minutes"
    assert alerts[-1].text.startswith("Alerts: 1 firing, 0 resolved (1000 notifications)")
    assert state.alerts.firing == 1, "one alert sent 1000 times is one alert"


def test_a_real_alertmanager_group_resent_as_it_grows_counts_each_alert_once() -> None:
    """Alertmanager 0.25's own notifications (tests/record_alertmanager.py): the group sent
    with 3, 10 and 30 firing instances, the 30 again after the repeat interval, then resolved."""
    notifications = json.loads((FIXTURES / "alertmanager_growing_group.json").read_text())
    state = incident()
    digests = []
    for n, notification in enumerate(notifications):
        batch = AlertmanagerWebhook.model_validate(notification).batch()
        fold(state, POLICY, AlertSignal.of(batch, ResolvedAlert.NOTE), T0 + timedelta(seconds=n))
        digests.append(state.timeline[-1].text)
    assert digests[3].startswith("Alerts: 30 firing, 0 resolved (4 notifications)")
    assert digests[4].startswith("Alerts: 0 firing, 30 resolved (5 notifications)")


def test_generic_alerts_are_told_apart_by_their_key_and_labels() -> None:
    state = incident()
    for host in ("web-1", "web-2", "web-1"):
        alert = GenericAlert(key="checkout-5xx", title="CheckoutErrorRate", labels={"host": host})
        fold(state, POLICY, AlertSignal(batch=alert.batch()), T0)
    assert (state.alerts.firing, state.alerts.resolved) == (2, 0)
    again = GenericAlert(
        key="checkout-5xx", title="Checkout", labels={"host": "web-2"}, status=AlertStatus.RESOLVED
    )
    fold(state, POLICY, AlertSignal(batch=again.batch()), T0)
    assert (state.alerts.firing, state.alerts.resolved) == (1, 1), "its latest state counts"


def test_the_group_resolving_is_posted_and_may_move_the_incident_to_monitoring() -> None:
    state = incident()
    effects = fold(state, POLICY, signal(AlertStatus.RESOLVED, ResolvedAlert.MONITORING), T0)
    notices = [e.notice for e in effects if isinstance(e, Post)]
    assert notices == [Notice.ALERTS_RESOLVED, Notice.STATUS_CHANGED]
    assert state.status is Status.MONITORING


def test_resolved_alerts_never_resolve_the_incident_under_a_note_rule() -> None:
    state = incident()
    fold(state, POLICY, signal(AlertStatus.RESOLVED), T0)
    assert state.status is Status.INVESTIGATING


def test_an_incident_already_monitoring_only_hears_that_the_alerts_resolved() -> None:
    state = incident()
    states.apply_set_status(state, POLICY, cmd.SetStatus(status=Status.MONITORING), T0)
    effects = fold(state, POLICY, signal(AlertStatus.RESOLVED, ResolvedAlert.MONITORING), T0)
    assert [e.notice for e in effects if isinstance(e, Post)] == [Notice.ALERTS_RESOLVED]
    assert state.status is Status.MONITORING


def test_a_huge_batch_travels_as_fifty_alerts_and_the_states_of_the_rest() -> None:
    batch = signal(AlertStatus.FIRING).batch
    one = batch.events[0]
    events = [one.model_copy(update={"fingerprint": f"{n:016x}"}) for n in range(1200)]
    trimmed = AlertSignal.of(batch.model_copy(update={"events": events}), ResolvedAlert.NOTE)
    assert len(trimmed.batch.events) == 50 and len(trimmed.others) == 950
    assert trimmed.untold == 200
    state = incident()
    fold(state, POLICY, trimmed, T0)
    assert state.alerts.firing == 1000
    assert "1000 firing, 0 resolved, 200 more not told apart" in state.timeline[-1].text
    assert len(trimmed.model_dump_json()) < 64_000, "a signal stays far below Temporal's limits"


def test_a_repeated_resolved_notification_is_posted_once_until_the_group_fires_again() -> None:
    state = incident()
    posts = []
    for status in (AlertStatus.RESOLVED, AlertStatus.RESOLVED, AlertStatus.FIRING):
        posts.append(len(fold(state, POLICY, signal(status), T0)))
    posts.append(len(fold(state, POLICY, signal(AlertStatus.RESOLVED), T0)))
    assert posts == [1, 0, 0, 1]


def linked(*urls: str) -> AlertSignal:
    links = [Link(title=f"Runbook {n}", url=url) for n, url in enumerate(urls)]
    batch = GenericAlert(key="checkout-5xx", title="CheckoutErrorRate", links=links).batch()
    return AlertSignal(batch=batch)


def test_a_later_notification_s_new_links_are_bookmarked_once() -> None:
    state = incident()
    state.links = [Link(title="Runbook", url="https://runbooks.example.com/checkout")]
    again = linked("https://runbooks.example.com/checkout", "https://dash.example.com/checkout")
    new = channel.alert_links(state, POLICY, again.batch)
    assert [link.url for link in new] == ["https://dash.example.com/checkout"]
    assert channel.bookmark(state, new) == [BookmarkLinks(links=new)]
    assert channel.alert_links(state, POLICY, again.batch) == [], "once, however often sent"
    carried = IncidentState.model_validate_json(state.model_dump_json())  # continue-as-new
    assert channel.alert_links(carried, POLICY, again.batch) == []


def test_alert_links_stop_where_the_channel_s_bookmarks_would_pass_their_limit() -> None:
    state = incident()
    for start in range(0, 60, 10):
        storm = linked(*(f"https://dash.example.com/{n}" for n in range(start, start + 10)))
        channel.bookmark(state, channel.alert_links(state, POLICY, storm.batch))
    assert len(state.links) == channel.MAX_BOOKMARKS
    assert len(channel.channel_bookmarks(state, POLICY)) == channel.MAX_BOOKMARKS

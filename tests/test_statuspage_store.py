"""The status page's database on SQLite: subscriptions bounded, deliveries recorded once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from clients import statuspage_store
from clients.archive import IncidentArchive
from clients.statuspage_store import StatusPageStore, Subscribed
from tests.support import upgrade_database
from workflows.models import Impact, Status
from workflows.statuspage import PublicIncident

NOW = datetime.now(UTC)


@pytest.fixture
def store(tmp_path: Path) -> StatusPageStore:
    archive = IncidentArchive(f"sqlite:///{tmp_path}/incidents.db")
    upgrade_database(f"sqlite:///{tmp_path}/incidents.db")
    upgrade_database(f"sqlite:///{tmp_path}/incidents.db")  # idempotent
    return StatusPageStore(archive.engine)


def test_one_pending_confirmation_per_address_and_a_cap_on_all_of_them(store, monkeypatch):
    outcome, token = store.subscribe("email", "a@example.com", [])
    assert outcome is Subscribed.NEW and len(token) > 20
    assert store.subscribe("email", "a@example.com", []) == (Subscribed.PENDING, "")
    assert store.confirm("nope-" * 5) is None
    confirmed = store.confirm(token)
    assert confirmed is not None and confirmed.confirmed_at is not None
    assert store.subscribe("email", "a@example.com", []) == (Subscribed.CONFIRMED, "")
    monkeypatch.setattr(statuspage_store, "MAX_PENDING", 1)
    assert store.subscribe("email", "b@example.com", [])[0] is Subscribed.NEW
    assert store.subscribe("email", "c@example.com", [])[0] is Subscribed.FULL
    assert store.unsubscribe(token) and not store.unsubscribe(token)
    assert [s.address for s in store.confirmed()] == []


def test_a_delivery_is_recorded_once_and_per_incident(store):
    store.record_delivery(1, "incident-1/1")
    store.record_delivery(1, "incident-1/1")  # a retried attempt: no error, no second row
    store.record_delivery(1, "incident-12/1")
    assert store.delivered("incident-1") == {(1, "incident-1/1")}


def test_open_incidents_stay_and_resolved_ones_leave_after_the_history(store):
    def incident(number: int, status: Status, age: timedelta) -> PublicIncident:
        return PublicIncident(
            id=f"incident-{number}",
            number=number,
            title="t",
            impact=Impact.MINOR,
            status=status,
            declared_at=NOW - age,
        )

    store.publish(incident(1, Status.INVESTIGATING, timedelta(days=200)))
    store.publish(incident(2, Status.RESOLVED, timedelta(days=200)))
    store.publish(incident(3, Status.RESOLVED, timedelta(days=2)))
    store.publish(incident(3, Status.RESOLVED, timedelta(days=2)))  # an upsert
    ids = sorted(i.id for i in store.incidents(NOW - timedelta(days=90)))
    assert ids == ["incident-1", "incident-3"]
    store.set_maintenance("Billing", True)
    store.set_maintenance("API", True)
    store.set_maintenance("API", False)
    assert store.maintenance() == {"Billing"}


def test_an_expired_confirmation_neither_confirms_nor_counts(store, monkeypatch):
    _, token = store.subscribe("email", "late@example.com", [])
    monkeypatch.setattr(statuspage_store, "CONFIRMATION_PENDING", timedelta(0))
    assert store.confirm(token) is None
    monkeypatch.setattr(statuspage_store, "MAX_PENDING", 1)
    outcome, fresh = store.subscribe("email", "late@example.com", [])
    assert outcome is Subscribed.NEW and fresh != token


def test_a_component_put_under_maintenance_by_many_at_once_is_one_row(store):
    """Operators (or a retrying client) at the same moment: no write fails, one row each."""
    names = [f"component-{n}" for n in range(10)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        done = [
            pool.submit(store.set_maintenance, name, flag) for name in names for flag in (1, 0) * 4
        ]
        for future in done:
            future.result()  # an IntegrityError from a lost race would surface here
    store.set_maintenance("component-0", True)
    assert "component-0" in store.maintenance()

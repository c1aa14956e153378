"""The token store and the audit log on both databases they run on: SQLite and PostgreSQL (the
latter started as tests/test_archive_postgres.py does, or INCIDENT_TEST_POSTGRES_URL; skipped
when neither)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine

from clients.archive import IncidentArchive
from clients.tokens import (
    MAX_LIVE,
    PERSONAL,
    AuditEvent,
    AuditKind,
    AuditLog,
    Scope,
    TokenStore,
    TooManyTokens,
    made_event,
)
from tests.support import upgrade_database
from tests.test_archive_postgres import postgres_url  # noqa: F401  (a fixture)

HOUR = timedelta(hours=1)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> TokenStore:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/tokens.db"
    else:
        url = request.getfixturevalue("postgres_url")
    upgrade_database(url)
    return TokenStore(IncidentArchive(url).engine)


def test_a_token_is_found_by_its_secret_until_revoked(store: TokenStore):
    made, secret = store.issue("U0BOB0002", PERSONAL, HOUR, "service-1")
    assert secret.startswith("inc_") and len(secret) > 40
    found = store.holder(secret)
    assert found is not None and found.id == made.id and found.user == "U0BOB0002"
    assert found.scopes == {Scope.READ, Scope.WRITE}
    assert found.expires_at - datetime.now(UTC) > HOUR - timedelta(minutes=1)
    assert store.holder(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
    assert store.holder("inc_" + "x" * 200) is None
    revoked = store.revoke(made.id)
    assert revoked is not None and revoked.revoked_at is not None
    assert store.holder(secret) is None
    assert store.revoke(made.id) == revoked, "revoking again keeps the first time"
    assert store.revoke("tok_nothing") is None


def test_an_expired_token_is_found_no_more_but_still_listed(store: TokenStore):
    made, secret = store.issue("U0CAROL03", frozenset({Scope.READ}), -HOUR, "service-1")
    assert store.holder(secret) is None
    assert made.id in {t.id for t in store.listed("U0CAROL03")}


def test_a_person_holds_a_bounded_number_of_live_tokens(store: TokenStore):
    made = [store.issue("U0DAVE004", PERSONAL, HOUR, "service-1")[0] for _ in range(MAX_LIVE)]
    with pytest.raises(TooManyTokens, match="revoke one first"):
        store.issue("U0DAVE004", PERSONAL, HOUR, "service-1")
    store.revoke(made[0].id)
    store.issue("U0DAVE004", PERSONAL, HOUR, "service-1")
    assert len(store.listed("U0DAVE004", limit=1000)) == MAX_LIVE + 1


def test_the_audit_log_keeps_events_newest_first_cut_to_size_and_paged(store: TokenStore):
    audit = AuditLog(lambda: store.engine)
    since = datetime.now(UTC)
    made, _ = store.issue("U0ERIN005", PERSONAL, HOUR, "service-1")
    audit.record([made_event(made, None, "service-1", "api")])
    refused = AuditEvent(AuditKind.REFUSED, "U0BOB0002", made.id, "cli", "POST /x", "no " * 400)
    audit.record([refused, AuditEvent(AuditKind.PRIVATE_READ, None, "service-1", "api", "i-1")])
    newest = audit.listed(since=since)
    assert [e.kind for e in newest[:3]] == [
        AuditKind.PRIVATE_READ,
        AuditKind.REFUSED,
        AuditKind.TOKEN_CREATED,
    ]
    assert newest[1].detail == ("no " * 400)[:500] and newest[1].person == "U0BOB0002"
    assert newest[2].subject == made.id and newest[2].detail.startswith("for U0ERIN005: read")
    assert newest[0].at is not None and newest[0].at >= since - timedelta(seconds=1)
    (only,) = audit.listed(AuditKind.REFUSED, since=since)
    assert only.id == newest[1].id
    assert [e.id for e in audit.listed(since=since, before=newest[0].id, limit=1)] == [newest[1].id]
    in_paris = (datetime.now(UTC) + HOUR).astimezone(timezone(timedelta(hours=1)))
    assert audit.listed(since=in_paris) == [], "since compares instants, whatever the zone"


def test_an_audit_log_that_cannot_be_opened_or_written_raises_nothing(tmp_path: Path):
    unmigrated = IncidentArchive(f"sqlite:///{tmp_path}/empty.db").engine

    def unopenable() -> Engine:
        raise PermissionError("no archive here")

    event = AuditEvent(AuditKind.REFUSED, None, "service-1", "api", "x")
    for engine in (lambda: unmigrated, unopenable):
        AuditLog(engine).record([event])

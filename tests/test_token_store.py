"""The token store on both databases it runs on: SQLite and PostgreSQL (the latter started as
tests/test_archive_postgres.py does, or INCIDENT_TEST_POSTGRES_URL; skipped when neither)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from clients.archive import IncidentArchive
from clients.tokens import MAX_LIVE, PERSONAL, Scope, TokenStore, TooManyTokens
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

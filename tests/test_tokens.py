"""Verified identity: personal tokens made, listed and revoked over the API, kept hashed, expiring
and refused at once when revoked; scopes; a personal token acting as its person only; a
service token acting as itself; `/incident token` in Slack and `incident login` in the CLI.
Real parts: the session's worker and sqlite archive, the API over ASGI and HTTP, the emulator."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from config import Settings
from localslack import SlackEmulator
from starter.api.app import create_app
from starter.desk import IncidentDesk
from tests.support import eventually, serve_http, serve_slack_app

SERVICE = "test-token-tokens"
AS_SERVICE = {"Authorization": f"Bearer {SERVICE}"}
ALICE, BOB, CAROL = "U0ALICE01", "U0BOB0002", "U0CAROL03"
INCIDENT = os.path.join(sys.prefix, "bin", "incident")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
async def api(settings: Settings, desk: IncidentDesk) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update={"api_tokens": f"other,{SERVICE}"}), desk=desk)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api", timeout=60) as http:
        yield http


async def made(api: httpx.AsyncClient, user: str = "@bob", **body: Any) -> dict[str, Any]:
    response = await api.post("/tokens", json={"user": user, **body}, headers=AS_SERVICE)
    assert response.status_code == 201, response.text
    token: dict[str, Any] = response.json()
    return token


async def declared(api: httpx.AsyncClient) -> dict[str, Any]:
    body = {"title": f"Tokens {uuid.uuid4().hex[:8]}", "severity": "sev3", "by": ALICE}
    response = await api.post("/incidents", json=body, headers=AS_SERVICE)
    assert response.status_code == 202, response.text
    incident: dict[str, Any] = response.json()
    return incident


async def test_an_admin_makes_lists_and_revokes_a_personal_token(api):
    before = datetime.now(UTC)
    token = await made(api, "@bob", scopes=["read", "write"], expires_in=3600)
    assert set(token) == {"id", "token", "user", "scopes", "expires_at"}
    assert isinstance(token["id"], str) and token["token"].startswith("inc_")
    assert token["user"] == BOB and token["scopes"] == ["read", "write"]
    expires = datetime.fromisoformat(token["expires_at"])
    assert before + timedelta(seconds=3590) < expires < before + timedelta(seconds=3700)

    listed = await api.get("/tokens", params={"user": BOB}, headers=AS_SERVICE)
    assert listed.status_code == 200
    assert token["token"] not in listed.text, "a listing never shows a secret"
    (mine,) = [t for t in listed.json()["tokens"] if t["id"] == token["id"]]
    assert mine["revoked_at"] is None and mine["created_by"] == "service-2"

    current = await api.get("/tokens/current", headers=bearer(token["token"]))
    assert current.json() == {"token": token["id"], "user": BOB, "scopes": ["read", "write"]}

    revoked = await api.delete(f"/tokens/{token['id']}", headers=AS_SERVICE)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    refused = await api.get("/tokens/current", headers=bearer(token["token"]))
    assert refused.status_code == 401, "a revoked token is refused from the next request on"
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    gone = await api.delete("/tokens/tok_0000000000000000", headers=AS_SERVICE)
    assert gone.status_code == 404


async def test_the_database_holds_only_the_hash_of_a_token(api, settings):
    token = await made(api, "@carol")
    engine = create_engine(settings.database_url.get_secret_value())
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM api_tokens")).all()
    stored = [str(value) for row in rows for value in row]
    assert not any(token["token"] in value for value in stored)
    assert not any(token["token"].removeprefix("inc_") in value for value in stored)
    assert hashlib.sha256(token["token"].encode()).hexdigest() in stored


async def test_an_expired_token_is_refused(api):
    token = await made(api, "@bob", expires_in=1)
    assert (await api.get("/incidents", headers=bearer(token["token"]))).status_code == 200
    await asyncio.sleep(1.2)
    expired = await api.get("/incidents", headers=bearer(token["token"]))
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]


async def test_lifetimes_and_scopes_out_of_bounds_are_refused(api):
    body: dict[str, Any]
    for body in (
        {"expires_in": 0},
        {"expires_in": 367 * 86400},
        {"scopes": []},
        {"scopes": ["root"]},
    ):
        response = await api.post("/tokens", json={"user": BOB, **body}, headers=AS_SERVICE)
        assert response.status_code == 422, body
    unknown = await api.post("/tokens", json={"user": "@mallory"}, headers=AS_SERVICE)
    assert unknown.status_code == 422 and "mallory" in unknown.text


async def test_a_read_only_token_changes_nothing(api):
    incident = await declared(api)
    reader = await made(api, "@bob", scopes=["read"])
    as_reader = bearer(reader["token"])
    assert (await api.get(f"/incidents/{incident['id']}", headers=as_reader)).status_code == 200
    for path in (f"/incidents/{incident['id']}/acknowledge", "/incidents", "/tokens"):
        refused = await api.post(path, json={"title": "x", "severity": "sev3"}, headers=as_reader)
        assert refused.status_code == 403, path
        assert refused.json()["detail"] == "this needs the write scope; this token has read"
    shown = await api.get(f"/incidents/{incident['id']}", headers=AS_SERVICE)
    assert shown.json()["acknowledged_at"] is None


async def test_a_personal_token_acts_as_its_person_only(api):
    incident = await declared(api)
    bob = bearer((await made(api, "@bob"))["token"])
    path = f"/incidents/{incident['id']}"
    for by in (ALICE, "@alice", "carol@example.com"):
        refused = await api.post(f"{path}/acknowledge", json={"by": by}, headers=bob)
        assert refused.status_code == 403, by
        assert "a personal token acts as its person only" in refused.json()["detail"]
    refused_declaration = await api.post(
        "/incidents", json={"title": "As Alice", "severity": "sev3", "by": ALICE}, headers=bob
    )
    assert refused_declaration.status_code == 403

    acked = await api.post(f"{path}/acknowledge", headers=bob)  # no body: Bob acts
    assert acked.status_code == 200, acked.text
    entry = acked.json()["timeline"][-1]
    assert entry["kind"] == "acknowledged" and entry["actor"] == BOB
    assert entry["via"].startswith("tok_")
    update = await api.post(
        f"{path}/updates", json={"message": "looking", "by": "@bob"}, headers=bob
    )
    assert update.status_code == 200 and update.json()["timeline"][-1]["actor"] == BOB

    override = {"user": "@bob", "start": "2026-12-08T09:00Z", "end": "2026-12-08T17:00Z"}
    as_alice = await api.post(
        "/schedules/payments/overrides", json={**override, "by": "@alice"}, headers=bob
    )
    assert as_alice.status_code == 403, "an on-call override's `by` follows the same rule"

    mine = await api.post("/incidents", json={"title": "Bob's", "severity": "sev3"}, headers=bob)
    assert mine.status_code == 202
    first = mine.json()["timeline"][0]
    assert (first["actor"], first["via"]) == (BOB, entry["via"])


async def test_a_service_token_without_by_is_recorded_as_the_token(api):
    incident = await declared(api)
    path = f"/incidents/{incident['id']}"
    assert incident["timeline"][0]["via"] == "service-2"
    acked = await api.post(f"{path}/acknowledge", headers=AS_SERVICE)
    assert acked.status_code == 200, acked.text
    entry = acked.json()["timeline"][-1]
    assert (entry["actor"], entry["via"]) == (None, "service-2")
    for_carol = await api.post(
        f"{path}/updates", json={"message": "hi", "by": CAROL}, headers=AS_SERVICE
    )
    entry = for_carol.json()["timeline"][-1]
    assert (entry["actor"], entry["via"]) == (CAROL, "service-2"), "a service token acts for anyone"
    sent_via = await api.post(
        f"{path}/updates", json={"message": "forged", "via": "tok_forged"}, headers=AS_SERVICE
    )
    assert sent_via.json()["timeline"][-1]["via"] == "service-2", "the API sets via, not the body"


async def test_only_admins_make_and_list_tokens_and_a_person_revokes_their_own(api):
    bob_token = await made(api, "@bob")
    alice_token = await made(api, "@alice")
    bob = bearer(bob_token["token"])
    refused = await api.post("/tokens", json={"user": BOB}, headers=bob)
    assert refused.status_code == 403
    assert refused.json()["detail"] == "this needs the admin scope; this token has read, write"
    assert (await api.get("/tokens", headers=bob)).status_code == 403
    assert (await api.delete(f"/tokens/{alice_token['id']}", headers=bob)).status_code == 403
    assert (await api.delete(f"/tokens/{bob_token['id']}", headers=bob)).status_code == 200
    assert (await api.get("/incidents", headers=bob)).status_code == 401
    admin = await made(api, "@alice", scopes=["admin"])
    listed = await api.get("/tokens", headers=bearer(admin["token"]))
    assert listed.status_code == 200, "admin includes read"


@pytest.fixture(scope="module")
async def slack_api(
    settings: Settings, desk: IncidentDesk, slack: SlackEmulator
) -> AsyncIterator[str]:
    async with serve_slack_app(settings, desk, slack, "tokens-signing-secret") as url:
        yield url


async def test_incident_token_in_slack_answers_the_person_alone_with_their_token(slack_api, slack):
    general = slack.channel_by_name("general")
    assert general is not None
    seen = len(slack.console.replies)
    sent = await slack.console.slash(slack.workspace, CAROL, general.id, "/incident token")
    assert sent.status == 200
    await eventually(lambda: len(slack.console.replies) > seen, timeout=30)
    reply = slack.console.replies[seen]
    assert reply.user == CAROL and reply.response_type == "ephemeral"
    secret = next(w.strip("`") for w in reply.text.split() if w.startswith("`inc_"))
    async with httpx.AsyncClient(base_url=slack_api) as http:
        current = await http.get("/tokens/current", headers=bearer(secret))
    assert current.json()["user"] == CAROL and current.json()["scopes"] == ["read", "write"]
    messages = slack.messages(general.id)
    assert all(secret not in str(m.get("text", "")) for m in messages), "never in the channel"


@pytest.fixture(scope="module")
async def api_url(settings: Settings, desk: IncidentDesk) -> AsyncIterator[str]:
    app = create_app(settings.model_copy(update={"api_tokens": SERVICE}), desk=desk)
    async with serve_http(app) as url:
        yield url


async def incident(*args: str, url: str, home: Path, **env: str) -> tuple[int, str, str]:
    """The console script as a person runs it, with a login file of its own."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("INCIDENT_")}
    environment |= {"INCIDENT_API_URL": url, "XDG_CONFIG_HOME": str(home), "COLUMNS": "200"}
    process = await asyncio.create_subprocess_exec(
        INCIDENT,
        *args,
        env=environment | env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=90)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_cli_refuses_a_persons_command_when_nobody_is_logged_in(api, api_url, tmp_path):
    body = {"title": f"Tokens {uuid.uuid4().hex[:8]}", "severity": "sev3"}  # nobody's
    number = str((await api.post("/incidents", json=body, headers=AS_SERVICE)).json()["number"])
    service = {"INCIDENT_API_TOKEN": SERVICE}
    code, out, err = await incident("ack", number, url=api_url, home=tmp_path, **service)
    assert code == 1 and out == ""
    assert "nobody is logged in" in err and "incident login" in err
    declare = ("declare", "Nobody's", "-s", "sev3")
    code, _, err = await incident(*declare, url=api_url, home=tmp_path, **service)
    assert code == 1 and "nobody is logged in" in err
    shown = await api.get(f"/incidents/incident-{number}", headers=AS_SERVICE)
    assert shown.json()["acknowledged_at"] is None
    code, out, _ = await incident("show", number, url=api_url, home=tmp_path, **service)
    declared_line = next(line for line in out.splitlines() if "declared" in line.split())
    assert code == 0 and "service-2" in declared_line, "declared by nobody: the token is shown"


async def test_incident_login_keeps_a_persons_token_and_acts_as_them(api, api_url, tmp_path):
    token = await made(api, "@dave")
    code, out, err = await incident("login", token["token"], url=api_url, home=tmp_path)
    assert code == 0, err
    assert f"Logged in as U0DAVE004 at {api_url} (token {token['id']}" in out
    login = tmp_path / "incident" / "login.json"
    assert login.stat().st_mode & 0o077 == 0, "the login file is its owner's alone"

    number = str((await declared(api))["number"])
    code, out, err = await incident("ack", number, url=api_url, home=tmp_path)
    assert code == 0, err
    shown = (await api.get(f"/incidents/incident-{number}", headers=AS_SERVICE)).json()
    assert shown["acknowledged_by"] == "U0DAVE004"
    assert (shown["timeline"][-1]["actor"], shown["timeline"][-1]["via"]) == (
        "U0DAVE004",
        token["id"],
    )
    code, out, _ = await incident("whoami", url=api_url, home=tmp_path)
    assert code == 0 and out.startswith(f"U0DAVE004 (token {token['id']}")

    code, out, err = await incident("logout", url=api_url, home=tmp_path)
    assert code == 0 and f"token {token['id']} revoked" in out, err
    assert (await api.get("/incidents", headers=bearer(token["token"]))).status_code == 401


async def test_incident_login_with_a_service_token_makes_a_token_for_the_person(api_url, tmp_path):
    code, out, err = await incident(
        "login", "--user", "@erin", url=api_url, home=tmp_path, INCIDENT_API_TOKENS=SERVICE
    )
    assert code == 0, err
    assert out.startswith(f"Logged in as U0ERIN005 at {api_url} (token tok_")
    code, _, err = await incident("login", SERVICE, url=api_url, home=tmp_path / "other")
    assert code == 1 and "service token" in err

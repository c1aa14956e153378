"""Audit: every accepted command names who acted, the token and where it came in (the API, the
CLI, Slack, an alert source) on the timeline, whatever a body claims; `GET /audit` (admin)
lists tokens made and revoked, refusals and admins' reads of private incidents, a page at a
time, by kind and since; and an audit log that cannot be written fails nothing.
Real parts: the session's worker, dev server, sqlite archive and emulator; the API over ASGI,
over HTTP for the CLI; the CLI as a person runs it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.client import Client

from clients.slack_people import SlackPeople
from config import Settings
from localslack import BOT_TOKEN, SlackEmulator
from starter.api.app import create_app
from starter.desk import IncidentDesk
from tests.conftest import TASK_QUEUE
from tests.support import serve_http, serve_slack_app, until
from tests.test_permissions import permitting
from tests.test_slack_app import Person
from tests.test_tokens import incident as run_cli
from workflows.models import Declaration

SERVICE = "test-token-audit"
AS_SERVICE = {"Authorization": f"Bearer {SERVICE}"}
ALICE, BOB, CAROL = "U0ALICE01", "U0BOB0002", "U0CAROL03"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
async def api(settings: Settings, desk: IncidentDesk) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update={"api_tokens": SERVICE}), desk=desk)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api", timeout=60) as http:
        yield http


async def made(api: httpx.AsyncClient, user: str, **body: Any) -> dict[str, Any]:
    response = await api.post("/tokens", json={"user": user, **body}, headers=AS_SERVICE)
    assert response.status_code == 201, response.text
    token: dict[str, Any] = response.json()
    return token


async def declared(api: httpx.AsyncClient, wait: bool = False, **body: Any) -> dict[str, Any]:
    fields = {"title": f"Audit {uuid.uuid4().hex[:8]}", "severity": "sev3", "by": ALICE, **body}
    query = {"wait": "true"} if wait else {}
    response = await api.post("/incidents", json=fields, params=query, headers=AS_SERVICE)
    assert response.status_code in (201, 202), response.text
    incident: dict[str, Any] = response.json()
    return incident


async def shown(api: httpx.AsyncClient, ref: str) -> dict[str, Any]:
    answer = await api.get(f"/incidents/{ref}", headers=AS_SERVICE)
    assert answer.status_code == 200, answer.text
    incident: dict[str, Any] = answer.json()
    return incident


async def audit(api: httpx.AsyncClient, since: datetime, **query: Any) -> list[dict[str, Any]]:
    """Every event since then, newest first, page after page."""
    events: list[dict[str, Any]] = []
    params: dict[str, Any] = {"since": since.isoformat(), **query}
    while True:
        page = await api.get("/audit", params=params, headers=AS_SERVICE)
        assert page.status_code == 200, page.text
        events += page.json()["events"]
        if page.json()["next_cursor"] is None:
            return events
        params["cursor"] = page.json()["next_cursor"]


# -- the entry point on the timeline ------------------------------------------------------------


async def test_the_api_records_where_each_command_came_in_whatever_the_body_says(api):
    incident = await declared(api, source="slack")
    assert (incident["timeline"][0]["source"], incident["timeline"][0]["via"]) == (
        "api",
        "service-1",
    ), "a body's source is replaced"
    path = f"/incidents/{incident['id']}"
    bob = bearer((await made(api, "@bob"))["token"])
    forged = await api.post(
        f"{path}/updates", json={"message": "hi", "source": "slack"}, headers=bob
    )
    entry = forged.json()["timeline"][-1]
    assert (entry["actor"], entry["source"]) == (BOB, "api")
    from_cli = await api.post(f"{path}/acknowledge", headers={**bob, "Incident-Client": "cli"})
    entry = from_cli.json()["timeline"][-1]
    assert (entry["kind"], entry["actor"], entry["source"]) == ("acknowledged", BOB, "cli")
    assert entry["via"].startswith("tok_")
    odd = await api.post(
        f"{path}/updates", json={"message": "x"}, headers={**bob, "Incident-Client": "slack"}
    )
    assert odd.json()["timeline"][-1]["source"] == "api", "the header names the CLI, nothing else"
    made_up = await api.post(
        f"{path}/updates", json={"message": "x", "source": "root"}, headers=bob
    )
    assert made_up.status_code == 422, "an entry point that is none is refused"


async def test_the_cli_says_it_is_the_cli(api, settings, desk, tmp_path: Path):
    app = create_app(settings.model_copy(update={"api_tokens": SERVICE}), desk=desk)
    token = await made(api, "@dave")
    number = str((await declared(api))["number"])
    async with serve_http(app) as url:
        code, _, err = await run_cli("login", token["token"], url=url, home=tmp_path)
        assert code == 0, err
        code, _, err = await run_cli("ack", number, url=url, home=tmp_path)
        assert code == 0, err
    entry = (await shown(api, f"incident-{number}"))["timeline"][-1]
    assert (entry["actor"], entry["via"], entry["source"]) == ("U0DAVE004", token["id"], "cli")


async def test_an_alert_source_is_the_entry_point_of_what_it_declares_and_folds(api):
    key = f"audit-{uuid.uuid4().hex[:8]}"
    alert = {"key": key, "title": "Disk full", "source": "grafana"}
    first = await api.post("/alerts/generic", json=alert, headers=AS_SERVICE)
    assert first.status_code == 201, first.text
    ref = first.json()["incident"]
    again = await api.post(
        "/alerts/generic", json={**alert, "labels": {"disk": "2"}}, headers=AS_SERVICE
    )
    assert again.status_code == 200, again.text

    def folded(incident: dict[str, Any]) -> bool:
        return len([e for e in incident["timeline"] if e["source"] == "alert:grafana"]) > 1

    assert await until(lambda: shown(api, ref), folded, timeout=30)
    timeline = (await shown(api, ref))["timeline"]
    assert (timeline[0]["kind"], timeline[0]["source"], timeline[0]["via"]) == (
        "declared",
        "alert:grafana",
        None,
    )


async def test_slack_is_the_entry_point_of_what_people_do_in_slack(api, settings, desk, slack):
    incident = await declared(api, wait=True)
    assert incident["channel"] is not None, "the channel exists: a worker runs"
    async with serve_slack_app(settings, desk, slack, "audit-signing-secret"):
        channel = incident["channel"]["id"]
        sent = await slack.console.slash(slack.workspace, CAROL, channel, "/incident ack")
        assert sent.status == 200
        acked = await until(
            lambda: shown(api, incident["id"]), lambda i: i["acknowledged_at"] is not None, 30
        )
    assert acked
    entry = next(
        e for e in (await shown(api, incident["id"]))["timeline"] if e["kind"] == "acknowledged"
    )
    assert (entry["actor"], entry["via"], entry["source"]) == (CAROL, None, "slack")


# -- GET /audit ---------------------------------------------------------------------------------


async def test_tokens_made_and_revoked_are_in_the_audit_log(api):
    since = datetime.now(UTC)
    token = await made(api, "@bob", expires_in=3600)
    from_cli = await api.post(
        "/tokens", json={"user": "@carol"}, headers={**AS_SERVICE, "Incident-Client": "cli"}
    )
    assert from_cli.status_code == 201
    carols = from_cli.json()
    bob = bearer(token["token"])
    assert (await api.delete(f"/tokens/{token['id']}", headers=bob)).status_code == 200

    events = await audit(api, since)
    created = [e for e in events if e["kind"] == "token_created"]
    assert [e["subject"] for e in created] == [carols["id"], token["id"]], "newest first"
    (bobs,) = [e for e in created if e["subject"] == token["id"]]
    until_day = token["expires_at"][:10]
    assert bobs["detail"] == f"for {BOB}: read, write, until {until_day}"
    assert (bobs["person"], bobs["via"], bobs["source"]) == (None, "service-1", "api")
    assert created[0]["source"] == "cli"
    (revoked,) = [e for e in events if e["kind"] == "token_revoked"]
    assert (revoked["subject"], revoked["person"], revoked["via"]) == (
        token["id"],
        BOB,
        token["id"],
    )
    assert token["token"] not in str(events), "never a secret"


async def test_slacks_own_tokens_are_in_the_audit_log(api, settings, desk, slack):
    since = datetime.now(UTC)
    general = slack.channel_by_name("general")
    assert general is not None
    async with serve_slack_app(settings, desk, slack, "audit-signing-secret"):
        sent = await slack.console.slash(slack.workspace, CAROL, general.id, "/incident token")
        assert sent.status == 200
        found = await until(
            lambda: audit(api, since, kind="token_created"), lambda events: bool(events), 30
        )
    assert found
    (event,) = await audit(api, since, kind="token_created")
    assert (event["person"], event["via"], event["source"]) == (CAROL, None, "slack")
    assert event["subject"].startswith("tok_") and event["detail"].startswith(f"for {CAROL}:")


async def test_refusals_are_in_the_audit_log_with_the_rule(api):
    since = datetime.now(UTC)
    incident = await declared(api)
    path = f"/incidents/{incident['id']}"
    reader = await made(api, "@bob", scopes=["read"])
    writer = await made(api, "@carol")
    refused = [
        await api.post(f"{path}/acknowledge", headers=bearer(reader["token"])),
        await api.post(f"{path}/acknowledge", json={"by": ALICE}, headers=bearer(writer["token"])),
        await api.get("/audit", headers=bearer(writer["token"])),
    ]
    assert [r.status_code for r in refused] == [403, 403, 403]
    missing = await api.post(f"{path}/acknowledge")
    assert missing.status_code == 401

    events = await audit(api, since, kind="refused")
    assert [(e["person"], e["via"], e["subject"], e["detail"]) for e in reversed(events)] == [
        (BOB, reader["id"], f"POST {path}/acknowledge", refused[0].json()["detail"]),
        (CAROL, writer["id"], f"POST {path}/acknowledge", refused[1].json()["detail"]),
        (CAROL, writer["id"], "GET /audit", refused[2].json()["detail"]),
    ], "a 401 names nobody and is not audited"
    assert "acts as its person only" in events[1]["detail"]


async def test_refusals_by_the_policys_permissions_are_in_the_audit_log_from_api_and_slack(
    client: Client, settings: Settings, worker: None, slack: SlackEmulator
):
    people = SlackPeople(AsyncWebClient(base_url=slack.base_url, token=BOT_TOKEN))
    policy = permitting(declare=["@incident-leads"], resolve=["role:commander"])
    desk = IncidentDesk(client, TASK_QUEUE, policy, people=people)
    app = create_app(settings.model_copy(update={"api_tokens": SERVICE}), desk=desk)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api", timeout=60) as api:
        since = datetime.now(UTC)
        body = {"title": "Not Bob's to declare", "severity": "sev3", "by": BOB}
        refused = await api.post("/incidents", json=body, headers=AS_SERVICE)
        assert refused.status_code == 403
        (event,) = await audit(api, since, kind="refused")
        assert (event["person"], event["via"]) == (None, "service-1"), "a service token's own"
        assert (event["subject"], event["source"]) == ("POST /incidents", "api")
        assert event["detail"] == "declare needs @incident-leads (policy [permissions] declare)"

        state, _ = await desk.declare(
            Declaration(title="Slack resolve", severity="sev3", commander=ALICE, declared_by=CAROL)
        )
        since = datetime.now(UTC)
        async with serve_slack_app(settings, desk, slack, "audit-signing-secret"):
            reply = await Person(slack, BOB).types(f"/incident resolve {state.number} done")
        (event,) = await audit(api, since, kind="refused")
    assert event["detail"] in reply.text
    assert (event["person"], event["via"], event["source"]) == (BOB, None, "slack")
    assert event["subject"] == f"Resolve {state.id}"


async def test_an_admins_read_of_a_private_incident_is_in_the_audit_log_a_members_is_not(api):
    since = datetime.now(UTC)
    secret = await declared(api, private=True, commander=ALICE)
    ref = secret["id"]
    alice = bearer((await made(api, "@alice"))["token"])
    admin = bearer((await made(api, "@erin", scopes=["admin"]))["token"])
    assert (await api.get(f"/incidents/{ref}", headers=alice)).status_code == 200  # a member
    assert (await api.get(f"/incidents/{ref}", headers=admin)).status_code == 200

    async def listed() -> list[str]:
        page = await api.get("/incidents", params={"page_size": 1000}, headers=admin)
        return [incident["id"] for incident in page.json()["incidents"]]

    assert await until(listed, lambda ids: ref in ids), "listed once visibility has it"
    events = await audit(api, since, kind="private_read")
    mine = [(e["person"], e["detail"]) for e in reversed(events) if e["subject"] == ref]
    assert mine[0] == ("U0ERIN005", f"GET /incidents/{ref}"), "Alice's own read is not there"
    assert set(mine[1:]) == {("U0ERIN005", "GET /incidents")}
    assert secret["title"] not in str(events), "the audit log names a private incident by id"


async def test_the_audit_log_is_paged_and_filtered(api):
    since = datetime.now(UTC)
    ids = []
    for _ in range(3):  # revoked at once: Bob's live tokens are bounded
        ids.append((await made(api, "@bob"))["id"])
        assert (await api.delete(f"/tokens/{ids[-1]}", headers=AS_SERVICE)).status_code == 200
    first = {"since": since.isoformat(), "limit": 2}
    page = (await api.get("/audit", params=first, headers=AS_SERVICE)).json()
    assert [(e["kind"], e["subject"]) for e in page["events"]] == [
        ("token_revoked", ids[2]),
        ("token_created", ids[2]),
    ]
    assert page["next_cursor"]
    every = await audit(api, since, limit=2)
    assert [e["subject"] for e in every] == [i for i in reversed(ids) for _ in (0, 1)]
    assert len({e["id"] for e in every}) == 6, "each once, newest first"
    revoked = await audit(api, since, kind="token_revoked")
    assert [e["subject"] for e in revoked] == ids[::-1]
    assert await audit(api, datetime.now(UTC) + timedelta(minutes=1)) == []
    wrong: list[dict[str, Any]] = [
        {"kind": "everything"},
        {"cursor": "0"},
        {"since": "yesterday"},
        {"limit": 0},
    ]
    for bad in wrong:
        assert (await api.get("/audit", params=bad, headers=AS_SERVICE)).status_code == 422


@pytest.mark.parametrize(
    "archive",
    [
        "sqlite:///{tmp}/unmigrated.db",  # no audit table: every write fails
        "sqlite:////proc/no-archive/incidents.db",  # cannot even be opened
    ],
)
async def test_an_audit_log_that_cannot_be_written_fails_nothing(
    client: Client, settings: Settings, worker: None, tmp_path: Path, capsys, archive: str
):
    policy = permitting(declare=["@incident-leads"])
    desk = IncidentDesk(client, TASK_QUEUE, policy)
    broken = SecretStr(archive.format(tmp=tmp_path))
    changed = {"api_tokens": SERVICE, "database_url": broken}
    app = create_app(settings.model_copy(update=changed), desk=desk)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api", timeout=60) as api:
        refused = await api.post("/incidents", json={"title": "x", "severity": "sev3", "by": BOB})
        assert refused.status_code == 401
        refused = await api.post(
            "/incidents", json={"title": "x", "severity": "sev3", "by": BOB}, headers=AS_SERVICE
        )
        assert refused.status_code == 403, "refused as ever, though not audited"
        assert refused.json()["detail"].startswith("declare needs @incident-leads")
        secret = await declared(api, private=True, by=None)
        read = await api.get(f"/incidents/{secret['id']}", headers=AS_SERVICE)
        assert read.status_code == 200, "an admin's read is answered, though not audited"
    logged = capsys.readouterr().out
    assert logged.count("audit_not_recorded") == 2, logged

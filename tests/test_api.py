"""The HTTP API in front of the real worker: auth, declaring, commands, errors, listing."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from config import Settings
from starter.api.app import create_app
from starter.desk import IncidentDesk
from tests.support import eventually

TOKEN = "test-token-api"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
COMMANDER = "U0ALICE01"


@pytest.fixture(scope="module")
async def api(settings: Settings, desk: IncidentDesk) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update={"api_tokens": f"other,{TOKEN}"}), desk=desk)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api", timeout=60) as http:
        yield http


def title(what: str) -> str:
    """A title (and so a channel name) no other test uses or extends: "API ..." with a suffix."""
    return f"API {what} {uuid.uuid4().hex[:8]}"


async def declare(api: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    body.setdefault("severity", "sev2")
    body.setdefault("commander", COMMANDER)
    response = await api.post("/incidents", params={"wait": "true"}, json=body, headers=AUTH)
    assert response.status_code == 201, response.text
    incident: dict[str, Any] = response.json()
    return incident


async def command(
    api: httpx.AsyncClient, incident: dict[str, Any], action: str, **body: Any
) -> httpx.Response:
    return await api.post(f"/incidents/{incident['id']}/{action}", json=body, headers=AUTH)


async def test_requests_without_a_valid_bearer_token_get_401_with_a_challenge(api):
    missing = await api.get("/incidents")
    wrong = await api.get("/incidents", headers={"Authorization": "Bearer nope"})
    basic = await api.get("/incidents", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    for response in (missing, wrong, basic):
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert "bearer token" in response.json()["detail"]


async def test_healthz_answers_without_a_token_when_temporal_answers(api, client):
    response = await api.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "temporal": "serving"}
    port = client.service_client.config.target_host.rsplit(":", 1)[1]
    assert port not in response.text, "an unauthenticated route must not reveal the address"


async def test_a_huge_body_gets_413_and_a_bad_one_a_422_that_does_not_echo_it(api):
    huge = await api.post(
        "/incidents",
        content=b"{" + b" " * 300_000 + b"}",
        headers={**AUTH, "content-type": "application/json"},
    )
    assert huge.status_code == 413
    assert "limit of 262144 bytes" in huge.json()["detail"]
    bad = await api.post(
        "/incidents", json={"title": "x" * 100_000, "severity": "sev1"}, headers=AUTH
    )
    assert bad.status_code == 422
    assert len(bad.content) < 2_000


async def test_metrics_count_requests_by_route_for_prometheus(api):
    await api.get("/incidents/incident-999999", headers=AUTH)
    scraped = (await api.get("/metrics", headers=AUTH)).text
    assert 'route="/incidents/{incident_id}",status="404"}' in scraped


async def test_declare_with_wait_answers_201_with_the_channel_url_and_location(api, settings):
    name = title("Checkout failing")
    response = await api.post(
        "/incidents?wait=true",
        json={
            "title": name,
            "severity": "sev1",
            "commander": COMMANDER,
            "components": ["checkout"],
            "by": "U0BOB0002",
        },
        headers=AUTH,
    )
    assert response.status_code == 201, response.text
    incident = response.json()
    assert incident["id"] == f"incident-{incident['number']}"
    assert incident["label"] == f"INC-{incident['number']}"
    assert (incident["title"], incident["severity"], incident["status"]) == (
        name,
        "sev1",
        "investigating",
    )
    assert incident["roles"]["commander"] == COMMANDER
    assert incident["components"] == ["checkout"]
    assert incident["channel"]["id"] and incident["channel"]["name"].startswith("inc-")
    assert incident["url"] == settings.incident_url(incident["id"])
    assert incident["timeline"][0]["kind"] == "declared"
    assert incident["timeline"][0]["actor"] == "U0BOB0002"
    assert response.headers["Location"].endswith(f"/incidents/{incident['id']}")
    fetched = await api.get(f"/incidents/INC-{incident['number']}", headers=AUTH)
    assert fetched.status_code == 200
    assert fetched.json()["id"] == incident["id"]


async def test_declare_answers_202_once_durable_and_get_shows_the_channel_later(api):
    response = await api.post(
        "/incidents", json={"title": title("Search down"), "severity": "sev2"}, headers=AUTH
    )
    assert response.status_code == 202, response.text
    incident = response.json()
    assert incident["label"] == f"INC-{incident['number']}"
    assert incident["timeline"][0]["kind"] == "declared"
    location = response.headers["Location"]
    assert location.endswith(f"/incidents/{incident['id']}")
    for _ in range(100):
        fetched = (await api.get(location, headers=AUTH)).json()
        if fetched["channel"]:
            break
        await asyncio.sleep(0.1)
    assert fetched["channel"]["name"].startswith("inc-"), fetched
    assert fetched["number"] == incident["number"]


async def test_declaring_again_with_the_same_key_answers_200_with_the_same_incident(api, key):
    first = await declare(api, title=title("Payments slow"), idempotency_key=key)
    again = await api.post(
        "/incidents",
        params={"wait": "true"},
        json={"title": "Payments slow (again)", "severity": "sev2", "idempotency_key": key},
        headers=AUTH,
    )
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first["id"]
    assert again.json()["channel"] == first["channel"]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"title": "x", "severity": "sev9"}, "severity", "sev1, sev2, sev3"),
        ({"title": "x", "severity": "sev2", "commander": "nobody"}, "commander", "'nobody'"),
        ({"title": "x", "severity": "sev2", "responders": ["zed@x.org"]}, "responders", "zed@"),
        ({"severity": "sev2"}, "title", "required"),
        ({"title": "x", "severity": "sev2", "template": "nope"}, "template", "unknown template"),
    ],
)
async def test_invalid_declarations_get_422_naming_the_field(api, body, field, words):
    response = await api.post("/incidents", json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert any(e["loc"][-1] == field and words in e["msg"] for e in errors), errors


async def test_unknown_and_malformed_incident_ids_get_404(api):
    unknown = await api.get("/incidents/incident-987654", headers=AUTH)
    assert unknown.status_code == 404
    assert "incident-987654" in unknown.json()["detail"]
    malformed = await api.get("/incidents/not-an-id", headers=AUTH)
    assert malformed.status_code == 404
    assert "INC-42" in malformed.json()["detail"]
    command = await api.post("/incidents/987654/acknowledge", headers=AUTH)
    assert command.status_code == 404


async def test_a_transition_the_workflow_refuses_gets_409_with_its_reason(api):
    incident = await declare(api, title=title("Search degraded"))
    moved = await command(api, incident, "status", status="monitoring")
    assert moved.status_code == 200, moved.text
    back = await command(api, incident, "status", status="identified")
    assert back.status_code == 409
    assert "cannot move from monitoring back to identified" in back.json()["detail"]


async def test_unknown_severity_on_a_running_incident_gets_422(api):
    incident = await declare(api, title=title("Queue backlog"))
    response = await command(api, incident, "severity", severity="critical")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "severity"]


async def test_full_lifecycle_from_acknowledge_to_reopen(api):
    incident = await declare(api, title=title("Login errors"), severity="sev1")
    by = "U0CAROL03"

    acked = await api.post(f"/incidents/{incident['id']}/acknowledge", headers=AUTH)
    assert acked.status_code == 200, acked.text
    assert acked.json()["acknowledged_at"] is not None
    again = await command(api, incident, "acknowledge", by=by)
    assert again.status_code == 409 and "already acknowledged" in again.json()["detail"]

    steps: list[tuple[str, dict[str, Any], str]] = [
        ("status", {"status": "identified", "message": "bad deploy"}, "identified"),
        ("updates", {"message": "rolling back"}, "identified"),
        ("severity", {"severity": "sev2", "reason": "workaround exists"}, "identified"),
        ("roles", {"role": "tech_lead", "user": "U0DAVE004"}, "identified"),
        ("responders", {"users": ["U0ERIN005"]}, "identified"),
        ("escalate", {"reason": "need the database team"}, "identified"),
        ("status", {"status": "monitoring"}, "monitoring"),
        ("action-items", {"text": "alert on login errors", "owner": by}, "monitoring"),
        ("resolve", {"message": "rolled back"}, "resolved"),
        ("reopen", {"reason": "errors are back"}, "investigating"),
    ]
    state: dict[str, Any] = {}
    for action, body, expected in steps:
        response = await command(api, incident, action, by=by, **body)
        assert response.status_code == 200, (action, response.text)
        state = response.json()
        assert state["status"] == expected, action

    assert state["severity"] == "sev2"
    assert state["roles"]["tech_lead"] == "U0DAVE004"
    assert "U0ERIN005" in state["responders"]
    assert state["escalation_level"] == 1
    assert state["resolved_at"] is None
    kinds = [entry["kind"] for entry in state["timeline"]]
    assert kinds[-4:] == ["status", "action_item", "resolved", "reopened"]
    assert state["timeline"][-1]["actor"] == by

    item = state["action_items"][0]
    done = await command(api, incident, f"action-items/{item['id']}/complete", by=by)
    assert done.status_code == 200 and done.json()["action_items"][0]["done_at"] is not None
    twice = await command(api, incident, f"action-items/{item['id']}/complete")
    assert twice.status_code == 409 and "already done" in twice.json()["detail"]


async def test_rename_edits_the_kickoff_and_topic_notes_it_and_keeps_the_channel_name(api, slack):
    incident = await declare(api, title=title("Checkout slow"))
    channel = incident["channel"]
    new = title("Checkout <fails> & EU cards")
    renamed = await command(api, incident, "rename", title=new, by="U0BOB0002")
    assert renamed.status_code == 200, renamed.text
    state = renamed.json()
    assert state["title"] == new and state["channel"]["name"] == channel["name"]
    entry = state["timeline"][-1]
    assert (entry["kind"], entry["actor"]) == ("renamed", "U0BOB0002")
    assert entry["text"] == f"Renamed from '{incident['title']}' to '{new}'"
    shown = new.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    def kickoff() -> str:
        [message] = [
            m
            for m in slack.messages(channel["id"])
            if m.get("metadata", {}).get("event_payload", {}).get("key") == "kickoff"
        ]
        return str(message.get("text", ""))

    await eventually(lambda: shown in kickoff(), explain=kickoff)
    await eventually(lambda: shown in slack.channels[channel["id"]].topic)
    said = [m.get("text", "") for m in slack.messages(channel["id"])]
    assert any("renamed" in t and f"Was: {incident['title']}" in t for t in said)
    for _ in range(100):  # the archive hears of the new title from an activity, just after
        archived = await api.get("/archive/incidents", params={"q": new.split()[-1]}, headers=AUTH)
        if [i["title"] for i in archived.json()["incidents"]] == [new]:
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail(f"the archive does not know the new title: {archived.text}")
    again = await command(api, incident, "rename", title=new)
    assert again.status_code == 409 and f"is already called '{new}'" in again.json()["detail"]
    blank = await command(api, incident, "rename", title=" ")
    assert blank.status_code == 422 and blank.json()["detail"][0]["loc"] == ["body", "title"]


async def test_list_filters_by_severity_status_open_commander_and_text(api):
    sev3 = await declare(api, title=title("Report export slow"), severity="sev3")
    sev2 = await declare(
        api, title=title("Webhooks delayed"), severity="sev2", commander="U0CAROL03"
    )
    resolved = await declare(api, title=title("Old cache"), severity="sev3")
    assert (await command(api, sev2, "status", status="identified")).status_code == 200
    assert (await command(api, resolved, "resolve", message="gone")).status_code == 200
    mine = {sev3["id"], sev2["id"], resolved["id"]}

    async def listed(expected: set[str], **params: str) -> None:
        # Listing goes through the visibility index, which trails the workflows a little.
        found: set[str] = set()
        for _ in range(100):
            response = await api.get("/incidents", params=params, headers=AUTH)
            assert response.status_code == 200, response.text
            found = {i["id"] for i in response.json()["incidents"]} & mine
            if found == expected:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"{params}: listed {found}, expected {expected}")

    await listed({sev3["id"], resolved["id"]}, severity="sev3")
    await listed({sev2["id"]}, status="identified")
    await listed({sev3["id"], sev2["id"]}, open="true")
    await listed({resolved["id"]}, open="false")
    await listed({sev3["id"]}, severity="sev3", open="true")
    await listed({sev2["id"]}, commander="U0CAROL03")
    await listed({sev3["id"]}, text=sev3["title"].split()[-1].upper())
    await listed({sev3["id"], resolved["id"]}, text="API", severity="sev3")

    # The list view comes from each incident's memo: current after a command, channel included.
    entry = next(
        i
        for i in (await api.get("/incidents", params={"status": "resolved"}, headers=AUTH)).json()[
            "incidents"
        ]
        if i["id"] == resolved["id"]
    )
    assert entry["resolved_at"] and entry["channel"] == resolved["channel"]
    assert "timeline" not in entry

    bad = await api.get("/incidents", params={"status": "sleeping"}, headers=AUTH)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "status"]


async def test_list_pages_with_a_token_until_the_last_page(api):
    made = {(await declare(api, title=title("Paged"), severity="sev3"))["id"] for _ in range(3)}
    for _ in range(100):  # the visibility index trails the workflows a little
        seen: list[str] = []
        params: dict[str, str] = {"page_size": "2", "text": "Paged"}
        pages = 0
        while True:
            response = await api.get("/incidents", params=params, headers=AUTH)
            assert response.status_code == 200, response.text
            page = response.json()
            assert len(page["incidents"]) <= 2
            seen += [i["id"] for i in page["incidents"]]
            pages += 1
            if not page.get("next_page_token"):
                break
            params["next_page_token"] = page["next_page_token"]
        if made <= set(seen):
            break
        await asyncio.sleep(0.1)
    assert made <= set(seen) and len(seen) == len(set(seen)) and pages >= 2
    for token in ("%%%", "bm90IGEgdG9rZW4="):
        bad = await api.get("/incidents", params={"next_page_token": token}, headers=AUTH)
        assert bad.status_code == 422, bad.text
        assert bad.json()["detail"][0]["loc"] == ["query", "next_page_token"]


async def test_metrics_count_declarations_and_commands_applied_or_refused(api):
    incident = await declare(api, title=title("counted"))
    assert (await command(api, incident, "acknowledge")).status_code == 200
    assert (await command(api, incident, "acknowledge")).status_code == 409
    scraped = (await api.get("/metrics", headers=AUTH)).text
    assert 'incident_declarations_total{created="true",severity="sev2"}' in scraped
    assert 'incident_commands_total{command="Acknowledge",outcome="applied"}' in scraped
    assert 'incident_commands_total{command="Acknowledge",outcome="refused"}' in scraped


async def test_the_policys_severities_are_listed_most_severe_first_with_their_pages(api):
    response = await api.get("/policy/severities", headers=AUTH)
    assert response.status_code == 200, response.text
    listed = [(s["name"], s["paging_severity"]) for s in response.json()["severities"]]
    assert listed == [("sev1", "critical"), ("sev2", "error"), ("sev3", "warning")]


async def test_openapi_documents_the_routes_and_the_bearer_scheme(api):
    document = (await api.get("/openapi.json")).json()
    assert document["info"]["title"] == "Incident automation API"
    assert "/incidents/{incident_id}/status" in document["paths"]
    assert "HTTPBearer" in document["components"]["securitySchemes"]
    declare_doc = document["paths"]["/incidents"]["post"]
    assert {"200", "201", "202", "503"} <= set(declare_doc["responses"])
    assert "wait" in {p["name"] for p in declare_doc["parameters"]}
    list_doc = document["paths"]["/incidents"]["get"]
    assert {"page_size", "next_page_token", "commander", "text"} <= {
        p["name"] for p in list_doc["parameters"]
    }


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("U0BOB0002", "U0BOB0002"),
        ("<@U0BOB0002>", "U0BOB0002"),
        ("<@U0BOB0002|bob>", "U0BOB0002"),
        ("@bob", "U0BOB0002"),
        ("Bob", "U0BOB0002"),
        ("BOB@example.com", "U0BOB0002"),
    ],
)
async def test_people_are_resolved_to_ids_from_ids_mentions_handles_and_emails(
    api, given, expected
):
    incident = await declare(api, title=title("People"), commander="@alice", by="carol")
    assert incident["roles"]["commander"] == "U0ALICE01"
    assert incident["timeline"][0]["actor"] == "U0CAROL03"
    response = await command(api, incident, "roles", role="comms_lead", user=given, by=given)
    assert response.status_code == 200, response.text
    assert response.json()["roles"]["comms_lead"] == expected
    assert response.json()["timeline"][-1]["actor"] == expected


async def test_an_unknown_person_gets_422_naming_them_and_the_field(api):
    incident = await declare(api, title=title("Unknown person"))
    for body, field in (
        ({"role": "tech_lead", "user": "mallory"}, "user"),
        ({"role": "tech_lead", "user": "U0BOB0002", "by": "eve@example.com"}, "by"),
    ):
        response = await command(api, incident, "roles", **body)
        assert response.status_code == 422, response.text
        error = response.json()["detail"][0]
        assert error["loc"] == ["body", field]
        assert "unknown person" in error["msg"] and error["input"] in error["msg"]
    responders = await command(api, incident, "responders", users=["erin", "nobody@x.org"])
    assert responders.status_code == 422
    assert "nobody@x.org" in responders.json()["detail"][0]["msg"]


@pytest.mark.parametrize("blank", ["   ", "\u200b\u200b", "\u202e", "\x00\x07"])
async def test_a_title_with_nothing_visible_is_refused_naming_the_field(api, blank):
    response = await api.post("/incidents", json={"title": blank, "severity": "sev2"}, headers=AUTH)
    assert response.status_code == 422
    problem = response.json()["detail"][0]
    assert problem["loc"] == ["body", "title"]
    assert "must contain visible text" in problem["msg"]


@pytest.mark.parametrize(
    ("query", "field"), [("severity=%00", "severity"), ("commander=bob'", "commander")]
)
async def test_list_filters_refuse_what_no_incident_could_match_at_once(api, query, field):
    started = time.monotonic()
    response = await api.get(f"/incidents?{query}", headers=AUTH)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", field]
    assert time.monotonic() - started < 2, "refused before Temporal is asked"


async def test_a_command_sent_twice_with_one_idempotency_key_is_applied_once(api):
    incident = await declare(api, title=title("Retried over HTTP"))
    path = f"/incidents/{incident['id']}/updates"
    headers = {**AUTH, "Idempotency-Key": "retry-me-7"}
    for _ in range(2):
        answer = await api.post(path, json={"message": "once only"}, headers=headers)
        assert answer.status_code == 200, answer.text
    texts = [e["text"] for e in answer.json()["timeline"]]
    assert texts.count("once only") == 1
    bad = await api.post(path, json={"message": "x"}, headers={**AUTH, "Idempotency-Key": "a b"})
    assert bad.status_code == 422


async def test_every_command_on_an_incident_takes_an_idempotency_key(api):
    paths = (await api.get("/openapi.json")).json()["paths"]
    commands = {
        path: spec["post"]
        for path, spec in paths.items()
        if path.startswith("/incidents/{incident_id}/") and "post" in spec
    }
    assert "/incidents/{incident_id}/public" in commands
    missing = [
        path
        for path, operation in commands.items()
        if "idempotency-key" not in {p["name"].lower() for p in operation.get("parameters", [])}
    ]
    assert missing == []

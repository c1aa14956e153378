"""Templates complete declarations: pure (workflows/lifecycle/commands.py), then end to end
through the API, the CLI and the Slack form to the worker, Slack and the status page."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError
from temporalio.client import Client

from config import Settings
from localslack import SlackEmulator
from starter.api.app import create_app
from starter.desk import IncidentDesk
from tests.conftest import TASK_QUEUE
from tests.support import eventually, incident_ids, serve_http, serve_slack_app
from tests.test_cli import incident
from workflows.effects import Notice, Post, PublishStatus
from workflows.lifecycle import states
from workflows.lifecycle.commands import InvalidDeclaration, complete
from workflows.models import DeclarationRequest, Impact
from workflows.policy import Policy, default_policy

T0 = datetime(2026, 11, 24, 21, 0, tzinfo=UTC)
ALICE = "U0ALICE01"


def templated_policy(**extra: Any) -> Policy:
    policy = default_policy().model_dump()
    policy["components"] = {"Checkout": {"group": "Shop"}, "Payments": {"group": "Shop"}}
    policy["templates"] = {
        "checkout-down": {
            "title": "Checkout is down",
            "severity": "sev1",
            "impact": "critical",
            "summary": "Customers cannot pay.",
            "components": ["Checkout"],
            "public": {"message": "Some card payments fail; we are on it.", "impact": "major"},
        },
        "db-failover": {"title": "Database failover", "components": ["postgres"]},
        **extra,
    }
    return Policy.model_validate(policy)


POLICY = templated_policy()


def request(**fields: Any) -> DeclarationRequest:
    return DeclarationRequest.model_validate(fields)


def test_a_template_alone_gives_everything_a_declaration_needs() -> None:
    declaration = complete(request(template="checkout-down"), POLICY)
    assert declaration.title == "Checkout is down" and declaration.severity == "sev1"
    assert declaration.impact is Impact.CRITICAL and declaration.components == ["Checkout"]
    assert declaration.summary == "Customers cannot pay."
    assert declaration.public is not None and declaration.public.impact is Impact.MAJOR


def test_what_the_request_says_wins_over_its_template() -> None:
    asked = request(template="checkout-down", title="Checkout slow", impact="minor", summary="")
    declaration = complete(asked, POLICY)
    assert declaration.title == "Checkout slow" and declaration.impact is Impact.MINOR
    assert declaration.summary == "", "an empty summary given is a summary given"
    assert declaration.severity == "sev1"
    assert complete(declaration, POLICY) == declaration, "completing twice is a no-op"
    unset = complete(request(template="db-failover", title=None, severity="sev2"), POLICY)
    assert unset.title == "Database failover", "null is as good as left out"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"template": "db-failover"}, "severity"),
        ({"template": "db-failover", "title": None}, "severity"),
        ({"severity": "sev2"}, "title"),
        ({"title": "Checkout slow"}, "severity"),
        ({"title": "x", "severity": "sev9"}, "severity"),
        ({"title": "x", "severity": "sev2", "template": "nope"}, "template"),
    ],
)
def test_what_is_still_missing_or_unknown_after_the_template_is_named(
    fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidDeclaration) as refused:
        complete(request(**fields), POLICY)
    assert refused.value.loc == (field,)
    assert str(refused.value).startswith(f"{field}: ")


def test_a_public_template_starts_the_incident_on_the_status_page_with_its_message() -> None:
    declaration = complete(request(template="checkout-down"), POLICY)
    state, effects = states.start(5, "incident-5", declaration, templated_policy(), T0)
    assert state.public is not None
    assert [u.message for u in state.public.updates] == ["Some card payments fail; we are on it."]
    assert state.public.impact is Impact.MAJOR and state.public.components == ["Checkout"]
    assert PublishStatus() in effects
    said = [e.notice for e in effects if isinstance(e, Post)]
    assert said == [Notice.KICKOFF, Notice.ANNOUNCEMENT, Notice.PUBLIC_UPDATE]
    assert [e.kind for e in state.timeline] == ["declared", "public_update"]


def test_a_drill_from_a_public_template_stays_off_the_status_page() -> None:
    drill = complete(request(template="checkout-down", drill=True), POLICY)
    assert drill.public is None
    state, effects = states.start(5, "incident-5", drill, templated_policy(), T0)
    assert state.public is None and PublishStatus() not in effects
    with pytest.raises(InvalidDeclaration) as refused:
        complete(request(title="x", severity="sev2", drill=True, public={"message": "hi"}), POLICY)
    assert refused.value.loc == ("public",)


def test_public_components_the_policy_does_not_know_are_refused_naming_the_field() -> None:
    asked = request(title="x", severity="sev2", public={"message": "hi", "components": ["Nope"]})
    with pytest.raises(InvalidDeclaration, match="unknown components Nope") as refused:
        complete(asked, POLICY)
    assert refused.value.loc == ("public", "components")


def test_a_bad_template_refuses_the_policy_when_it_loads() -> None:
    with pytest.raises(ValidationError, match="unknown components \\['Nope'\\]"):
        templated_policy(bad={"public": {"message": "x", "components": ["Nope"]}})
    with pytest.raises(ValidationError, match="title"):
        templated_policy(bad={"title": "x" * 201})
    with pytest.raises(ValidationError, match="message"):
        templated_policy(bad={"public": {"message": "  "}})


# -- end to end: the API, the CLI and the Slack form, the session's worker, Slack, status page --

TOKEN = "test-token-templates"
SECRET = "test-signing-secret-templates"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def templated_desk(client: Client, worker: None) -> IncidentDesk:
    return IncidentDesk(client, TASK_QUEUE, POLICY)


@pytest.fixture(scope="module")
def app(settings: Settings, templated_desk: IncidentDesk) -> FastAPI:
    return create_app(settings.model_copy(update={"api_tokens": TOKEN}), desk=templated_desk)


@pytest.fixture(scope="module")
async def api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api", timeout=60) as http:
        yield http


async def active_on_the_status_page(api: httpx.AsyncClient, incident_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        page = (await api.get("/status.json")).json()
        found = [i for i in page["active_incidents"] if i["id"] == incident_id]
        if found:
            return dict(found[0])
        await asyncio.sleep(0.2)
    raise AssertionError(f"{incident_id} never reached the status page")


async def test_the_api_declares_from_a_template_alone_and_the_incident_starts_public(
    api: httpx.AsyncClient, slack: SlackEmulator
) -> None:
    body = {"template": "checkout-down", "by": "U0ALICE01"}
    answer = await api.post("/incidents", params={"wait": "true"}, json=body, headers=AUTH)
    assert answer.status_code == 201, answer.text
    incident = answer.json()
    assert incident["title"] == "Checkout is down" and incident["severity"] == "sev1"
    assert incident["impact"] == "critical" and incident["components"] == ["Checkout"]
    assert incident["summary"] == "Customers cannot pay."
    public = await active_on_the_status_page(api, incident["id"])
    assert [u["message"] for u in public["updates"]] == ["Some card payments fail; we are on it."]
    assert public["impact"] == "major" and public["components"] == ["Checkout"]
    channel = incident["channel"]["id"]
    confirmed = await eventually(
        lambda: [m for m in slack.messages(channel) if "On the status page" in m.get("text", "")]
    )
    assert len(confirmed) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [({"template": "db-failover"}, "severity"), ({"severity": "sev2"}, "title")],
)
async def test_a_declaration_still_incomplete_after_its_template_is_a_422_and_declares_nothing(
    api: httpx.AsyncClient, client: Client, body: dict[str, Any], field: str
) -> None:
    before = await incident_ids(client)
    answer = await api.post("/incidents", json=body, headers=AUTH)
    assert answer.status_code == 422, answer.text
    (error,) = answer.json()["detail"]
    assert error["loc"] == ["body", field] and error["type"] == "missing"
    assert "template" in error["msg"]
    assert await incident_ids(client) == before


async def test_openapi_says_title_and_severity_are_optional_only_with_a_template(
    api: httpx.AsyncClient,
) -> None:
    document = (await api.get("/openapi.json")).json()
    schema = document["components"]["schemas"]["DeclarationRequest"]
    assert not {"title", "severity"} & set(schema.get("required", []))
    for field in ("title", "severity"):
        assert (
            "Required unless the template gives one" in schema["properties"][field]["description"]
        )
    declare = document["paths"]["/incidents"]["post"]
    assert "template" in declare["description"] and "422" in declare["responses"]


async def test_the_cli_declares_from_a_template_without_title_or_severity(app: FastAPI) -> None:
    async with serve_http(app) as url:
        done = await incident(
            "declare", "--template", "checkout-down", "--json", url=url, token=TOKEN
        )
        assert done.code == 0, done.err
        assert done.json()["title"] == "Checkout is down" and done.json()["severity"] == "sev1"
        missing = await incident("declare", "--template", "db-failover", url=url, token=TOKEN)
        assert missing.code != 0
        assert "severity" in missing.out + missing.err


async def test_the_slack_form_leads_with_the_template_and_declares_from_it_alone(
    settings: Settings, templated_desk: IncidentDesk, slack: SlackEmulator
) -> None:
    async with serve_slack_app(settings, templated_desk, slack, SECRET):
        general = slack.channel_by_name("general")
        assert general is not None
        sent = await slack.console.slash(slack.workspace, ALICE, general.id, "/incident declare")
        assert sent.status == 200
        view = await eventually(lambda: open_view(slack, "incident_declare"), timeout=10)
        blocks = view["blocks"]
        assert blocks[0]["block_id"] == "template"
        optional = {b["block_id"] for b in blocks if b["optional"]}
        assert {"title", "severity", "impact"} <= optional
        assert all("initial_option" not in b["element"] for b in blocks), "nothing preset"

        short = await slack.console.submit(slack.workspace, view["id"], {"template": "db-failover"})
        assert short.json["response_action"] == "errors"
        assert "template" in short.json["errors"]["severity"]
        before = {c.id for c in slack.channels.values()}
        done = await slack.console.submit(
            slack.workspace, view["id"], {"template": "checkout-down"}
        )
        assert done.status == 200 and done.json is None
        made = await eventually(
            lambda: [
                c
                for c in slack.channels.values()
                if c.id not in before and "checkout-is-down" in c.name
            ],
            timeout=30,
        )
        assert len(made) == 1


def open_view(slack: SlackEmulator, callback_id: str) -> dict[str, Any] | None:
    views = [
        v
        for v in slack.workspace.views.values()
        if v["open"] and v["user"] == ALICE and v["view"]["callback_id"] == callback_id
    ]
    return views[-1]["view"] if views else None

"""Incident types: the policy refuses a type naming what it lacks; a declaration is completed
and checked by its type (pure, workflows/lifecycle/commands.py and opening.py); then end to end
through the API, the CLI and the Slack form to the session's worker and the emulator."""

from __future__ import annotations

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
from tests.support import eventually, serve_http, serve_slack_app
from tests.test_cli import incident
from tests.test_templates import open_view
from workflows.effects import FillRoles, Invite
from workflows.lifecycle import opening, states
from workflows.lifecycle.commands import InvalidDeclaration, complete
from workflows.lifecycle.visibility import INCIDENT_TYPE
from workflows.models import Declaration, DeclarationRequest
from workflows.policy import Policy, default_policy
from workflows.requests import RoleHolders
from workflows.resolution.followup import report_documents
from workflows.resolution.report import situation_report

T0 = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)
ALICE, CAROL, DAVE, OWNER = "U0ALICE01", "U0CAROL03", "U0DAVE004", "U024BE7LH"
# Schedule names are the namespace's: this one is nobody else's, and answers from the policy.
ROTA = "types-security-rota"


def typed_policy(**types: Any) -> Policy:
    policy = default_policy().model_dump()
    policy["templates"] = {
        "breach": {"title": "Data breach", "severity": "sev1", "summary": "Data may have left."},
        "minor": {"title": "Minor glitch", "severity": "sev3"},
    }
    policy["schedules"] = {
        ROTA: {"timezone": "UTC", "people": [DAVE], "shift": "1w", "start": "2026-01-05T00:00Z"}
    }
    policy["types"] = types or {
        "security": {
            "description": "Breaches, leaks, intrusions",
            "severities": ["sev1", "sev2"],
            "template": "breach",
            "roles": {
                "commander": f"oncall:{ROTA}",
                "tech_lead": "S0LEADS01",
                "comms_lead": "@carol",
            },
            "private": True,
            "channel_name_template": "sec-{number}",
            "stakeholders": ["ciso@example.com"],
        },
        "outage": {"roles": {"tech_lead": ALICE}},
    }
    return Policy.model_validate(policy)


POLICY = typed_policy()


def request(**fields: Any) -> DeclarationRequest:
    return DeclarationRequest.model_validate(fields)


@pytest.mark.parametrize(
    ("kind", "refusal"),
    [
        ({"template": "nope"}, "type 'bad' names unknown template 'nope'"),
        ({"severities": ["sev9"]}, "type 'bad' allows unknown severities \\['sev9'\\]"),
        ({"roles": {"commander": "oncall:nope"}}, "type 'bad' fills a role with 'oncall:nope'"),
        ({"severities": ["sev2"], "template": "breach"}, "type 'bad': its template 'breach'"),
        ({"roles": {"commander": "bob"}}, "commander"),
        ({"channel_name_template": "sec-{nope}"}, "unknown \\['nope'\\]"),
    ],
)
def test_a_type_naming_what_the_policy_lacks_refuses_the_policy_naming_the_type(
    kind: dict[str, Any], refusal: str
) -> None:
    with pytest.raises(ValidationError, match=refusal):
        typed_policy(bad=kind)


def test_the_type_completes_from_its_template_and_keeps_its_name() -> None:
    declaration = complete(request(type="security", by=ALICE), POLICY)
    assert (declaration.title, declaration.severity) == ("Data breach", "sev1")
    assert declaration.type == "security" and declaration.summary == "Data may have left."
    own = complete(request(type="security", template="minor", severity="sev2"), POLICY)
    assert own.title == "Minor glitch", "a template the request names wins over the type's"
    assert complete(declaration, POLICY) == declaration, "completing twice is a no-op"


def test_a_severity_the_type_does_not_allow_is_refused_naming_the_type() -> None:
    with pytest.raises(InvalidDeclaration, match="type 'security' allows sev1, sev2, not sev3"):
        complete(request(type="security", severity="sev3"), POLICY)
    with pytest.raises(InvalidDeclaration, match="not sev3") as refused:
        complete(request(type="security", template="minor"), POLICY)
    assert refused.value.loc == ("severity",)
    with pytest.raises(InvalidDeclaration, match="unknown type 'nope'") as unknown:
        complete(request(type="nope", title="x", severity="sev1"), POLICY)
    assert unknown.value.loc == ("type",)


def test_roles_named_by_id_are_held_at_once_and_the_rest_asked_before_the_opening() -> None:
    typed = complete(request(type="outage", title="Down", severity="sev2", by=CAROL), POLICY)
    state, effects = states.start(7, "incident-7", typed, POLICY, T0)
    assert (state.roles.commander, state.roles.tech_lead) == (CAROL, ALICE)
    assert (state.type, state.private) == ("outage", False)
    assert not any(isinstance(e, FillRoles) for e in effects)
    assert [e.users for e in effects if isinstance(e, Invite)] == [[CAROL, ALICE]]

    secure = complete(request(type="security", by=CAROL), POLICY)
    state, effects = states.start(8, "incident-8", secure, POLICY, T0)
    assert state.private and state.roles.commander is None, "the rota's answer, not the declarer"
    (fill,) = [e for e in effects if isinstance(e, FillRoles)]
    assert fill.asked.on_call is not None and list(fill.asked.on_call.schedules) == [ROTA]
    assert fill.asked.people == ["S0LEADS01", "@carol"]
    named = complete(request(type="security", commander=ALICE), POLICY)
    state, effects = states.start(9, "incident-9", named, POLICY, T0)
    assert state.roles.commander == ALICE, "the declaration's commander wins over the type's"


def test_the_answer_fills_each_role_and_says_why_and_nobody_leaves_the_declarer() -> None:
    secure = complete(request(type="security", by=CAROL), POLICY)
    state, effects = states.start(8, "incident-8", secure, POLICY, T0)
    (fill,) = [e for e in effects if isinstance(e, FillRoles)]
    found = RoleHolders(on_call={ROTA: DAVE}, people={"S0LEADS01": OWNER, "@carol": CAROL})
    after = opening.fill(state, fill, found, T0)
    assert (state.roles.commander, state.roles.tech_lead, state.roles.comms_lead) == (
        DAVE,
        OWNER,
        CAROL,
    )
    assert [e.users for e in after if isinstance(e, Invite)] == [[DAVE, OWNER, CAROL]]
    assert f"Incident commander: <@{DAVE}>, on call for {ROTA}" in [e.text for e in state.timeline]

    state, _ = states.start(9, "incident-9", secure, POLICY, T0)
    opening.fill(state, fill, RoleHolders(on_call={ROTA: None}), T0)
    assert state.roles.commander == CAROL and state.roles.tech_lead is None
    said = [e.text for e in state.timeline]
    assert f"Incident commander: nobody on call for {ROTA}" in said
    assert "Tech lead: nobody found for S0LEADS01" in said


def test_the_situation_report_names_the_type_and_goes_to_its_stakeholders() -> None:
    state, _ = states.start(8, "incident-8", complete(request(type="security"), POLICY), POLICY, T0)
    assert "Type security (Breaches, leaks, intrusions)" in situation_report(state, POLICY)
    _, email = report_documents(state, POLICY, "report")
    assert email is not None and email.to == ["ciso@example.com"]
    plain = Declaration(title="x", severity="sev2")
    state, _ = states.start(9, "incident-9", plain, POLICY, T0)
    assert "Type " not in situation_report(state, POLICY)


# -- end to end: the API, the CLI and the Slack form, the session's worker and the emulator --

TOKEN = "test-token-types"
SECRET = "test-signing-secret-types"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def typed_desk(client: Client, worker: None) -> IncidentDesk:
    return IncidentDesk(client, TASK_QUEUE, POLICY)


@pytest.fixture(scope="module")
def app(settings: Settings, typed_desk: IncidentDesk) -> FastAPI:
    return create_app(settings.model_copy(update={"api_tokens": TOKEN}), desk=typed_desk)


@pytest.fixture(scope="module")
async def api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api", timeout=60) as http:
        yield http


async def test_a_typed_declaration_opens_with_its_roles_its_channel_and_its_type_shown(
    api: httpx.AsyncClient, slack: SlackEmulator, client: Client
) -> None:
    body = {"type": "security", "by": ALICE}
    answer = await api.post("/incidents", params={"wait": "true"}, json=body, headers=AUTH)
    assert answer.status_code == 201, answer.text
    incident = answer.json()
    assert incident["type"] == "security" and incident["title"] == "Data breach"
    assert incident["roles"] == {"commander": DAVE, "tech_lead": OWNER, "comms_lead": CAROL}
    channel = slack.workspace.channels[incident["channel"]["id"]]
    assert channel.name == f"sec-{incident['number']}"
    assert {DAVE, OWNER, CAROL} <= set(channel.members)
    topic: str = await eventually(lambda: channel.topic if "security" in channel.topic else None)
    assert topic.startswith("SEV1 · security · Investigating") and f"<@{DAVE}>" in topic
    (kickoff,) = [m for m in slack.messages(channel.id) if "declared" in m.get("text", "")][:1]
    fields = [f["text"] for b in kickoff["blocks"] for f in b.get("fields", [])]
    assert "*Type*\nsecurity: Breaches, leaks, intrusions" in fields
    assert f"*Incident commander*\n<@{DAVE}>" in fields

    described = await client.get_workflow_handle(incident["id"]).describe()
    assert described.typed_search_attributes.get(INCIDENT_TYPE) == "security"
    plain = {"title": "Untyped", "severity": "sev3", "by": ALICE}
    untyped = (await api.post("/incidents", json=plain, headers=AUTH)).json()
    listed = await api.get("/incidents", params={"type": "security", "limit": 1000}, headers=AUTH)
    ids = {i["id"] for i in listed.json()["incidents"]}
    assert incident["id"] in ids and untyped["id"] not in ids
    assert all(i["type"] == "security" for i in listed.json()["incidents"])
    unknown = await api.get("/incidents", params={"type": "nope"}, headers=AUTH)
    assert unknown.status_code == 422 and "unknown type 'nope'" in unknown.text


async def test_the_api_refuses_a_severity_the_type_does_not_allow_and_documents_the_types(
    api: httpx.AsyncClient,
) -> None:
    body = {"type": "security", "title": "Leak", "severity": "sev3"}
    answer = await api.post("/incidents", json=body, headers=AUTH)
    assert answer.status_code == 422, answer.text
    (error,) = answer.json()["detail"]
    assert error["loc"] == ["body", "severity"] and "type 'security'" in error["msg"]
    document = (await api.get("/openapi.json")).json()
    declared = document["components"]["schemas"]["DeclarationRequest"]
    assert declared["properties"]["type"]["anyOf"][0]["enum"] == ["security", "outage"]
    listing = document["paths"]["/incidents"]["get"]["parameters"]
    (kind,) = [p for p in listing if p["name"] == "type"]
    assert kind["schema"]["anyOf"][0]["enum"] == ["security", "outage"]


async def test_the_cli_declares_a_type_and_lists_by_it(app: FastAPI) -> None:
    async with serve_http(app) as url:
        done = await incident(
            "declare",
            "Pager storm",
            "-s",
            "sev2",
            "--type",
            "outage",
            "--json",
            url=url,
            token=TOKEN,
        )
        assert done.code == 0, done.err
        assert done.json()["type"] == "outage" and done.json()["roles"]["tech_lead"] == ALICE
        listed = await incident("list", "--type", "outage", "--json", url=url, token=TOKEN)
        assert listed.code == 0, listed.err
        assert done.json()["id"] in {i["id"] for i in listed.json()["incidents"]}
        assert {i["type"] for i in listed.json()["incidents"]} == {"outage"}


async def test_the_slack_form_offers_the_types_and_declares_one(
    settings: Settings, typed_desk: IncidentDesk, slack: SlackEmulator
) -> None:
    async with serve_slack_app(settings, typed_desk, slack, SECRET):
        general = slack.channel_by_name("general")
        assert general is not None
        sent = await slack.console.slash(slack.workspace, ALICE, general.id, "/incident declare")
        assert sent.status == 200
        view = await eventually(lambda: open_view(slack, "incident_declare"), timeout=10)
        (kinds,) = [b for b in view["blocks"] if b["block_id"] == "type"]
        assert [o["value"] for o in kinds["element"]["options"]] == ["security", "outage"]
        refused = {"type": "security", "title": "x", "severity": "sev3"}
        short = await slack.console.submit(slack.workspace, view["id"], refused)
        assert short.json["response_action"] == "errors"
        assert "type 'security'" in short.json["errors"]["severity"]
        before = {c.id for c in slack.channels.values()}
        done = await slack.console.submit(slack.workspace, view["id"], {"type": "security"})
        assert done.status == 200 and done.json is None
        # Once its people are in: the (now private) channel exists a moment before invitations.
        made = await eventually(
            lambda: [
                c
                for c in slack.channels.values()
                if c.id not in before and "sec-" in c.name and len(c.members) > 1
            ],
            timeout=30,
        )
        assert len(made) == 1 and DAVE in made[0].members

"""Permissions in the policy: who may declare, acknowledge, change severity, resolve, reopen,
go public, assign roles, and manage schedules and tokens. The pure check (people, user groups,
roles, anyone, the default), the people directory finding who stands for whom, and refusals
end to end: 403 from the API (the workflow's validator, the desk), an ephemeral Slack reply
naming the rule. Real parts: the session's worker and dev server, the emulator over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.client import Client

from clients.slack_people import SlackPeople
from config import Settings
from localslack import BOT_TOKEN, SlackEmulator
from starter.api.app import create_app
from starter.desk import IncidentDesk
from tests.conftest import TASK_QUEUE
from tests.support import eventually, serve_slack_app
from tests.test_oncall_reach import schedule, start_schedules
from tests.test_slack_app import Person
from workflows.incident_types import Permissions, holds
from workflows.lifecycle import commands as cmd
from workflows.lifecycle import rules, states
from workflows.lifecycle.notices import PermissionRefused
from workflows.models import Declaration, IncidentState, Status
from workflows.policy import Policy, default_policy

SERVICE = "test-token-permissions"
AS_SERVICE = {"Authorization": f"Bearer {SERVICE}"}
# The emulator's @incident-leads (S0LEADS01) are Olivia and Carol.
OLIVIA, ALICE, BOB, CAROL = "U024BE7LH", "U0ALICE01", "U0BOB0002", "U0CAROL03"
RESOLVE_RULE = "resolve needs role:commander or @incident-leads (policy [permissions] resolve)"


def permitting(rota: dict[str, Any] | None = None, **permissions: Any) -> Policy:
    """The default policy with these ``[permissions]`` (and these on-call schedules)."""
    policy = {**default_policy().model_dump(), "permissions": permissions}
    return Policy.model_validate({**policy, "schedules": rota or {}})


def incident(commander: str | None = ALICE, responders: list[str] | None = None) -> IncidentState:
    declaration = Declaration(
        title="Checkout failing", severity="sev2", commander=commander, responders=responders or []
    )
    state, _ = states.start(7, "incident-7", declaration, default_policy(), datetime.now(UTC))
    return state


# -- the pure check ----------------------------------------------------------------------------


def test_the_default_policy_lets_anyone_do_anything_as_before() -> None:
    permissions = default_policy().permissions
    # Skipping a rule's wait is new with automations, and the commander's from the start.
    assert permissions.allowed("automations") == ["role:commander"]
    for action in set(Permissions.model_fields) - {"automations"}:
        assert permissions.allowed(action) == ["*"]  # type: ignore[arg-type]
        assert permissions.refusal(action, BOB, [], []) is None  # type: ignore[arg-type]
        assert permissions.lookups(action) == []  # type: ignore[arg-type]  # nobody to ask


def test_people_are_permitted_by_id_and_by_what_the_entry_point_found_them_to_be() -> None:
    permissions = Permissions(resolve=[ALICE, "@carol", "erin@example.com", "S0LEADS01"])
    assert permissions.refusal("resolve", ALICE, [], []) is None  # an id needs nobody asked
    assert permissions.refusal("resolve", CAROL, ["@carol"], []) is None
    assert permissions.refusal("resolve", OLIVIA, ["S0LEADS01"], []) is None  # a group's member
    refused = permissions.refusal("resolve", BOB, [], [])
    assert refused == (
        f"resolve needs {ALICE} or @carol or erin@example.com or S0LEADS01 "
        "(policy [permissions] resolve)"
    )
    # What Slack must be asked: handles, emails and groups; never ids or roles.
    assert permissions.lookups("resolve") == ["@carol", "erin@example.com", "S0LEADS01"]
    assert Permissions(resolve=["*", "@carol"]).refusal("resolve", BOB, [], []) is None


def test_roles_are_read_from_the_incident() -> None:
    state = incident(commander=ALICE, responders=[BOB])
    assert holds(state, ALICE) == ["role:commander", "role:responder"]
    assert holds(state, BOB) == ["role:responder"]
    assert holds(state, CAROL) == [] and holds(state, None) == []
    permissions = Permissions(resolve=["role:commander"], reopen=["role:responder"])
    assert permissions.refusal("resolve", ALICE, [], holds(state, ALICE)) is None
    assert permissions.refusal("resolve", BOB, [], holds(state, BOB)) is not None
    assert permissions.refusal("reopen", BOB, [], holds(state, BOB)) is None


def test_a_command_nobody_acts_for_is_the_products_own() -> None:
    """A service token's command without `by`: an integration acting, as the product does."""
    assert Permissions(resolve=["role:commander"]).refusal("resolve", None, [], []) is None


def test_the_workflows_check_refuses_before_the_incident_is_asked() -> None:
    """``rules.check`` is the Update's validator: the permission first, then the rule; and
    `status resolved` needs what resolving needs, or it would go round it."""
    policy = permitting(resolve=["role:commander", "@incident-leads"])
    state = incident(commander=ALICE)
    for command in (cmd.Resolve(by=BOB), cmd.SetStatus(status=Status.RESOLVED, by=BOB)):
        with pytest.raises(PermissionRefused) as refused:
            rules.check(state, policy, command)
        assert str(refused.value) == RESOLVE_RULE and refused.value.type == "PermissionRefused"
    rules.check(state, policy, cmd.SetStatus(status=Status.IDENTIFIED, by=BOB))  # not resolving
    rules.check(state, policy, cmd.Resolve(by=ALICE))
    rules.check(state, policy, cmd.Resolve(by=CAROL, answers_to=["@incident-leads"]))
    rules.check(state, policy, cmd.Acknowledge(by=BOB))  # acknowledge is anyone's still


def test_a_policy_with_a_role_where_no_incident_is_or_a_misspelt_action_is_refused() -> None:
    with pytest.raises(ValidationError, match="roles are held in an incident"):
        permitting(declare=["role:commander"])
    with pytest.raises(ValidationError, match="resolved"):
        permitting(resolved=["role:commander"])  # else it would leave resolve open to all
    with pytest.raises(ValidationError):
        permitting(resolve=["role:janitor"])
    with pytest.raises(ValidationError):
        permitting(resolve=[])  # nobody at all: a lock nobody can open


# -- who stands for whom, from Slack -----------------------------------------------------------


@pytest.fixture
def directory(slack: SlackEmulator) -> SlackPeople:
    return SlackPeople(AsyncWebClient(base_url=slack.base_url, token=BOT_TOKEN))


async def test_the_directory_finds_the_groups_handles_and_emails_that_stand_for_someone(
    directory: SlackPeople, slack: SlackEmulator
) -> None:
    grantees = ["S0LEADS01", "@incident-leads", "@carol", "carol@example.com", "@nobody-here"]
    assert await directory.answers_to(CAROL, grantees) == grantees[:4]
    assert await directory.answers_to(BOB, grantees) == []
    listed = len(slack.calls_to("usergroups.list"))
    assert await directory.answers_to(OLIVIA, ["@incident-leads"]) == ["@incident-leads"]
    assert len(slack.calls_to("usergroups.list")) == listed  # the groups are kept a minute
    assert await SlackPeople(None).answers_to(CAROL, grantees) == []  # no Slack: ids only


# -- end to end --------------------------------------------------------------------------------


@pytest.fixture
async def api_of(client: Client, settings: Settings, worker: None, directory: SlackPeople) -> Any:
    """An API whose desk has the given policy and finds people in the emulator."""
    opened: list[httpx.AsyncClient] = []

    def api(policy: Policy) -> httpx.AsyncClient:
        desk = IncidentDesk(client, TASK_QUEUE, policy, people=directory)
        app = create_app(settings.model_copy(update={"api_tokens": SERVICE}), desk=desk)
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api", timeout=60
        )
        opened.append(http)
        return http

    yield api
    for http in opened:
        await http.aclose()


def title(what: str) -> str:
    return f"{what} {uuid.uuid4().hex[:6]}"


async def test_resolving_needs_the_commander_and_a_bystander_gets_403_naming_the_rule(api_of):
    api = api_of(permitting(resolve=["role:commander", "@incident-leads"]))
    body = {"title": title("Resolve"), "severity": "sev3", "commander": ALICE, "by": ALICE}
    declared = await api.post("/incidents", json=body, headers=AS_SERVICE)
    assert declared.status_code == 202, declared.text
    ref = declared.json()["id"]
    made = await api.post("/tokens", json={"user": "@bob"}, headers=AS_SERVICE)
    as_bob = {"Authorization": f"Bearer {made.json()['token']}"}
    for path, sent in (("resolve", {}), ("status", {"status": "resolved"})):
        refused = await api.post(f"/incidents/{ref}/{path}", json=sent, headers=as_bob)
        assert refused.status_code == 403, refused.text
        assert refused.json()["detail"] == RESOLVE_RULE
    # Who stands for whom is the desk's to find: a client claiming a group is not believed.
    claimed = {"by": BOB, "answers_to": ["@incident-leads"]}
    refused = await api.post(f"/incidents/{ref}/resolve", json=claimed, headers=AS_SERVICE)
    assert refused.status_code == 403 and refused.json()["detail"] == RESOLVE_RULE
    assert (await api.get(f"/incidents/{ref}", headers=AS_SERVICE)).json()["status"] != "resolved"
    acked = await api.post(f"/incidents/{ref}/acknowledge", headers=as_bob)
    assert acked.status_code == 200, acked.text  # acknowledging stays anyone's
    resolved = await api.post(f"/incidents/{ref}/resolve", json={"by": ALICE}, headers=AS_SERVICE)
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"


async def test_declaring_outside_the_policy_is_403_and_declares_nothing(api_of):
    api = api_of(permitting(declare=["@incident-leads"]))
    name = title("Declare")
    body = {"title": name, "severity": "sev3", "by": BOB}
    refused = await api.post("/incidents", json=body, headers=AS_SERVICE)
    assert refused.status_code == 403, refused.text
    assert refused.json()["detail"] == (
        "declare needs @incident-leads (policy [permissions] declare)"
    )
    listed = await api.get("/incidents", params={"text": name}, headers=AS_SERVICE)
    assert listed.json()["incidents"] == []
    allowed = await api.post("/incidents", json={**body, "by": CAROL}, headers=AS_SERVICE)
    assert allowed.status_code == 202, allowed.text
    alert = await api.post("/incidents", json={**body, "by": None}, headers=AS_SERVICE)
    assert alert.status_code == 202, alert.text  # nobody named: the service token's own


async def test_an_override_outside_the_policy_is_403(api_of, client: Client):
    name = f"perm-{uuid.uuid4().hex[:8]}"
    start = datetime.now(UTC) - timedelta(days=1)
    policy = permitting(
        {name: schedule([ALICE], start, "1d")}, schedules=[ALICE, "@incident-leads"]
    )
    await start_schedules(client, policy)
    api = api_of(policy)
    now = datetime.now(UTC)
    window = {
        "user": "@carol",
        "start": now.isoformat(),
        "end": (now + timedelta(hours=1)).isoformat(),
    }
    refused = await api.post(
        f"/schedules/{name}/overrides", json={**window, "by": BOB}, headers=AS_SERVICE
    )
    assert refused.status_code == 403, refused.text
    assert refused.json()["detail"] == (
        f"schedules needs {ALICE} or @incident-leads (policy [permissions] schedules)"
    )
    made = await api.post(
        f"/schedules/{name}/overrides", json={**window, "by": CAROL}, headers=AS_SERVICE
    )
    assert made.status_code == 201, made.text


@pytest.fixture
async def slack_app(
    client: Client, settings: Settings, worker: None, slack: SlackEmulator, directory: SlackPeople
) -> AsyncIterator[IncidentDesk]:
    rota = {"perm-slack": schedule([ALICE], datetime.now(UTC), "1d")}
    leads = ["role:commander", "@incident-leads"]
    policy = permitting(rota, resolve=leads, schedules=[ALICE], declare=["@incident-leads"])
    desk = IncidentDesk(client, TASK_QUEUE, policy, people=directory)
    async with serve_slack_app(settings, desk, slack, "permissions-secret"):
        yield desk


async def test_slack_answers_a_refused_resolve_ephemerally_naming_the_rule(slack_app, slack):
    state, _ = await slack_app.declare(
        Declaration(title=title("Slack resolve"), severity="sev3", commander=ALICE)
    )
    bob, carol = Person(slack, BOB), Person(slack, CAROL)
    reply = await bob.types(f"/incident resolve {state.number} rolled back")
    assert RESOLVE_RULE in reply.text, reply.text
    assert (await slack_app.get(state.id)).status is not Status.RESOLVED
    reply = await carol.types(f"/incident resolve {state.number} rolled back")  # @incident-leads
    assert (await slack_app.get(state.id)).status is Status.RESOLVED, reply.text


async def test_a_persons_admin_token_manages_only_their_own_tokens_unless_the_policy_says(api_of):
    api = api_of(permitting(tokens=["@incident-leads"]))

    async def admin_token(user: str) -> dict[str, str]:
        body = {"user": user, "scopes": ["admin"]}
        made = await api.post("/tokens", json=body, headers=AS_SERVICE)  # a service token may
        assert made.status_code == 201, made.text
        return {"Authorization": f"Bearer {made.json()['token']}"}

    as_bob, as_carol = await admin_token("@bob"), await admin_token("@carol")
    rule = "tokens needs @incident-leads (policy [permissions] tokens)"
    for refused in (
        await api.post("/tokens", json={"user": "@alice"}, headers=as_bob),
        await api.get("/tokens", headers=as_bob),  # everyone's
    ):
        assert refused.status_code == 403 and refused.json()["detail"] == rule, refused.text
    mine = await api.post("/tokens", json={"user": "@bob"}, headers=as_bob)
    assert mine.status_code == 201, mine.text
    assert (await api.get("/tokens", params={"user": BOB}, headers=as_bob)).status_code == 200
    assert (await api.delete(f"/tokens/{mine.json()['id']}", headers=as_bob)).status_code == 200
    theirs = await api.post("/tokens", json={"user": "@alice"}, headers=as_carol)
    assert theirs.status_code == 201, theirs.text  # Carol is one of @incident-leads
    revoked = await api.delete(f"/tokens/{theirs.json()['id']}", headers=as_bob)
    assert revoked.status_code == 403 and revoked.json()["detail"] == rule


async def test_slack_answers_a_refused_override_ephemerally_naming_the_rule(slack_app, slack):
    reply = await Person(slack, BOB).types("/oncall override perm-slack @carol for 2h")
    assert f"schedules needs {ALICE} (policy [permissions] schedules)" in reply.text, reply.text


async def test_slack_refuses_a_declaration_outside_the_policy_in_its_answer_and_on_its_form(
    slack_app, slack
):
    bob = Person(slack, BOB)
    rule = "declare needs @incident-leads (policy [permissions] declare)"
    reply = await bob.types(f"/incident declare sev3 {title('Bob declares')}")
    assert rule in reply.text, reply.text
    sent = await slack.console.slash(
        slack.workspace, BOB, bob.channel_id("general"), "/incident declare"
    )
    assert sent.status == 200
    view = await eventually(lambda: bob.open_view("incident_declare"), timeout=10)
    answers = {"title": title("Bob's form"), "severity": "sev3"}
    refused = await slack.console.submit(slack.workspace, view["id"], answers)
    assert refused.json["response_action"] == "errors"
    assert rule in refused.json["errors"].values(), refused.json

"""Automations end to end: a team's rules in a seconds-scale policy, run by the session's dev
server and worker inside each incident's workflow, seen in the Slack emulator and on the
timeline. Each trigger, each step, a wait called off by its ``unless``, a private incident's
words kept in its channel, a failing step noted while the others go on, and bad rules refused
when the policy loads, naming the rule."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response
from pydantic import ValidationError

from localslack import SlackEmulator
from starter.desk import IncidentDesk
from tests.conftest import TASK_QUEUE, seconds_policy
from tests.support import eventually, serve_http, serve_slack_app
from tests.test_oncall_reach import direct_messages
from tests.test_slack_app import SECRET, Person
from workflows.alerts.folding import AlertSignal
from workflows.alerts.routing import AlertBatch
from workflows.incident import IncidentWorkflow
from workflows.lifecycle import commands as cmd
from workflows.lifecycle.notices import CommandRefused
from workflows.models import Declaration, IncidentState, Role, Status
from workflows.policy import Policy, default_policy, load_policy
from workflows.preview import Scenario, preview

ALICE, BOB, CAROL = "U0ALICE01", "U0BOB0002", "U0CAROL03"
TRIGGERS = [
    "declared",
    "acknowledged",
    "status_changed",
    "severity_changed",
    "updated",
    "role_assigned",
    "alert",
    "resolved",
    "reopened",
    "action_item_overdue",
]


def policy_with(*rules: dict[str, Any], **more: Any) -> Policy:
    policy = seconds_policy(action_item_remind_every=1).model_dump()
    return Policy.model_validate({**policy, **more, "automations": list(rules)})


SAID = {"post": {"text": "{rule} ran for {label}"}}


async def settled(probe: Any, accept: Any, timeout: float = 15.0) -> Any:
    """Poll an async probe until ``accept`` likes its answer; that answer."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if accept(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not settled within {timeout}s; last seen: {value!r}")
        await asyncio.sleep(0.1)


async def declare(
    client: Any, policy: Policy, title: str, **fields: Any
) -> tuple[IncidentDesk, IncidentState]:
    desk = IncidentDesk(client, TASK_QUEUE, policy)
    given = {"title": title, "severity": "sev2", "commander": ALICE, **fields}
    state, _ = await desk.declare(Declaration.model_validate(given))
    return desk, state


async def automation_log(desk: IncidentDesk, incident: str) -> list[str]:
    state = await desk.get(incident)
    entries = [e for e in state.timeline if e.kind in ("automation", "problem")]
    return [e.text for e in entries if "Automation" in e.text or "automation" in e.text]


def channel_texts(slack: SlackEmulator, channel_id: str) -> list[str]:
    return [m.get("text", "") for m in slack.messages(channel_id)]


async def test_every_trigger_runs_its_rule_once(client, worker, slack):
    policy = policy_with(*({"name": t, "on": t, "do": [SAID]} for t in TRIGGERS))
    desk, state = await declare(client, policy, "Every trigger")
    due = datetime.now(UTC)
    for command in (
        cmd.Acknowledge(by=BOB),
        cmd.SetStatus(status=Status.IDENTIFIED),
        cmd.SetSeverity(severity="sev1"),
        cmd.PostUpdate(message="looking"),
        cmd.AssignRole(role=Role.COMMS_LEAD, user=CAROL),
        cmd.AddActionItem(text="write the customer note", owner=CAROL, due=due),
    ):
        await desk.command(state.id, command)
    handle = client.get_workflow_handle(state.id)
    batch = AlertBatch(source="generic", group_key="g", status="firing")
    await handle.signal(IncidentWorkflow.alert, AlertSignal(batch=batch))
    await desk.command(state.id, cmd.Resolve(message="fixed"))
    await desk.command(state.id, cmd.Reopen(reason="back"))

    async def ran() -> list[str]:
        return [t for t in await automation_log(desk, state.id) if t.endswith("incident channel")]

    # A status changes three times (identified, resolved, reopened): three events.
    expected = sorted([*TRIGGERS, "status_changed", "status_changed"])
    log = await settled(ran, lambda found: len(found) >= len(expected))
    print("\n".join(["", *log]))
    assert sorted(line.split("'")[1] for line in log) == expected
    channel = (await desk.get(state.id)).channel
    assert channel is not None

    def told() -> list[str]:
        return [t for t in channel_texts(slack, channel.id) if " ran for " in t]

    await eventually(lambda: len(told()) >= len(expected))
    assert len(told()) == len(expected)


async def test_each_step_acts_as_the_product(client, worker, slack):
    room = f"payments-{uuid.uuid4().hex[:6]}"
    slack.workspace.create_channel(room, ALICE, is_private=False)
    steps = [
        {"invite": [BOB, "@carol"]},
        {"assign": {"role": "tech_lead", "user": BOB}},
        {"post": {"channel": f"#{room}", "text": "{label} {severity} needs payments"}},
        {"post": {"channel": "broadcast", "text": "{label} is checkout's"}},
        {"dm": {"to": "@carol", "text": "you are needed on {label}"}},
        {"action_item": {"text": "write the customer note", "owner": CAROL, "due_in": "1d"}},
        {"set": {"summary": "Checkout declines cards", "severity": "sev1"}},
        {"escalate": "checkout is down"},
        {"page": "@bob"},
    ]
    rule = {"name": "checkout", "on": "declared", "if": '"checkout" in incident.components'}
    desk, state = await declare(
        client, policy_with({**rule, "do": steps}), "Cards", components=["checkout"]
    )
    log = await settled(lambda: automation_log(desk, state.id), lambda f: len(f) >= 9)
    print("\n".join(["", *log]))
    assert log == [
        "Automation 'checkout': invited <@U0BOB0002>, @carol",
        "Automation 'checkout': tech lead <@U0BOB0002>",
        f"Automation 'checkout': posted in #{room}",
        "Automation 'checkout': posted in the broadcast channel",
        "Automation 'checkout': sent @carol a direct message",
        "Automation 'checkout': action item 'write the customer note'",
        "Automation 'checkout': set severity 'sev1', summary 'Checkout declines cards'",
        "Automation 'checkout': escalated",
        "Automation 'checkout': paged @bob",
    ]
    state = await desk.get(state.id)
    assert state.roles.tech_lead == BOB and state.severity == "sev1" and state.escalation_level == 1
    assert state.summary == "Checkout declines cards" and state.action_items[0].owner == CAROL
    named = next(c for c in slack.channels.values() if c.name == room)
    await eventually(lambda: [t for t in channel_texts(slack, named.id) if state.label in t])
    await eventually(lambda: direct_messages(slack, CAROL, state.label))
    assert state.channel is not None
    members = slack.channels[state.channel.id].members
    assert {BOB, CAROL} <= set(await eventually(lambda: members if CAROL in members else None))


async def test_a_wait_is_called_off_when_its_unless_holds(client, worker, slack):
    rule = {
        "name": "page the secondary",
        "on": "declared",
        "after": 1.5,
        "unless": 'incident.status != "investigating"',
        "do": [{"page": BOB}],
    }
    desk, moving = await declare(client, policy_with(rule), "Identified in time")
    _, stuck = await declare(client, policy_with(rule), "Still investigating")
    assert (await desk.get(moving.id)).automations[0].rule == "page the secondary"
    await desk.command(moving.id, cmd.SetStatus(status=Status.IDENTIFIED))
    fired = await settled(lambda: automation_log(desk, stuck.id), lambda f: len(f) >= 2)
    called_off = await settled(lambda: automation_log(desk, moving.id), lambda f: len(f) >= 2)
    print("\n".join(["", *fired, *called_off]))
    assert fired[-1] == "Automation 'page the secondary': paged <@U0BOB0002>"
    assert called_off[-1] == "Automation 'page the secondary' called off: unless held"
    assert (await desk.get(moving.id)).automations == []


async def test_resolving_calls_off_a_wait_begun_while_open(client, worker, slack):
    rule = {"name": "later", "on": "declared", "after": 30, "do": [{"escalate": ""}]}
    desk, state = await declare(client, policy_with(rule), "Resolved before the wait ends")
    await desk.command(state.id, cmd.Resolve(message="done"))
    log = await automation_log(desk, state.id)
    assert log[-1] == "Automation 'later' called off: resolved"
    assert (await desk.get(state.id)).automations == []


async def test_a_private_incidents_words_stay_in_its_channel(client, worker, slack):
    steps = [
        {"post": {"channel": "broadcast", "text": "{title}"}},
        {"dm": {"to": CAROL, "text": "{title}"}},
        {"post": {"text": "said in its own channel"}},
    ]
    policy = policy_with({"name": "tell", "on": "declared", "do": steps})
    desk, state = await declare(client, policy, "Secret merger leak", private=True)
    log = await settled(lambda: automation_log(desk, state.id), lambda f: len(f) >= 3)
    assert log[0].startswith("Automation 'tell': did not post: ")
    assert "private" in log[0] and "did not dm" in log[1]
    assert log[2] == "Automation 'tell': posted in the incident channel"
    broadcast = next(c for c in slack.channels.values() if c.name == "incidents")
    assert not [t for t in channel_texts(slack, broadcast.id) if "Secret merger" in t]


async def test_a_step_that_fails_is_noted_and_the_others_go_on(client, worker, slack):
    steps = [{"post": {"channel": "#no-such-room", "text": "x"}}, {"escalate": "next step"}]
    desk, state = await declare(
        client, policy_with({"name": "try", "on": "declared", "do": steps}), "Fails"
    )
    found = await settled(
        lambda: desk.get(state.id), lambda s: any("does not exist" in e.text for e in s.timeline)
    )
    print("\n".join(["", *(e.text for e in found.timeline)]))
    assert found.escalation_level == 1


BAD_RULES = {
    "unknown field": ({"iff": "true"}, "unknown rule field ['iff']"),
    "unknown step": ({"do": [{"pgae": BOB}]}, "unknown step field ['pgae']"),
    "bad expression": ({"if": 'incident.severity == "sev1" &&'}, "Syntax error"),
    "unknown view field": ({"if": "incident.sevrity == 'sev1'"}, "unknown field incident.sevrity"),
    "not a condition": ({"if": "incident.severity"}, "not true or false"),
    "unknown schedule": ({"do": [{"page": "oncall:nobody"}]}, "oncall:nobody: no such schedule"),
    "unknown severity": ({"do": [{"set": {"severity": "sev9"}}]}, "unknown severity 'sev9'"),
    "unknown person": ({"do": [{"invite": ["bob"]}]}, "'bob' is not a user id"),
    "unknown text field": ({"do": [{"post": {"text": "{secret}"}}]}, "text uses ['secret']"),
    "format spec": ({"do": [{"dm": {"to": BOB, "text": "{title:>9999}"}}]}, "named plainly"),
    "not http": ({"do": [{"webhook": {"url": "file:///etc/passwd"}}]}, "should match pattern"),
    "drill severity": ({"do": [{"drill": {"after": "14d", "severity": "sev9"}}]}, "'sev9'"),
    "drill too late": ({"do": [{"drill": {"after": "400d"}}]}, "at most 366 days, not 400 days"),
    "drill title": ({"do": [{"drill": {"after": "1d", "title": "{who}"}}]}, "text uses ['who']"),
}


@pytest.mark.parametrize("change, refusal", BAD_RULES.values(), ids=BAD_RULES)
def test_a_bad_rule_is_refused_at_load_naming_it(tmp_path: Path, change: Any, refusal: str):
    rule = {"name": "page the secondary", "on": "declared", "do": [{"escalate": ""}], **change}
    lines = [f"{k} = {_toml(v)}" for k, v in rule.items()]
    path = tmp_path / "policy.toml"
    path.write_text("[severities.sev1]\n\n[[automations]]\n" + "\n".join(lines) + "\n")
    with pytest.raises(ValidationError) as refused:
        load_policy(path)
    assert "page the secondary" in str(refused.value) and refusal in str(refused.value)


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "'" + value + "'" if '"' in value else f'"{value}"'


def test_the_preview_shows_which_rules_fire_and_when():
    rule = {
        "name": "page the secondary",
        "on": "declared",
        "after": "30m",
        "unless": "incident.acknowledged",
        "do": [{"page": BOB}, {"post": {"channel": "#payments", "text": "{label} unanswered"}}],
    }
    policy = Policy.model_validate({**default_policy().model_dump(), "automations": [rule]})

    def shown(ack_after: str) -> list[tuple[timedelta, str]]:
        scenario = Scenario(severity="sev1", ack_after=ack_after, horizon="1h")
        return [(s.after, s.text) for s in preview(policy, scenario) if s.what == "automation"]

    late, early = shown("40m"), shown("20m")
    assert late[:3] == [
        (timedelta(0), "Automation 'page the secondary' waits 0:30:00"),
        (timedelta(minutes=30), "Automation 'page the secondary': paged <@U0BOB0002>"),
        (timedelta(minutes=30), "Automation 'page the secondary': posted in #payments"),
    ]
    assert early[-1] == (
        timedelta(minutes=30),
        "Automation 'page the secondary' called off: unless held",
    )


async def test_slack_lists_the_rules_and_only_the_commander_skips_a_waiting_one(
    client, worker, slack, settings
):
    rules: list[dict[str, Any]] = [
        {"name": "say hello", "on": "declared", "do": [SAID]},
        {"name": "page the <secondary>", "on": "declared", "after": 60, "do": [{"escalate": ""}]},
    ]
    desk, state = await declare(client, policy_with(*rules), "Listed and skipped")
    async with serve_slack_app(settings, desk, slack, SECRET):
        found = await settled(lambda: desk.get(state.id), lambda s: s.channel is not None)
        assert found.channel is not None
        room, wait = found.channel.name, found.automations[0].id
        alice, bob = Person(slack, ALICE), Person(slack, BOB)
        await settled(lambda: automation_log(desk, state.id), lambda f: len(f) >= 2)
        listing = (await alice.types("/incident automations", room)).text
        print(f"\n{listing}")
        assert f"• #{wait} *page the &lt;secondary&gt;* fires <!date^" in listing
        assert "Automation 'say hello': posted in the incident channel" in listing
        refused = (await bob.types(f"/incident automations skip {wait}", room)).text
        assert "automations needs role:commander" in refused
        await alice.types(f"/incident automations skip {wait}", room)
        after = (await alice.types(f"/incident automations {state.number}", "general")).text
        print(after)
    assert "fires" not in after
    assert "Automation 'page the &lt;secondary&gt;' skipped by <@U0ALICE01>" in after
    assert (await desk.get(state.id)).automations == []
    with pytest.raises(CommandRefused, match=f"no automation #{wait} waits"):
        await desk.command(state.id, cmd.SkipAutomation(wait=int(wait), by=ALICE))


async def test_a_webhook_is_signed_retried_after_a_500_and_a_400_is_noted(
    client, worker, slack, monkeypatch
):
    monkeypatch.setenv("INCIDENT_TEST_HOOK_SECRET", "s3cret")  # the worker runs in this process
    got, receiver = list[tuple[str, Any, bytes]](), FastAPI()

    @receiver.post("/{name}/{token}")
    async def hook(name: str, request: Request) -> Response:
        """`flaky`: a server error on each delivery's first attempt; `refusing`: always 400."""
        delivery = request.headers["x-incident-delivery"]
        first = all(h["x-incident-delivery"] != delivery for _, h, _ in got)
        got.append((name, request.headers, await request.body()))
        return Response(status_code={"flaky": 500 if first else 200, "refusing": 400}[name])

    async with serve_http(receiver) as url:
        steps = [
            {"webhook": {"url": f"{url}/flaky/t0k3n", "secret_env": "INCIDENT_TEST_HOOK_SECRET"}},
            {"webhook": {"url": f"{url}/refusing/t0k3n"}},
            {"escalate": "after the webhooks"},
        ]
        policy = policy_with({"name": "bridge", "on": "declared", "do": steps})
        desk, state = await declare(client, policy, "Webhooks")
        _, private = await declare(client, policy, "Secret merger leak", private=True)
        for incident in (state, private):
            await settled(
                functools.partial(desk.get, incident.id),
                lambda s: any("HTTP 400" in e.text for e in s.timeline),
            )
    found = await desk.get(state.id)
    print("\n".join(["", *(f"{e.kind}: {e.text}" for e in found.timeline)]))
    sent = [(name, h, json.loads(body), body) for name, h, body in got]
    flaky = [(h, body, raw) for name, h, body, raw in sent if name == "flaky"]
    mine = [(h, raw) for h, body, raw in flaky if body["incident"]["id"] == state.id]
    assert len(mine) == 2, "a server error is tried again, and delivered once"
    assert mine[0][0]["x-incident-delivery"] == mine[1][0]["x-incident-delivery"]
    signed = hmac.new(b"s3cret", mine[1][1], hashlib.sha256).hexdigest()
    assert mine[1][0]["x-incident-signature"] == f"sha256={signed}"
    body = json.loads(mine[1][1])
    assert body["rule"] == "bridge" and body["event"]["kind"] == "declared"
    assert body["incident"]["title"] == "Webhooks"
    refusals = [b for name, _, b, _ in sent if name == "refusing"]
    assert [b["incident"]["id"] for b in refusals].count(state.id) == 1, "a 400 is not retried"
    texts = [e.text for e in found.timeline]
    assert texts.count("Automation 'bridge': called the webhook at 127.0.0.1") == 2
    noted = [t for t in texts if t.startswith("could not call the webhook of automation 'bridge'")]
    assert len(noted) == 1 and noted[0].endswith("127.0.0.1 refused the webhook: HTTP 400")
    assert found.escalation_level == 1 and not any("t0k3n" in t for t in texts)
    hidden = next(b for _, _, b, _ in sent if b["incident"]["id"] == private.id)
    assert hidden["incident"] == {
        "id": private.id,
        "label": private.label,
        "severity": "sev2",
        "status": "investigating",
    }
    assert hidden["event"] == {"kind": "declared"}

"""A rule's wait is a deadline of the incident's own loop, kept in its state: it survives a
worker killed with SIGKILL (real processes: dev server, emulator, ``python worker.py``) and a
continue-as-new (the session's worker), and fires exactly once either way. The timer it waits
on carries the rule's name, which the Web UI shows."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from temporalio.api.enums.v1 import EventType

from tests import test_cli, test_durability
from tests.conftest import seconds_policy
from tests.support import every_run
from tests.test_automations import ALICE, settled
from tests.test_cli import incident
from tests.test_durability import (
    STICKY_TIMEOUT,
    StartStack,
    channel_notices,
    keyed,
    sleep_until,
    wait_for_notices,
)
from tests.test_timers import declare
from workflows.lifecycle import commands as cmd
from workflows.models import Declaration, Status
from workflows.policy import Policy
from workflows.preview import dry_run

start_stack = test_durability.start_stack  # its own dev server, emulator and worker processes
api_url = test_cli.api_url  # the API in front of the session's worker
RULE = {
    "name": "page the secondary",
    "on": "declared",
    "if": 'incident.severity == "sev1"',
    "after": 3,
    "unless": 'incident.status != "investigating"',
    "do": [{"post": {"text": "{label} still investigating: paging the secondary"}}],
}


def waiting_policy(**more: Any) -> Policy:
    return Policy.model_validate({**seconds_policy().model_dump(), **more, "automations": [RULE]})


def ran(entries: list[str]) -> list[str]:
    return [t for t in entries if t.startswith("Automation 'page the secondary': ")]


async def test_a_waiting_rule_fires_once_across_a_sigkilled_worker(start_stack: StartStack):
    stack = await start_stack()
    desk = stack.desk(waiting_policy())
    state, _ = await desk.declare(
        Declaration(title="Worker dies while a rule waits", severity="sev1", commander=ALICE)
    )
    stack.worker.kill()  # no goodbye: the rule's wait is Temporal's, not the worker's
    declared = state.declared_at.timestamp()
    await sleep_until(declared + 4.5)  # its wait ended while no worker ran
    assert keyed(await channel_notices(stack.slack, state), "automation-") == []
    await stack.worker.started()
    restarted = time.time()
    notices = await wait_for_notices(
        stack.slack,
        state,
        lambda found: bool(keyed(found, "automation-")),
        timeout=STICKY_TIMEOUT + 20,
    )
    await sleep_until(time.time() + 2)  # room for a second copy, were there one
    notices = await channel_notices(stack.slack, state)
    assert len(keyed(notices, "automation-")) == 1
    timeline = [e.text for e in (await desk.get(state.id)).timeline]
    assert ran(timeline) == ["Automation 'page the secondary': posted in the incident channel"]
    print(
        f"\nworker back {restarted - declared:.1f}s after the declaration; the rule fired "
        f"{float(keyed(notices, 'automation-')[0]['ts']) - restarted:.2f}s later\n"
        + "\n".join(t for t in timeline if "utomation" in t)
    )


async def test_a_waiting_rule_fires_once_after_continue_as_new(client, worker, slack):
    policy = waiting_policy(history={"continue_as_new_once_open": True})
    desk, state = await declare(client, policy, "Continued while a rule waits")
    done = await settled(
        lambda: desk.get(state.id), lambda s: bool(ran([e.text for e in s.timeline])), 15
    )
    runs = await every_run(client, state.id)
    assert len(runs) >= 2, "the incident continued as new while the rule waited"
    assert ran([e.text for e in done.timeline]) == [
        "Automation 'page the secondary': posted in the incident channel"
    ]
    assert done.automations == []
    assert done.channel is not None
    posts = [
        m
        for m in slack.messages(done.channel.id)
        if m.get("metadata", {}).get("event_payload", {}).get("key", "").startswith("automation-")
    ]
    assert len(posts) == 1
    # The loop's timer in the new run is the rule's: the Web UI names it.
    timers = [
        e.user_metadata.summary
        for e in runs[-1].events
        if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED and e.HasField("user_metadata")
    ]
    assert timers, "the rule's wait is a timer of the new run"
    assert b"page the secondary" in timers[0].data
    # So is the activity of its step.
    steps = [
        e.user_metadata.summary.data
        for e in runs[-1].events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.HasField("user_metadata")
    ]
    assert any(b"post the automation 'page the secondary' message" in s for s in steps), steps


async def test_a_rule_whose_unless_holds_does_not_fire_after_continue_as_new(client, worker, slack):
    policy = waiting_policy(history={"continue_as_new_once_open": True})
    desk, state = await declare(client, policy, "Identified before the wait ends")
    await desk.command(state.id, cmd.SetStatus(status=Status.IDENTIFIED))
    done = await settled(
        lambda: desk.get(state.id),
        lambda s: any("called off" in e.text for e in s.timeline),
        15,
    )
    assert ran([e.text for e in done.timeline]) == []


async def test_the_dry_run_reproduces_what_a_live_run_did(client, worker, slack):
    rules = [
        RULE,
        {"name": "comms", "on": "severity_changed", "if": 'event.to == "sev1"',
         "do": [{"assign": {"role": "comms_lead", "user": "U0CAROL03"}}]},
        {"name": "late", "on": "acknowledged", "after": 30, "do": [{"escalate": ""}]},
        {"name": "note", "on": "resolved", "do": [{"action_item": {"text": "customer note"}}]},
    ]  # fmt: skip
    policy = Policy.model_validate({**seconds_policy().model_dump(), "automations": rules})
    desk, state = await declare(client, policy, "Live, then dry")
    await desk.command(state.id, cmd.SetSeverity(severity="sev2"))
    await desk.command(state.id, cmd.SetSeverity(severity="sev1"))
    await settled(lambda: desk.get(state.id), lambda s: bool(ran([e.text for e in s.timeline])))
    await desk.command(state.id, cmd.Acknowledge(by=ALICE))
    await desk.command(state.id, cmd.Resolve(message="done"))
    live = await desk.get(state.id)
    said = [(e.at - live.declared_at, e.text) for e in live.timeline if "Automation '" in e.text]
    dry = [(s.after, s.text) for s in dry_run(policy, live, datetime.now(UTC))]
    print("\n".join(["", *(f"{after} {text}" for after, text in dry)]))
    assert [text for _, text in dry] == [text for _, text in said]
    assert "Automation 'late' called off: resolved" in [text for _, text in dry]


async def test_the_cli_tries_a_policy_files_rules_on_a_past_incident(
    client, worker, api_url, tmp_path
):
    desk, state = await declare(client, seconds_policy(), "Tried from the command line")
    await desk.command(state.id, cmd.Resolve(message="done"))
    rules = tmp_path / "policy.toml"
    rules.write_text(
        '[severities.sev1]\n\n[[automations]]\nname = "note"\non = "resolved"\n'
        'do = [{ action_item = { text = "customer note" } }]\n'
    )
    tried = await incident("automations", "test", str(rules), "--incident", state.id, url=api_url)
    assert tried.code == 0, tried.err
    assert "Automation 'note': action item 'customer note'" in tried.out
    rules.write_text(rules.read_text().replace('"resolved"', '"resolvd"'))
    refused = await incident("automations", "test", str(rules), "--incident", "1", url=api_url)
    assert refused.code == 1 and "automations.0.on" in refused.err


async def test_the_cli_lists_the_waiting_rule_and_the_commander_skips_it(client, worker, api_url):
    waits = {**RULE, "after": 60}
    policy = Policy.model_validate({**seconds_policy().model_dump(), "automations": [waits]})
    desk, state = await declare(client, policy, "Skipped from the command line")
    wait = (await desk.get(state.id)).automations[0].id
    listed = await incident("automations", "list", state.id, url=api_url)
    assert listed.code == 0, listed.err
    assert f"#{wait}  page the secondary  fires" in listed.out
    refused = await incident("automations", "skip", state.id, wait, url=api_url)  # as Bob
    assert refused.code == 1 and "automations needs role:commander" in refused.err
    skipped = await incident("automations", "skip", state.id, wait, url=api_url, user=ALICE)
    assert skipped.code == 0, skipped.err
    after = await incident("automations", "list", state.id, "--json", url=api_url)
    print(f"\n{listed.out}{after.out}")
    shown = json.loads(after.out)
    assert shown["waiting"] == []
    assert shown["ran"][-1]["text"] == f"Automation 'page the secondary' skipped by <@{ALICE}>"
    assert (await desk.get(state.id)).automations == []

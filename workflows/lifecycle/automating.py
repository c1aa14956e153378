"""The policy's automations run inside the incident's workflow: which events a change was,
which rules they trigger, their waits, and their steps as the product's own commands and
effects. Pure, like the rules table it carries commands through (``rules.check``,
``rules.carry_out``); the rule's format is ``workflows/automations.py``.

Once per event: the events are told from the state before and after each change (a command,
a fired deadline, an alert), in the handler that made it, so a replay tells the same ones.
A rule with ``after`` waits in the state (``IncidentState.automations``), a deadline of the
one deadline loop (``Deadline.AUTOMATION``), so continue-as-new carries it and a killed worker
loses nothing. Steps act as the product (no person): within ``[permissions]``, which stop
people, not the incident itself.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from workflows import automations as auto
from workflows.effects import Audience, CallWebhook, Effect, Notice, Post, RefreshTopic
from workflows.escalation import tiers
from workflows.escalation.deadlines import Deadline
from workflows.incident_types import members
from workflows.lifecycle import commands as cmd
from workflows.lifecycle import numbering, rules
from workflows.lifecycle.notices import CHANNEL, CommandRefused, post_notice
from workflows.models import IncidentState, Role, Status
from workflows.policy import EscalationTier, Policy
from workflows.requests import WebhookCall

ROLE_NAMES = ("commander", "tech_lead", "comms_lead")
Event = dict[str, Any]  # an event as the expressions read it (``automations.event``)


def incident_view(state: IncidentState, now: datetime) -> dict[str, Any]:
    """``incident`` as the expressions read it (docs/contract.md lists each field)."""
    roles, items = state.roles, state.action_items
    return {
        "id": state.id, "number": state.number, "label": state.label, "title": state.title,
        "summary": state.summary, "severity": state.severity, "status": state.status.value,
        "impact": state.impact.value, "components": list(state.components),
        "type": state.type or "", "private": state.private, "drill": state.drill,
        "commander": roles.commander or "", "tech_lead": roles.tech_lead or "",
        "comms_lead": roles.comms_lead or "", "responders": list(state.responders),
        "acknowledged": state.acknowledged_at is not None,
        "escalation_level": state.escalation_level,
        "age_seconds": (now - state.declared_at).total_seconds(),
        "public": state.public is not None, "alerts_firing": state.alerts.firing,
        "open_action_items": sum(1 for item in items if item.is_open),
    }  # fmt: skip


class Moment(NamedTuple):
    """What the triggers compare before and after a change: small, no copy of the state."""

    status: str
    severity: str
    acknowledged: bool
    roles: tuple[str | None, ...]
    updates: int
    alert_batches: int
    due_items: frozenset[int]


def moment(state: IncidentState) -> Moment:
    return Moment(
        state.status.value,
        state.severity,
        state.acknowledged_at is not None,
        tuple(state.roles.holder(Role(name)) for name in ROLE_NAMES),
        sum(1 for entry in state.timeline if entry.kind == "update"),
        state.alerts.batches,
        frozenset(item.id for item in state.action_items if item.reminders_sent),
    )


def events(before: Moment | None, state: IncidentState) -> list[dict[str, Any]]:
    """The events a change was; a new incident's (no moment before) is ``declared`` alone."""
    if before is None:
        return [auto.event("declared")]
    now, found = moment(state), list[dict[str, Any]]()
    moved = {"from": before.status, "to": now.status}
    if before.status != now.status:
        found.append(auto.event("status_changed", **moved))
        if now.status == Status.RESOLVED.value:
            found.append(auto.event("resolved", **moved))
        elif before.status == Status.RESOLVED.value:
            found.append(auto.event("reopened", **moved))
    if before.severity != now.severity:
        found.append(
            auto.event("severity_changed", **{"from": before.severity, "to": now.severity})
        )
    if now.acknowledged and not before.acknowledged:
        found.append(auto.event("acknowledged"))
    for role, was, holder in zip(ROLE_NAMES, before.roles, now.roles, strict=True):
        if holder is not None and holder != was:
            found.append(auto.event("role_assigned", role=role, user=holder, **{"from": was or ""}))
    if now.updates > before.updates:
        found.append(auto.event("updated"))
    if now.alert_batches > before.alert_batches:
        tally = state.alerts
        found.append(auto.event("alert", firing=tally.firing, resolved=tally.resolved))
    for item in (i for i in state.action_items if i.id in now.due_items - before.due_items):
        owner = item.owner or ""
        found.append(
            auto.event(
                "action_item_overdue", item_id=item.id, item_text=item.text, item_owner=owner
            )
        )
    return found


def automate(
    state: IncidentState, policy: Policy, before: Moment | None, now: datetime
) -> tuple[list[Effect], Moment]:
    """The rules the change's events trigger, each once: done now, or waiting for its ``after``.
    What the steps change triggers nothing, so rules cannot chase one another. Also the moment
    the next change's events are told from."""
    effects: list[Effect] = []
    for happened in events(before, state):
        for rule in (r for r in policy.automations if r.on == happened["kind"]):
            view = {"incident": incident_view(state, now), "event": happened}
            if not _answer(state, rule, rule.if_, view, now):
                continue
            if rule.after is not None:
                state.notices_posted += 1  # numbers the wait, so a commander can name it
                number, due = str(state.notices_posted), now + rule.after
                wait = auto.AutomationWait(
                    id=number, rule=rule.name, event=happened, due_at=due, while_open=state.is_open
                )
                state.automations.append(wait)
                state.note(now, "automation", None, f"Automation '{rule.name}' waits {rule.after}")
            elif not (rule.unless and _answer(state, rule, rule.unless, view, now, True)):
                effects += _run(state, policy, rule, happened, now)
        if happened["kind"] == "resolved":
            _call_off(state, now, [w for w in state.automations if w.while_open], "resolved")
    if state.archived_at is not None and state.automations:
        _call_off(state, now, state.automations, "the channel is archived")
    return effects, moment(state)


def fire(state: IncidentState, policy: Policy, deadline: Deadline, now: datetime) -> list[Effect]:
    """A due deadline's effects: a rule's wait ends here (``unless`` asked again), the
    others in ``tiers.fire``."""
    if deadline is not Deadline.AUTOMATION:
        return tiers.fire(state, policy, deadline, now)
    ended = [wait for wait in state.automations if wait.due_at <= now]
    state.automations = [wait for wait in state.automations if wait.due_at > now]
    effects: list[Effect] = []
    for wait in ended:
        rule = next(r for r in policy.automations if r.name == wait.rule)
        view = {"incident": incident_view(state, now), "event": wait.event}
        if rule.unless and _answer(state, rule, rule.unless, view, now, True):
            state.note(now, "automation", None, f"Automation '{rule.name}' called off: unless held")
            continue
        effects += _run(state, policy, rule, wait.event, now)
    return effects


def _call_off(
    state: IncidentState, now: datetime, waits: list[auto.AutomationWait], why: str
) -> None:
    for wait in waits:
        state.note(now, "automation", None, f"Automation '{wait.rule}' called off: {why}")
    state.automations = [wait for wait in state.automations if wait not in waits]


def _answer(
    state: IncidentState,
    rule: auto.Automation,
    source: str | None,
    view: dict[str, Any],
    now: datetime,
    failing: bool = False,
) -> bool:
    """An expression's answer; one the incident cannot give is noted and counts as ``failing``."""
    try:
        return source is None or auto.holds(source, view)
    except auto.Unevaluable as error:
        state.note(now, "problem", None, f"Automation '{rule.name}': {error}")
        return failing


def _run(
    state: IncidentState, policy: Policy, rule: auto.Automation, happened: Event, now: datetime
) -> list[Effect]:
    """Each step as the product would take it; one refused is noted and the others go on."""
    effects: list[Effect] = []
    for step in rule.do:
        try:
            done, more = _step(state, policy, rule.name, step, happened, now)
        except CommandRefused as refused:
            text = f"Automation '{rule.name}': did not {step.kind}: {refused.message}"
            state.note(now, "problem", None, text)
            continue
        state.note(now, "automation", None, f"Automation '{rule.name}': {done}")
        for post in (e for e in more if isinstance(e, Post) and e.notice is Notice.AUTOMATION):
            post.rule = rule.name  # its activity names the rule in the Web UI
        effects += more
    return effects


def _command(state: IncidentState, policy: Policy, c: cmd.Command, now: datetime) -> list[Effect]:
    rules.check(state, policy, c)  # nobody acts (``by`` None): the product, within the policy
    return rules.carry_out(state, policy, c, now)


def _step(
    state: IncidentState, policy: Policy, name: str, step: auto.Step, happened: Event, now: datetime
) -> tuple[str, list[Effect]]:
    """What one step did, for the timeline, and its effects."""
    why = f"automation '{name}'"
    if hook := step.webhook:
        state.notices_posted += 1  # the delivery's id, kept by every retry
        key, view = f"{state.id}-automation-{state.notices_posted}", incident_view(state, now)
        call = WebhookCall.of(key, name, hook.url, hook.secret_env, happened, view, state.private)
        host = urlsplit(hook.url).hostname  # not the path: it may hold a token
        return f"called the webhook at {host}", [CallWebhook(call=call)]
    if step.invite or step.page:
        people, paging = step.page or step.invite or [], bool(step.page)
        tier = EscalationTier(after=timedelta(0), notify=people, page=paging)
        said = "Paged by" if paging else "Invited by"
        notice = post_notice(state, Notice.AUTOMATION, CHANNEL, None, f"{said} {why}:", people)
        verb = "paged" if paging else "invited"
        return f"{verb} {', '.join(map(tiers.shown, people))}", tiers.escalation(
            state, policy, [tier], notice, now
        )
    if step.post or step.dm:
        return _say(state, name, step, now)
    if step.assign:
        role = Role(step.assign.role)
        c = cmd.AssignRole(role=role, user=step.assign.user)
        return f"{role.display.lower()} <@{c.user}>", _command(state, policy, c, now)
    if step.escalate is not None:
        c2 = cmd.Escalate(reason=f"{why}: {step.escalate}".rstrip(": "))
        return "escalated", _command(state, policy, c2, now)
    if step.action_item:
        item = step.action_item
        due_at = now + item.due_in if item.due_in else None
        add = cmd.AddActionItem(text=item.text, owner=item.owner, due=due_at)
        return f"action item '{item.text}'", _command(state, policy, add, now)
    if drill := step.drill:  # a drill's own rules schedule none: no chain of practice runs
        if state.drill:
            raise CommandRefused(f"{state.label} is a drill; a drill schedules no other drill")
        later = numbering.schedule(state, policy, name, drill, _fields(state, name), now)
        return f"scheduled a drill '{later.plan.declaration.title}' in {drill.after}", [later]
    assert step.set is not None
    return _set(state, policy, why, step.set, now)


def _set(
    state: IncidentState, policy: Policy, why: str, fields: auto.SetField, now: datetime
) -> tuple[str, list[Effect]]:
    effects: list[Effect] = []
    if fields.severity:
        c = cmd.SetSeverity(severity=fields.severity, reason=why)
        effects += _command(state, policy, c, now)
    if fields.status:
        effects += _command(state, policy, cmd.SetStatus(status=Status(fields.status)), now)
    if fields.title:
        effects += _command(state, policy, cmd.Rename(title=fields.title), now)
    if fields.summary is not None:
        state.summary = fields.summary
        effects.append(RefreshTopic())
    given = fields.model_dump(exclude_none=True)
    return "set " + ", ".join(f"{k} {v!r}" for k, v in given.items()), effects


def _fields(state: IncidentState, rule: str) -> dict[str, str]:
    """What a step's text may name (``automations.TEXT_FIELDS``)."""
    fields = {"label": state.label, "title": state.title, "severity": state.severity.upper()}
    fields |= {"status": state.status.value, "rule": rule}
    return fields | {"channel": f"#{state.channel.name}" if state.channel else ""}


def _say(
    state: IncidentState, name: str, step: auto.Step, now: datetime
) -> tuple[str, list[Effect]]:
    """A post or a direct message. A private incident's words stay in its channel: a post
    elsewhere is refused, and a direct message only reaches its members."""
    fields = _fields(state, name)
    if step.dm is not None:
        to = step.dm.to
        if state.private and to not in members(state):
            raise CommandRefused(f"{state.label} is private and {to} is not on it")
        text = step.dm.text.format_map(fields)
        dm = post_notice(state, Notice.AUTOMATION, [Audience.OWNER], None, text, [to])
        return f"sent {tiers.shown(to)} a direct message", [dm]
    assert step.post is not None
    where = step.post.channel
    if state.private and where != "incident":
        raise CommandRefused(f"{state.label} is private: its details stay in its channel")
    audience = {"incident": Audience.CHANNEL, "broadcast": Audience.BROADCAST}
    post = post_notice(state, Notice.AUTOMATION, [audience.get(where, Audience.NAMED)], None, "")
    post.text = step.post.text.format_map(fields)
    post.channel = where if where.startswith("#") else None
    shown = {"incident": "the incident channel", "broadcast": "the broadcast channel"}
    return f"posted in {shown.get(where, where)}", [post]

"""What the Slack app shows people: its answers in mrkdwn, and the modals it opens with what
their submissions say. Pure: dicts in, dicts out.

An answer is the incident as the Update left it, or why not. Everything people typed is
escaped here; mentions come only from ids the workflow holds. The modals' callback_ids are
``incident_declare``, ``incident_status`` and ``incident_resolve``; ``private_metadata`` is
the incident id (or, for declare, the channel it was asked from).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from clients.messages import escape
from workflows.lifecycle.visibility import IncidentSummary
from workflows.models import ActionItem, Impact, IncidentState, Status
from workflows.oncall.schedules import Shift
from workflows.policy import Policy
from workflows.text import USER_ID, drill_marked

# -- answers ---------------------------------------------------------------------------------
MAX_LISTED = 20
USER_MENTION = re.compile(rf"&lt;@({USER_ID})&gt;")  # a mention, once escaped
FAILED = ":warning: That did not work this time (the incident service's log says why); try again."


def headline(state: IncidentState | IncidentSummary) -> str:
    channel = f" · <#{state.channel.id}>" if state.channel else ""
    return drill_marked(
        f"*{state.label}* {state.severity.upper()} · {state.status.value}"
        f" — {escape(state.title)}{channel}",
        state.drill,
    )


def result(state: IncidentState) -> str:
    """The answer to a command: the incident now, and the timeline entry the command wrote."""
    last = state.timeline[-1] if state.timeline else None
    said = f"\n>{timeline_text(last.text)}" if last else ""
    return headline(state) + said


def timeline_text(text: str) -> str:
    """Timeline text mixes what people typed with user mentions the workflow wrote from ids it
    holds: all of it is escaped, then only plain user mentions come back (never ``<!channel>``,
    user groups or links)."""
    return USER_MENTION.sub(r"<@\1>", escape(text))


def declared(state: IncidentState, created: bool) -> str:
    verb = "Declared" if created else "Already open:"
    return f"{verb} {headline(state)}"


def listing(incidents: Sequence[IncidentState | IncidentSummary]) -> str:
    if not incidents:
        return "No open incidents."
    lines = [headline(s) for s in incidents[:MAX_LISTED]]
    if len(incidents) > MAX_LISTED:
        lines.append(f"…and {len(incidents) - MAX_LISTED} more")
    return "*Open incidents*\n" + "\n".join(lines)


def when(at: datetime | None) -> str:
    """A time each reader sees in their own zone (Slack's date token), UTC as the fallback."""
    if at is None:
        return "for now"
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{at:%Y-%m-%d %H:%M} UTC>"


def refused(reason: str) -> str:
    return f":no_entry: {escape(reason)}"


def _button(text: str, action_id: str, incident_id: str, style: str = "") -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action_id,
        "value": incident_id,
    }
    if style:
        button["style"] = style
    return button


def declared_blocks(state: IncidentState, created: bool) -> list[dict[str, Any]]:
    """The declarer's answer, with the kickoff's buttons, so the next step is one click."""
    actions = [
        _button("Acknowledge", "incident_acknowledge", state.id, "primary"),
        _button("Update status", "incident_status_modal", state.id),
        _button("Resolve", "incident_resolve_modal", state.id, "danger"),
    ]
    text = {"type": "mrkdwn", "text": declared(state, created)}
    return [{"type": "section", "text": text}, {"type": "actions", "elements": actions}]


# -- App Home: what one person has open ------------------------------------------------------

HOME_DONE = "home_action_done"  # a Done button's value: "<incident id> <item id>"


def home_view(
    incidents: Sequence[tuple[IncidentState, list[str]]],
    items: Sequence[tuple[IncidentState, ActionItem]],
    shifts: Sequence[Shift] | None,
    note: str = "",
) -> dict[str, Any]:
    """The Home tab: at most ``MAX_LISTED`` of each (Slack takes 100 blocks); ``shifts`` None
    when the schedules did not answer."""
    out: list[dict[str, Any]] = [_context(note)] if note else []
    out.append({"type": "header", "text": _plain("Your open incidents")})
    out += [_section(f"{headline(s)}\nYou are *{', '.join(r)}*") for s, r in incidents[:MAX_LISTED]]
    out += [] if incidents else [_context("No open incident has you in a role or as a responder.")]
    out.append({"type": "header", "text": _plain("Your open action items")})
    for state, item in items[:MAX_LISTED]:
        due = f" · due {when(item.due_at)}" if item.due_at else ""
        done = _button("Done", HOME_DONE, f"{state.id} {item.id}", "primary")
        text = f"*{state.label}* #{item.id} {escape(item.text[:2000])}{due}"
        out.append({**_section(text), "accessory": done})
    out += [] if items else [_context("No open action item is yours.")]
    out.append({"type": "header", "text": _plain("Your next on-call shifts")})
    for shift in (shifts or [])[:MAX_LISTED]:  # each shift's user is its schedule's name
        out.append(_section(f"*{escape(shift.user)}*: {when(shift.start)} to {when(shift.end)}"))
    if not shifts:
        unread = "The schedules did not answer; open this tab again in a moment."
        out.append(_context(unread if shifts is None else "No on-call shift in the next 14 days."))
    return {"type": "home", "blocks": out}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


# -- modals ----------------------------------------------------------------------------------

DECLARE = "incident_declare"
PRIVATE = "private"  # the declare form's answer for a private incident
REFUSED_UNDER = ["title", "severity", "template", "type"]  # the declare form's checked fields
STATUS = "incident_status"
RESOLVE = "incident_resolve"

View = dict[str, Any]


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text[:150], "emoji": True}


def _option(value: str, text: str, description: str = "") -> dict[str, Any]:
    option: dict[str, Any] = {"text": _plain(text), "value": value}
    if description:
        option["description"] = _plain(description[:75])
    return option


def _input(
    block_id: str, label: str, element: dict[str, Any], optional: bool = False
) -> dict[str, Any]:
    element = {"action_id": block_id, **element}
    fields = {"block_id": block_id, "label": _plain(label), "element": element}
    return {"type": "input", **fields, "optional": optional}


def _text(max_length: int, multiline: bool = False, initial: str = "") -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "max_length": max_length}
    if multiline:
        element["multiline"] = True
    if initial:
        element["initial_value"] = initial
    return element


def _select(options: list[dict[str, Any]], initial: dict[str, Any] | None = None) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "static_select", "options": options}
    if initial is not None:
        element["initial_option"] = initial
    return element


def _modal(callback_id: str, title: str, submit: str, metadata: str, blocks: list[Any]) -> View:
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": _plain(title[:24]),
        "submit": _plain(submit),
        "close": _plain("Cancel"),
        "private_metadata": metadata,
        "blocks": blocks,
    }


def declare_modal(policy: Policy, channel_id: str, title: str = "") -> View:
    """Title, severity (with the policy's descriptions), impact, summary, components, template
    and type.

    With templates or types in the policy they come first, and title, severity and impact may
    be left empty for them to fill (no preset choice, which would always win over them, or
    fall outside a type's severities); what is still missing after it is an error under its
    field."""
    severities = [
        _option(name, name.upper(), severity.description)
        for name, severity in policy.severities.items()
    ]
    impacts = [_option(i.value, i.value.capitalize()) for i in Impact]
    templated = bool(policy.templates or policy.types)
    blocks: list[Any] = []
    if policy.types:
        kinds = [_option(n, n, kind.description) for n, kind in list(policy.types.items())[:100]]
        blocks.append(_input("type", "Type", _select(kinds), optional=True))
    if policy.templates:
        templates = [_option(name, name) for name in list(policy.templates)[:100]]
        blocks.append(_input("template", "Template", _select(templates), optional=True))
    blocks += [
        _input("title", "Title", _text(200, initial=title), optional=templated),
        _input(
            "severity",
            "Severity",
            _select(severities, None if templated else severities[-1]),
            optional=templated,
        ),
        _input("impact", "Impact", _select(impacts, None if templated else impacts[2]), templated),
        _input("summary", "What we know", _text(3000, multiline=True), optional=True),
    ]
    components = _text(500)
    components["placeholder"] = _plain("checkout, payments")
    blocks.append(_input("components", "Affected components", components, optional=True))
    # A select, not a checkbox: the same element every other field of the form uses.
    seen_by = [_option("everyone", "Everyone"), _option(PRIVATE, "Its members only (private)")]
    blocks.append(_input("private", "Who may see it", _select(seen_by), optional=True))
    return _modal(DECLARE, "Declare an incident", "Declare", channel_id, blocks)


def status_modal(incident_id: str, label: str, current: Status) -> View:
    ahead: list[Status] = [s for s in Status if s.rank > current.rank and s != Status.RESOLVED]
    options = [_option(s.value, s.value.capitalize()) for s in ahead or [current]]
    blocks = [
        _input("status", "New status", _select(options, options[0])),
        _input("message", "What changed", _text(3000, multiline=True), optional=True),
    ]
    return _modal(STATUS, f"Status of {label}", "Update", incident_id, blocks)


def resolve_modal(incident_id: str, label: str) -> View:
    blocks = [_input("message", "How it was resolved", _text(3000, multiline=True), optional=True)]
    return _modal(RESOLVE, f"Resolve {label}", "Resolve", incident_id, blocks)


def values(view: dict[str, Any]) -> dict[str, Any]:
    """A submitted view's answers by block id: text, the selected value, or selected values."""
    answers: dict[str, Any] = {}
    for block_id, actions in (view.get("state") or {}).get("values", {}).items():
        for answer in actions.values():
            if "selected_options" in answer:
                answers[block_id] = [o["value"] for o in answer["selected_options"] or []]
            elif "selected_option" in answer:
                selected = answer["selected_option"]
                answers[block_id] = selected["value"] if selected else None
            else:
                answers[block_id] = answer.get("value") or ""
    return answers


def declaration_fields(answers: dict[str, Any]) -> dict[str, Any]:
    """What the declare form says, as Declaration fields (only those given, so a template
    fills the rest)."""
    fields: dict[str, Any] = {}
    for key in ("title", "severity", "impact", "template", "type"):
        if (answers.get(key) or "").strip():
            fields[key] = answers[key].strip()
    if (answers.get("summary") or "").strip():
        fields["summary"] = answers["summary"].strip()
    if answers.get("private") == PRIVATE:
        fields["private"] = True  # else what its type says
    components = answers.get("components")
    if isinstance(components, str):
        components = [c.strip() for c in components.split(",") if c.strip()]
    if components:
        fields["components"] = components
    return fields


def field_errors(error_text: str, block_ids: list[str]) -> dict[str, str]:
    """Slack's ``response_action: errors``: each message under the block it is about."""
    errors: dict[str, str] = {}
    for part in error_text.split("; "):
        field, _, message = part.partition(": ")
        block = field if field in block_ids else block_ids[0]
        errors[block] = (message or part)[:150]  # plain text: Slack shows it as is
    return errors

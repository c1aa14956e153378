"""What the Slack app answers, in mrkdwn: the incident as the Update left it, or why not.

Everything people typed is escaped here; mentions come only from ids the workflow holds.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from clients.messages import escape
from workflows import policy
from workflows.lifecycle.visibility import IncidentSummary
from workflows.models import IncidentState
from workflows.text import USER_ID

MAX_LISTED = 20
USER_MENTION = re.compile(rf"&lt;@({USER_ID})&gt;")  # a mention, once escaped
FAILED = ":warning: That did not work this time (the incident service's log says why); try again."


def headline(state: IncidentState | IncidentSummary) -> str:
    channel = f" · <#{state.channel.id}>" if state.channel else ""
    return policy.drill_marked(
        f"*{state.label}* {state.severity.upper()} · {state.status.value}"
        f" — {escape(state.title)}{channel}",
        state.drill,
    )


def result(state: IncidentState) -> str:
    """The answer to a command: the incident now, and the timeline entry the command wrote."""
    last = state.timeline[-1] if state.timeline else None
    said = f"\n>{_timeline_text(last.text)}" if last else ""
    return headline(state) + said


def _timeline_text(text: str) -> str:
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

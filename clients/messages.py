"""How incident notices look in Slack: Block Kit with a plain-text fallback, and the topic.

Rendering lives with the clients, not the workflow, so the wording can change without
touching the history of any running incident.
"""

from __future__ import annotations

import re
from typing import Any

from workflows.effects import Notice, Post
from workflows.models import Status
from workflows.requests import IncidentBrief
from workflows.resolution.report import duration
from workflows.text import SLACK_USER_ID, drill_marked, incident_label

_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def escape(text: str) -> str:
    """``&``, ``<`` and ``>`` as Slack's entities; everything else is left as typed."""
    return text.translate(_ESCAPES)


Blocks = list[dict[str, Any]]

STATUS_EMOJI = {
    Status.INVESTIGATING: ":mag:",
    Status.IDENTIFIED: ":bulb:",
    Status.MONITORING: ":eyes:",
    Status.RESOLVED: ":white_check_mark:",
}
TOPIC_LIMIT = 250
PURPOSE_LIMIT = 250
MAX_FIELDS = 10
FIELD_LIMIT = 2000
_USER_GROUP = re.compile(r"^S[A-Z0-9]{2,20}$")


def mention(who: str | None) -> str:
    """Users as ``<@U…>``, user groups as ``<!subteam^S…>``; anything else (an email, a
    handle) is shown as escaped text, so only an id can ever become a live mention."""
    if not who:
        return "unassigned"
    if SLACK_USER_ID.match(who):
        return f"<@{who}>"
    if _USER_GROUP.match(who):
        return f"<!subteam^{who}>"
    return escape(who)


def channel_link(brief: IncidentBrief) -> str:
    return f"<#{brief.channel.id}>" if brief.channel else "(channel not created)"


def cut(text: str, limit: int) -> str:
    """At most ``limit`` characters of escaped text, never ending inside an entity."""
    if len(text) <= limit:
        return text
    text = text[: limit - 1]
    amp = text.rfind("&", max(0, len(text) - 4))
    if amp >= 0 and ";" not in text[amp:]:
        text = text[:amp]
    return text + "…"


def topic(brief: IncidentBrief) -> str:
    kind = f"{escape(brief.type)} · " if brief.type else ""
    text = drill_marked(
        f"{brief.severity.upper()} · {kind}{brief.status.value.capitalize()} · "
        f"IC {mention(brief.commander)} · {incident_label(brief.number)}: {escape(brief.title)}",
        brief.drill,
    )
    return cut(text, TOPIC_LIMIT)


def purpose(incident_id: str, label: str, title: str, is_drill: bool = False) -> str:
    """The channel purpose also marks the channel as this incident's, for retries: the
    marker at its end survives however long the title is."""
    marker = f" [{incident_id}]"
    text = drill_marked(f"{label}: {escape(title)}", is_drill)
    return cut(text, PURPOSE_LIMIT - len(marker)) + marker


def _headline(post: Post, brief: IncidentBrief) -> str:
    label = f"*{incident_label(brief.number)}* {brief.severity.upper()}"
    status = f"{STATUS_EMOJI[brief.status]} *{brief.status.value}*"
    title = escape(brief.title)
    return {
        Notice.KICKOFF: f":rotating_light: {label} declared: *{title}*",
        Notice.ANNOUNCEMENT: f":rotating_light: {label} declared: *{title}* in "
        f"{channel_link(brief)} · IC {mention(brief.commander)}",
        Notice.ACKNOWLEDGED: f":raised_hand: {label} acknowledged by {mention(post.actor)}",
        Notice.STATUS_CHANGED: f"{label} is now {status}: {title} · {channel_link(brief)}",
        Notice.UPDATE: f":memo: {label} update ({status}): {title}",
        Notice.SEVERITY_CHANGED: f":arrows_counterclockwise: {label} is now "
        f"*{brief.severity.upper()}*: {title} · {channel_link(brief)}",
        Notice.RENAMED: f":pencil2: {label} renamed: *{title}* · {channel_link(brief)}",
        Notice.ESCALATED: f":rotating_light: {label} escalated to level {brief.escalation_level}",
        Notice.RESOLVED: f":white_check_mark: {label} resolved: *{title}* · {channel_link(brief)}",
        Notice.REOPENED: f":leftwards_arrow_with_hook: {label} reopened: *{title}* · "
        f"{channel_link(brief)}",
        Notice.UPDATE_DUE: f":alarm_clock: {label}: a status update is due",
        Notice.UPDATE_OVERDUE: f":warning: {label}: status update overdue · {channel_link(brief)}",
        Notice.PAGED: f":pager: {label} needs you: *{title}* · {channel_link(brief)}",
        Notice.AUTOMATION: f":robot_face: {label}: *{title}*",
    }.get(post.notice, f"{label}")


def _kickoff_fields(brief: IncidentBrief) -> list[str]:
    fields = [
        f"*Severity*\n{brief.severity.upper()}: {escape(brief.severity_description)}",
        f"*Status*\n{STATUS_EMOJI[brief.status]} {brief.status.value}",
        f"*Impact*\n{brief.impact.value}",
        f"*Incident commander*\n{mention(brief.commander)}",
    ]
    if brief.type:
        described = f": {brief.type_description}" if brief.type_description else ""
        fields.insert(1, f"*Type*\n{escape(brief.type + described)}")
    if brief.tech_lead or brief.comms_lead:
        fields.append(
            f"*Tech lead*\n{mention(brief.tech_lead)}\n*Comms lead*\n{mention(brief.comms_lead)}"
        )
    if brief.acknowledged_by:
        fields.append(f"*Acknowledged*\nby {mention(brief.acknowledged_by)}")
    if brief.components:
        fields.append("*Affected components*\n" + escape(", ".join(brief.components)))
    if brief.next_update_due and brief.status is not Status.RESOLVED:
        fields.append(
            f"*Next update due*\n<!date^{int(brief.next_update_due.timestamp())}"
            f"^{{time}}|{brief.next_update_due:%H:%M} UTC>"
        )
    return fields


def similar(brief: IncidentBrief) -> str:
    """The earlier incidents like this one, each with how it was resolved (people's words,
    escaped); within one section's 3,000 characters."""
    lines = ["*Similar earlier incidents*"]
    for seen in brief.similar:
        parts = [f"*{seen.label}* {escape(seen.title)}", escape(", ".join(seen.components))]
        how = f"{seen.status.value}: {escape(seen.resolution)}" if seen.resolution else ""
        lines.append(" · ".join(part for part in [*parts, how or seen.status.value] if part))
    return cut("\n".join(lines), 3000)


def _button(text: str, action_id: str, value: str, style: str | None = None) -> dict[str, Any]:
    button = {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action_id,
        "value": value,
    }
    return button | ({"style": style} if style else {})


def kickoff_blocks(brief: IncidentBrief, incident_url: str) -> Blocks:
    """The kickoff's facts and its buttons; once resolved, a "Resolved" line instead."""
    fields = _kickoff_fields(brief)
    # Block Kit takes at most 10 fields of 2000 characters; past that the kickoff would be lost.
    blocks: Blocks = [
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": cut(f, FIELD_LIMIT)} for f in fields[:MAX_FIELDS]
            ],
        }
    ]
    if brief.similar:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": similar(brief)}})
    if brief.status is Status.RESOLVED:
        at = f" at {brief.resolved_at:%Y-%m-%d %H:%M} UTC" if brief.resolved_at else ""
        line = f":white_check_mark: *Resolved*{at} · <{incident_url}|Open in Temporal>"
        if url := brief.retrospective_url:  # a link, whatever a person typed in it
            line += f" · <{escape(url).replace('|', '%7C')}|Retrospective>"
        return [*blocks, {"type": "context", "elements": [{"type": "mrkdwn", "text": line}]}]
    buttons = [] if brief.acknowledged_by else [acknowledge_button(brief)]
    buttons += [
        _button("Update status", "incident_status_modal", brief.id),
        _button("Resolve", "incident_resolve_modal", brief.id, "danger"),
        open_button(incident_url),
    ]
    hint = escape("`/incident update <message>` posts an update · `/incident help` for more")
    return [
        *blocks,
        {"type": "actions", "elements": buttons},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": hint}]},
    ]


def announcement_facts(brief: IncidentBrief) -> str:
    """What the broadcast announcement keeps current: status, severity, commander, how long."""
    if brief.resolved_at is not None:
        took = f"resolved after {duration(brief.resolved_at - brief.declared_at)}"
    else:  # Slack shows the time since in each reader's terms, and keeps it current
        at = brief.declared_at
        took = f"declared <!date^{int(at.timestamp())}^{{ago}}|{at:%H:%M} UTC>"
    status = f"{STATUS_EMOJI[brief.status]} *{brief.status.value.capitalize()}*"
    return f"{status} · {brief.severity.upper()} · IC {mention(brief.commander)} · {took}"


def announcement_blocks(brief: IncidentBrief, incident_url: str) -> Blocks:
    """The announcement's facts and its buttons: Join (its channel, while open and public)."""
    facts = {"type": "context", "elements": [{"type": "mrkdwn", "text": announcement_facts(brief)}]}
    buttons = [open_button(incident_url)]
    if brief.channel and not brief.private and brief.status is not Status.RESOLVED:
        buttons.insert(0, _button("Join", "incident_join", brief.id, "primary"))
    return [facts, {"type": "actions", "elements": buttons}]


def page_buttons(brief: IncidentBrief, incident_url: str) -> list[dict[str, Any]]:
    """A page's direct message: the kickoff's Acknowledge (the same action), until someone has."""
    ack = [] if brief.acknowledged_by else [acknowledge_button(brief)]
    return [*ack, open_button(incident_url)]


def acknowledge_button(brief: IncidentBrief) -> dict[str, Any]:
    return _button("Acknowledge", "incident_acknowledge", brief.id, "primary")


def open_button(incident_url: str) -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": "Open in Temporal"},
        "url": incident_url,
        "action_id": "open_incident_workflow",
    }


def render(post: Post, brief: IncidentBrief, incident_url: str) -> tuple[str, Blocks]:
    """The fallback text and the blocks of one notice."""
    headline = drill_marked(_headline(post, brief), brief.drill)
    lines = [headline]
    # People's words are escaped; the mentions after them come only from ids.
    plain = [mention(m) for m in post.mentions if m not in post.why]
    said = " ".join(part for part in [escape(post.text), *plain] if part)
    if said:
        lines.append(said)
    # Who was told because of what they are (on call), one a line: "<@U…>, on call for x".
    lines += [f"{mention(m)}, {escape(post.why[m])}" for m in post.mentions if m in post.why]
    if post.actor and post.notice not in (Notice.ACKNOWLEDGED,):
        lines.append(f"_by {mention(post.actor)}_")
    text = "\n".join(lines)
    blocks: Blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": cut(text, 3000)}}]
    if post.notice is Notice.KICKOFF:
        blocks += kickoff_blocks(brief, incident_url)
    elif post.notice is Notice.ANNOUNCEMENT:
        blocks += announcement_blocks(brief, incident_url)
        text += f"\n{announcement_facts(brief)}"
    elif post.notice is Notice.PAGED:
        blocks.append({"type": "actions", "elements": page_buttons(brief, incident_url)})
    if post.notice in (Notice.KICKOFF, Notice.ANNOUNCEMENT):
        text += f"\n{incident_url}"
    return text, blocks


def metadata(incident_id: str, key: str) -> dict[str, Any]:
    """Message metadata that lets a retried post find the message it already sent."""
    return {
        "event_type": "incident_notice",
        "event_payload": {"incident_id": incident_id, "key": key},
    }

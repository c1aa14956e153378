"""What Temporal shows and keeps of an incident: its search attributes and details in the Web
UI, and the Update ids it applied (the claim on its idempotency key: ``numbering``).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar, cast

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.api.common.v1 import Payload
from temporalio.common import (
    RawValue,
    SearchAttributeKey,
    SearchAttributePair,
    SearchAttributeUpdate,
    TypedSearchAttributes,
)

from workflows.models import Channel, Impact, IncidentState, Roles, Status
from workflows.text import incident_label

# The list view of an incident, kept in its workflow's memo so listing needs no query.
#
# Only fields that change with a person's command or an escalation are here (not the update
# cadence), so a reminder fire writes no memo to history. Timeline, action items and the summary
# text are read from the incident itself (``GET /incidents/{id}``).
MEMO_KEY = "incident"


class IncidentSummary(BaseModel):
    id: str
    number: int
    title: str
    severity: str
    status: Status
    impact: Impact
    components: list[str] = Field(default_factory=list)
    roles: Roles = Field(default_factory=Roles)
    channel: Channel | None = None
    declared_at: datetime
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    escalation_level: int = 0
    archived_at: datetime | None = None
    idempotency_key: str | None = None
    drill: bool = False
    type: str | None = None
    private: bool = False  # then its title is a stand-in and its roles and components unset

    @property
    def label(self) -> str:
        return incident_label(self.number)


# The list view's fields, in its order: computed once, every publish of a change reads them.
SUMMARY_ORDER = tuple(IncidentSummary.model_fields)
SUMMARY_FIELDS = set(SUMMARY_ORDER)


def summarize(state: IncidentState) -> IncidentSummary:
    return IncidentSummary.model_validate(state.model_dump(include=SUMMARY_FIELDS))


def memo_of(state: IncidentState) -> dict[str, Any]:
    """JSON-ready, so the memo decodes the same with any data converter. ``drill`` is there
    only for drills, ``type`` only for a typed incident: the memo of every other incident stays
    as recorded histories have it. Dumped from the state itself, in IncidentSummary's order (a
    summary built first took three times as long)."""
    kept = (("drill", state.drill), ("type", state.type), ("private", state.private))
    unset = {name for name, keep in kept if not keep}
    if state.private:  # Temporal's operators are not its members: no title, people or text
        unset |= {"roles", "components"}
    view = state.model_dump(mode="json", include=SUMMARY_FIELDS - unset)
    if state.private:
        view["title"] = summary(state)
    return {name: view[name] for name in SUMMARY_ORDER if name in view}


INCIDENT_NUMBER = SearchAttributeKey.for_int("IncidentNumber")
INCIDENT_SEVERITY = SearchAttributeKey.for_keyword("IncidentSeverity")
INCIDENT_STATUS = SearchAttributeKey.for_keyword("IncidentStatus")
INCIDENT_COMMANDER = SearchAttributeKey.for_keyword("IncidentCommander")
INCIDENT_CHANNEL = SearchAttributeKey.for_keyword("IncidentChannel")
# The channel's id: what Slack sends from a private or renamed channel, whose name may differ.
INCIDENT_CHANNEL_ID = SearchAttributeKey.for_keyword("IncidentChannelId")
INCIDENT_TYPE = SearchAttributeKey.for_keyword("IncidentType")
SEARCH_ATTRIBUTES: list[SearchAttributeKey[Any]] = [
    INCIDENT_NUMBER,
    INCIDENT_SEVERITY,
    INCIDENT_STATUS,
    INCIDENT_COMMANDER,
    INCIDENT_CHANNEL,
    INCIDENT_TYPE,
    INCIDENT_CHANNEL_ID,
]

# Every visibility query about incidents starts here; the clauses name the keys above.
INCIDENTS = "WorkflowType = 'IncidentWorkflow'"


def where(key: SearchAttributeKey[Any], op: str, value: str | int) -> str:
    """One filter on an incident search attribute, a keyword quoted as Temporal's list filter
    grammar wants it, so no value can end the string and add a clause of its own."""
    if isinstance(value, int):
        return f"{key.name} {op} {value}"
    quoted = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"{key.name} {op} '{quoted}'"


def incidents_where(*clauses: str) -> str:
    """A visibility query for incident workflows matching every clause."""
    return " AND ".join([INCIDENTS, *clauses])


def search_attribute_specs() -> list[str]:
    """``IncidentNumber=Int`` and so on: the form the ``temporal`` CLI takes them in."""
    return [
        f"{key.name}={key.indexed_value_type.name.title().replace('_', '')}"
        for key in SEARCH_ATTRIBUTES
    ]


def summary(state: IncidentState) -> str:
    """The static summary the UI lists the workflow under: ``INC-42 SEV1 Checkout failing``;
    ``Private incident INC-42`` when it is private."""
    drill = "DRILL " if state.drill else ""
    if state.private:
        return f"{drill}Private incident {state.label}"
    return f"{drill}{state.label} {state.severity.upper()} {state.title}"


def shown_at_start(state: IncidentState) -> dict[str, Any]:
    """What a new incident's start shows in Temporal before its first task runs (the start's
    keyword arguments): its summary, its search attributes, its list view."""
    pairs: list[SearchAttributePair[Any]] = [
        SearchAttributePair(INCIDENT_NUMBER, state.number),
        SearchAttributePair(INCIDENT_SEVERITY, state.severity),
        SearchAttributePair(INCIDENT_STATUS, "investigating"),
    ]
    if state.roles.commander and not state.private:
        pairs.append(SearchAttributePair(INCIDENT_COMMANDER, state.roles.commander))
    if state.type:
        pairs.append(SearchAttributePair(INCIDENT_TYPE, state.type))
    return {
        "static_summary": summary(state),
        "search_attributes": TypedSearchAttributes(pairs),
        "memo": {MEMO_KEY: memo_of(state)},
    }


def _values(state: IncidentState) -> list[Any]:
    """The search attributes' values, in ``SEARCH_ATTRIBUTES``' order (None: unset)."""
    return [
        state.number,
        state.severity,
        state.status.value,
        None if state.private else state.roles.commander,
        state.channel.name if state.channel else None,
        state.type,
        state.channel.id if state.channel else None,
    ]


def _details(state: IncidentState, problem: str | None) -> str:
    if state.private:  # no people, and a problem's text may name them
        commander, problem = "not shown (private)", None
    else:
        commander = state.roles.commander or "unassigned"
    lines = [
        f"**{summary(state)}**",
        f"Status: **{state.status.value}** · Impact: {state.impact.value}"
        + (f" · Type: {state.type}" if state.type else ""),
        f"Commander: {commander}",
        f"Channel: #{state.channel.name}" if state.channel else "Channel: not yet created",
        f"Escalation level: {state.escalation_level}"
        + (" (acknowledged)" if state.acknowledged_at else ""),
    ]
    if state.next_update_due:
        # isoformat, not strftime: that imports ``time`` on each call, through the sandbox.
        due = state.next_update_due.replace(tzinfo=None, microsecond=0).isoformat(" ")
        lines.append(f"Next update due: {due} UTC")
    if problem:
        lines.append(f"Last problem: {problem}")
    return "\n\n".join(lines)


# The memo's fields a change may alter in place, copied when compared (the rest are replaced).
IN_PLACE = ("components", "roles", "channel")
_replaced = operator.attrgetter(*(name for name in SUMMARY_ORDER if name not in IN_PLACE))


def _memo_fields(state: IncidentState) -> tuple[Any, ...]:
    channel = tuple(vars(state.channel).values()) if state.channel else None
    moved = (tuple(state.components), tuple(vars(state.roles).values()), channel)
    return (*_replaced(state), *moved)


def _held(attributes: TypedSearchAttributes) -> list[Any]:
    """The search attributes the run started with, as ``_values`` lists them: looked up by
    name (a key's hash is computed in Python, field by field), then checked whole."""
    by_name = {pair.key.name: pair for pair in attributes}
    found = [by_name.get(key.name) for key in SEARCH_ATTRIBUTES]
    return [
        pair.value if pair and pair.key == key else None
        for pair, key in zip(found, SEARCH_ATTRIBUTES, strict=True)
    ]


class Shown:
    """What this run (its EffectRunner) last showed of the incident in Temporal: what a change
    leaves as it was (a reminder's firing alters only the details) is neither built nor written."""

    def __init__(self, declared: IncidentState | None = None) -> None:
        # A new incident's start showed its declared state (``shown_at_start``); a run carried
        # over compares with what it holds. (The opening's channel rewrites both in any case.)
        self.values = _values(declared) if declared else None  # the search attributes' values
        self.memo = _memo_fields(declared) if declared else None  # the memo's, as compared
        self.details = ""

    def publish(self, state: IncidentState, problem: str | None = None) -> None:
        """Upsert only the search attributes and memo that changed; set the details."""
        values = _values(state)
        if values != self.values:
            # After the first publish, what this run last set is what it holds.
            was = self.values or _held(workflow.info().typed_search_attributes)
            updates: list[SearchAttributeUpdate[Any]] = [
                key.value_set(value) if value is not None else key.value_unset()
                for key, value, before in zip(SEARCH_ATTRIBUTES, values, was, strict=True)
                if before != value
            ]
            if updates:
                workflow.upsert_search_attributes(updates)
            self.values = values
        details = _details(state, problem)
        if details != self.details:
            workflow.set_current_details(details)
            self.details = details
        # workflow.memo() decodes once per run and again on upsert (memo_value: at every call).
        seen = _memo_fields(state)
        if seen != self.memo:
            view = memo_of(state)
            if workflow.memo().get(MEMO_KEY) != view:
                workflow.upsert_memo({MEMO_KEY: view})
            self.memo = seen


# -- idempotency ----------------------------------------------------------------------------

# Update ids an incident has applied, carried across continue-as-new.
#
# Temporal answers a repeated Update id with the first outcome, but only within one run. A
# client that retries a command (same id) after the incident continued as new would have it
# applied twice, so the ids travel in the state and a repeat is answered, not applied.
KEPT = 200  # the newest ids; a retry comes within seconds, not hundreds of commands later


def repeated(state: IncidentState) -> bool:
    """Whether the Update being handled was applied already (in this or an earlier run)."""
    info = workflow.current_update_info()
    return info is not None and info.id in state.applied_updates


def remember(state: IncidentState) -> None:
    info = workflow.current_update_info()
    if info is not None:
        state.applied_updates = [*state.applied_updates[-(KEPT - 1) :], info.id]


# -- replay ---------------------------------------------------------------------------------

T = TypeVar("T")
RECORDED = RawValue(Payload())


def sent_once(build: Callable[[], T]) -> T:
    """What an activity is sent, an Update answered or the run returns, built when it is sent;
    while this replays its history, a stand-in. Temporal keeps the payload each command sent
    the first time and drops a replayed command's (activities match by id and type, Updates by
    id), so a replay (every sticky-cache miss) neither renders nor encodes them again: the
    state, the opening's request, each message with its brief (docs/performance.md)."""
    return cast(T, RECORDED) if workflow.unsafe.is_replaying_history_events() else build()

"""Automations: a team's own rules in the policy (``[[automations]]``), run inside each
incident's workflow.

A rule names the event it waits for (``on``), may ask more of the incident and the event
(``if``, in Google's Common Expression Language), may wait (``after``, a deadline of the
workflow's one deadline loop, kept in the state) and be called off when its wait ends
(``unless``), then does its steps (``do``): the product's own commands and effects, carried
out by ``workflows.lifecycle.rules.automate``. Here: the rule's format and its checks when the
policy loads, the typed view the expressions read, and which events a change of the state is.
Pure; CEL is the ``common-expression-language`` package (a Rust extension, deterministic).
"""

from __future__ import annotations

import re
import string
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from temporalio import workflow

from workflows.text import SLACK_USER_ID, Duration

with workflow.unsafe.imports_passed_through():
    import cel

if TYPE_CHECKING:  # the state holds the rules' waits, so it imports this module
    from workflows.models import IncidentState

Trigger = Literal[
    "declared",
    "status_changed",
    "severity_changed",
    "acknowledged",
    "updated",
    "resolved",
    "reopened",
    "role_assigned",
    "action_item_overdue",
    "alert",
]
# The view an expression reads: every key always present, "" or 0 where nothing applies, so
# ``incident.type == "security"`` needs no null check. docs/contract.md describes each.
INCIDENT_FIELDS = {
    "id": "", "number": 0, "label": "", "title": "", "summary": "", "severity": "",
    "status": "", "impact": "", "components": [], "type": "", "private": False, "drill": False,
    "commander": "", "tech_lead": "", "comms_lead": "", "responders": [], "acknowledged": False,
    "escalation_level": 0, "age_seconds": 0.0, "public": False, "alerts_firing": 0,
    "open_action_items": 0,
}  # fmt: skip
EVENT_FIELDS = {
    "kind": "", "from": "", "to": "", "role": "", "user": "", "item_id": 0, "item_text": "",
    "item_owner": "", "firing": 0, "resolved": 0,
}  # fmt: skip
TEXT_FIELDS = {"label", "title", "severity", "status", "rule", "channel"}  # of a step's text
NAMED = re.compile(r"\b(incident|event)\.([A-Za-z_]\w*)")
LITERAL = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'")
ONCALL = "oncall:"
# Who a step names: a user id, an @handle, an email, a user group or ``oncall:<schedule>``.
PERSON = r"^(oncall:\S+|@\S+|[^@\s]+@[^@\s]+|[UWS][A-Z0-9]{2,20})$"
Person = Field(max_length=254, pattern=PERSON)


class Post(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # "incident" (its channel), "broadcast" (the organisation's) or a channel by "#name".
    channel: str = Field(default="incident", pattern=r"^(incident|broadcast|#[a-z0-9_-]{1,80})$")
    text: str = Field(min_length=1, max_length=2000)


class DirectMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: str = Person
    text: str = Field(min_length=1, max_length=2000)


class Assign(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["commander", "tech_lead", "comms_lead"]
    user: str = Field(pattern=SLACK_USER_ID.pattern)


class ActionItemStep(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=500)
    owner: str | None = Field(default=None, pattern=SLACK_USER_ID.pattern)
    due_in: Duration | None = None  # from when the step runs


class SetField(BaseModel):
    """A field of the incident, through its command: severity, status, title; or its summary."""

    model_config = ConfigDict(extra="forbid")
    severity: str | None = None
    status: Literal["identified", "monitoring", "resolved"] | None = None
    title: str | None = Field(default=None, min_length=1, max_length=200)
    summary: str | None = Field(default=None, max_length=3000)


class Step(BaseModel):
    """One thing a rule does: exactly one of these keys, ``{ page = "oncall:payments" }``."""

    model_config = ConfigDict(extra="forbid")
    invite: list[str] | None = Field(default=None, min_length=1, max_length=50)
    page: list[str] | None = Field(default=None, min_length=1, max_length=50)
    assign: Assign | None = None
    post: Post | None = None
    dm: DirectMessage | None = None
    escalate: str | None = Field(default=None, max_length=500)  # the reason
    action_item: ActionItemStep | None = None
    set: SetField | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_person_or_many(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in ("invite", "page"):
                if isinstance(data.get(key), str):
                    data = {**data, key: [data[key]]}
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> Step:
        given = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"a step does one thing, not {given or 'nothing'}")
        for person in (*(self.invite or []), *(self.page or [])):
            if not re.match(PERSON, person):
                raise ValueError(f"{person!r} is not a user id, @handle, email or oncall:<name>")
        return self

    @property
    def kind(self) -> str:
        return next(name for name in type(self).model_fields if getattr(self, name) is not None)

    def texts(self) -> list[str]:
        return [s.text for s in (self.post, self.dm) if s is not None]


class Automation(BaseModel):
    """``[[automations]]``: one rule. Its expressions are compiled when the policy loads."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    name: str = Field(min_length=1, max_length=100, pattern=r"^[^'\n]+$")
    on: Trigger
    if_: str | None = Field(default=None, alias="if", max_length=2000)
    after: Duration | None = None
    unless: str | None = Field(default=None, max_length=2000)
    do: list[Step] = Field(min_length=1, max_length=20)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        """An unknown key (``iff``, a step ``pgae``) refused naming the rule, not its index."""
        if not isinstance(data, dict):
            return data
        given = data.get("do")
        steps: list[Any] = given if isinstance(given, list) else []
        keys = {"rule": set(data), "step": {k for s in steps if isinstance(s, dict) for k in s}}
        for what, known in (
            ("rule", {"name", "on", "if", "after", "unless", "do"}),
            ("step", set(Step.model_fields)),
        ):
            if unknown := keys[what] - known:
                raise ValueError(
                    f"automation {data.get('name')!r}: unknown {what} field {sorted(unknown)}; "
                    f"known: {', '.join(sorted(known))}"
                )
        for number, step in enumerate(steps, start=1):
            try:
                Step.model_validate(step)
            except ValidationError as error:  # said again naming the rule and the step
                problem = "; ".join(e["msg"].removeprefix("Value error, ") for e in error.errors())
                raise ValueError(
                    f"automation {data.get('name')!r}: step {number}: {problem}"
                ) from None
        return data

    @model_validator(mode="after")
    def _expressions_compile(self) -> Automation:
        if workflow.in_workflow():
            return self  # checked when the policy was loaded: a replay need not compile again
        for which, source in (("if", self.if_), ("unless", self.unless)):
            if source is not None:
                check_expression(source, self.on, f"automation {self.name!r}: {which}")
        for text in (t for step in self.do for t in step.texts()):
            used = {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}
            if unknown := used - TEXT_FIELDS:
                known = ", ".join(sorted(TEXT_FIELDS))
                raise ValueError(
                    f"automation {self.name!r}: text uses {sorted(unknown)}; known: {known}"
                )
        return self


class AutomationWait(BaseModel):
    """A rule waiting for its ``after``: due at ``due_at``, when ``unless`` is asked."""

    id: str  # "<number of the run>": what a commander names to skip it
    rule: str
    event: dict[str, Any]  # the triggering event as the rule's expressions saw it
    due_at: datetime
    while_open: bool  # begun before resolution: the resolution calls it off


class Unevaluable(ValueError):
    """An expression that failed on this incident (a value of the wrong type)."""


def check_expression(source: str, trigger: str, where: str) -> None:
    """Compiled, its fields known, and true or false on a sample of the view; else refused."""
    try:
        cel.compile(source)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None
    for root, name in NAMED.findall(LITERAL.sub('""', source)):
        known = INCIDENT_FIELDS if root == "incident" else EVENT_FIELDS
        if name not in known:
            raise ValueError(f"{where}: unknown field {root}.{name}; known: {', '.join(known)}")
    try:
        holds(source, sample_view(trigger))
    except Unevaluable as error:
        raise ValueError(f"{where}: {error}") from None


def holds(source: str, view: dict[str, Any]) -> bool:
    """The expression's answer on ``view``; ``Unevaluable`` when it has none, or not a bool."""
    try:
        answer = cel.compile(source).execute(view)
    except (KeyError, RuntimeError, TypeError, ValueError) as error:
        raise Unevaluable(f"{source!r} cannot be evaluated: {error}") from None
    if not isinstance(answer, bool):
        raise Unevaluable(f"{source!r} is {answer!r}, not true or false")
    return answer


def check_automations(
    automations: list[Automation], severities: set[str], schedules: set[str]
) -> None:
    """Names unique, every severity and schedule a step names the policy's: refused at load."""
    seen: set[str] = set()
    for rule in automations:
        where = f"automation {rule.name!r}"
        if rule.name in seen:
            raise ValueError(f"{where} is named twice")
        seen.add(rule.name)
        for step in rule.do:
            people = [*(step.invite or []), *(step.page or []), *([step.dm.to] if step.dm else [])]
            for schedule in (p.removeprefix(ONCALL) for p in people if p.startswith(ONCALL)):
                if schedule not in schedules:
                    known = ", ".join(sorted(schedules)) or "none"
                    raise ValueError(f"{where} names oncall:{schedule}: no such schedule ({known})")
            if step.dm and step.dm.to.startswith(ONCALL):
                raise ValueError(f"{where}: dm takes a person, not {step.dm.to!r}")
            severity = step.set.severity if step.set else None
            if severity is not None and severity not in severities:
                raise ValueError(f"{where} sets unknown severity {severity!r}")


def event(kind: str, **given: Any) -> dict[str, Any]:
    """An event as the expressions see it: every field, those that do not apply blank."""
    return EVENT_FIELDS | {"kind": kind} | given


def sample_view(trigger: str) -> dict[str, Any]:
    """Every field with a value of its type, to try an expression on when the policy loads."""
    return {"incident": dict(INCIDENT_FIELDS), "event": event(trigger)}


def incident_view(state: IncidentState, now: datetime) -> dict[str, Any]:
    """``incident`` as the expressions read it (docs/contract.md lists each field)."""
    roles = state.roles
    return {
        "id": state.id,
        "number": state.number,
        "label": state.label,
        "title": state.title,
        "summary": state.summary,
        "severity": state.severity,
        "status": state.status.value,
        "impact": state.impact.value,
        "components": list(state.components),
        "type": state.type or "",
        "private": state.private,
        "drill": state.drill,
        "commander": roles.commander or "",
        "tech_lead": roles.tech_lead or "",
        "comms_lead": roles.comms_lead or "",
        "responders": list(state.responders),
        "acknowledged": state.acknowledged_at is not None,
        "escalation_level": state.escalation_level,
        "age_seconds": (now - state.declared_at).total_seconds(),
        "public": state.public is not None,
        "alerts_firing": state.alerts.firing,
        "open_action_items": sum(1 for item in state.action_items if item.is_open),
    }

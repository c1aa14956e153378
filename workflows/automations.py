"""Automations: a team's own rules in the policy (``[[automations]]``), run inside each
incident's workflow.

A rule names the event it waits for (``on``), may ask more of the incident and the event
(``if``, in Google's Common Expression Language), may wait (``after``, a deadline of the
workflow's one deadline loop, kept in the state) and be called off when its wait ends
(``unless``), then does its steps (``do``), carried out by ``workflows.lifecycle.automating``.
Here: the rule's format, its checks when the policy loads and the view the expressions read.
Pure; CEL is the ``common-expression-language`` package (a Rust extension, deterministic).
"""

from __future__ import annotations

import functools
import re
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from temporalio import workflow

from workflows.text import SLACK_USER_ID, Duration, at_most, fields_problem

with workflow.unsafe.imports_passed_through():
    import cel

Trigger = Literal[
    "declared", "status_changed", "severity_changed", "acknowledged", "updated", "resolved",
    "reopened", "role_assigned", "action_item_overdue", "alert",
]  # fmt: skip
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


def _person(given: str) -> str:
    if not re.match(PERSON, given):
        raise ValueError(f"{given!r} is not a user id, @handle, email or oncall:<name>")
    return given


Person = Annotated[str, Field(max_length=254), AfterValidator(_person)]
# One person or a list: ``page = "oncall:payments"`` or ``invite = ["@bob", "@carol"]``.
People = Annotated[
    list[Person], BeforeValidator(lambda v: [v] if isinstance(v, str) else v), Field(max_length=50)
]


class Post(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # "incident" (its channel), "broadcast" (the organisation's) or a channel by "#name".
    channel: str = Field(default="incident", pattern=r"^(incident|broadcast|#[a-z0-9_-]{1,80})$")
    text: str = Field(min_length=1, max_length=2000)


class DirectMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: Person
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


class Webhook(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=2000, pattern=r"^https?://[^\s/?#@]+(/\S*)?$")  # http(s) only
    secret_env: str | None = Field(default=None, pattern=r"^[A-Z][A-Z0-9_]{0,63}$")  # HMAC key


class DrillStep(BaseModel):
    """A practice run of the incident ``after`` from the step: declared then as a drill."""

    model_config = ConfigDict(extra="forbid")
    after: Annotated[Duration, at_most(timedelta(days=366))]  # within a year
    title: str = Field(default="Practice: {title}", min_length=1, max_length=200)
    severity: str | None = None  # the incident's when the step runs, unless given
    commander: str | None = Field(default=None, pattern=SLACK_USER_ID.pattern)  # or the incident's


class Step(BaseModel):
    """One thing a rule does: exactly one of these keys, ``{ page = "oncall:payments" }``."""

    model_config = ConfigDict(extra="forbid")
    invite: People | None = None
    page: People | None = None
    assign: Assign | None = None
    post: Post | None = None
    dm: DirectMessage | None = None
    escalate: str | None = Field(default=None, max_length=500)  # the reason
    action_item: ActionItemStep | None = None
    set: SetField | None = None
    webhook: Webhook | None = None
    drill: DrillStep | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Step:
        given = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(given) != 1 or [] in (self.invite, self.page):
            raise ValueError(f"a step does one thing, not {given or 'nothing'}")
        return self

    @property
    def kind(self) -> str:
        return next(name for name in type(self).model_fields if getattr(self, name) is not None)

    def texts(self) -> list[str]:  # which may name the fields of ``TEXT_FIELDS``
        said = [s.text for s in (self.post, self.dm) if s is not None]
        return [*said, self.drill.title] if self.drill else said


class Automation(BaseModel):
    """``[[automations]]``: one rule. Its expressions are compiled when the policy loads."""

    # Written and carried as ``if`` (a Python keyword, hence the field's name).
    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)
    name: str = Field(min_length=1, max_length=100, pattern=r"^[^'\n]+$")
    on: Trigger
    if_: str | None = Field(default=None, alias="if", max_length=2000)
    after: Duration | None = None
    unless: str | None = Field(default=None, max_length=2000)
    do: list[Step] = Field(min_length=1, max_length=20)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        """An unknown key (``iff``) refused naming the rule, not its index."""
        known = {"name", "on", "if", "if_", "after", "unless", "do"}
        if isinstance(data, dict) and (unknown := set(data) - known):
            raise ValueError(
                f"automation {data.get('name')!r}: unknown rule field {sorted(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        return data

    @field_validator("do", mode="wrap")
    @classmethod
    def _steps_named(cls, steps: Any, handler: ValidatorFunctionWrapHandler, info: Any) -> Any:
        """A step refused naming the rule and the step (``name`` is validated before)."""
        try:
            return handler(steps)
        except ValidationError as error:
            said = []
            for e in error.errors():
                loc = [str(part) for part in e["loc"]]
                where = f"step {int(loc[0]) + 1}" if loc and loc[0].isdigit() else "do"
                if e["type"] == "extra_forbidden":
                    said.append(f"{where}: unknown step field {loc[1:]}")
                else:
                    said.append(f"{where}: {e['msg'].removeprefix('Value error, ')}")
            name = info.data.get("name")
            raise ValueError(f"automation {name!r}: {'; '.join(said)}") from None

    @model_validator(mode="after")
    def _expressions_compile(self) -> Automation:
        for which, source in (("if", self.if_), ("unless", self.unless)):
            if source is not None:
                check_expression(source, self.on, f"automation {self.name!r}: {which}")
        for text in (t for step in self.do for t in step.texts()):
            if problem := fields_problem(text, TEXT_FIELDS):
                raise ValueError(f"automation {self.name!r}: {problem}")
        return self


class AutomationWait(BaseModel):
    """A rule waiting for its ``after``: due at ``due_at``, when ``unless`` is asked."""

    model_config = ConfigDict(coerce_numbers_to_str=True)  # the API publishes ``id`` as a number
    id: str  # "<number of the run>": what a commander names to skip it
    rule: str
    event: dict[str, Any]  # the triggering event as the rule's expressions saw it
    due_at: datetime
    while_open: bool  # begun before resolution: the resolution calls it off


class Unevaluable(ValueError):
    """An expression that failed on this incident (a value of the wrong type)."""


def check_expression(source: str, trigger: str, where: str) -> None:
    """Compiled, its fields known, and true or false on a sample of the view; else refused."""
    if problem := expression_problem(source, trigger):
        raise ValueError(f"{where}: {problem}")


# Pure functions of their arguments, remembered per process: a policy is validated again each
# time a workflow's input is decoded (a replay from scratch, every continue-as-new), and its
# expressions need compiling once. What they hold never depends on an incident.
@functools.lru_cache(maxsize=4096)
def expression_problem(source: str, trigger: str) -> str | None:
    try:
        program(source)
    except ValueError as error:
        return str(error)
    for root, name in NAMED.findall(LITERAL.sub('""', source)):
        known = INCIDENT_FIELDS if root == "incident" else EVENT_FIELDS
        if name not in known:
            return f"unknown field {root}.{name}; known: {', '.join(known)}"
    try:
        holds(source, sample_view(trigger))
    except Unevaluable as error:
        return str(error)
    return None


@functools.lru_cache(maxsize=4096)
def program(source: str) -> cel.Program:
    return cel.compile(source)


def holds(source: str, view: dict[str, Any]) -> bool:
    """The expression's answer on ``view``; ``Unevaluable`` when it has none, or not a bool."""
    try:
        answer = program(source).execute(view)
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
            severity = next((s.severity for s in (step.set, step.drill) if s), None)
            if severity is not None and severity not in severities:
                raise ValueError(f"{where} sets unknown severity {severity!r}")


def event(kind: str, **given: Any) -> dict[str, Any]:
    """An event as the expressions see it: every field, those that do not apply blank."""
    return EVENT_FIELDS | {"kind": kind} | given


def sample_view(trigger: str) -> dict[str, Any]:
    """Every field with a value of its type, to try an expression on when the policy loads."""
    return {"incident": dict(INCIDENT_FIELDS), "event": event(trigger)}

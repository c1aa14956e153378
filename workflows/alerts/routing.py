"""Alerts from monitoring: what reaches an incident, and which policy rule declares it.

Pure and deterministic: the entry point routes a webhook with ``route`` and builds the
declaration with ``declaration_for``; the workflow folds ``AlertEvent`` batches (signals) into
its timeline. Rules match labels the way Alertmanager's own routes do: equality matchers and
anchored regular expressions, all of which must hold.
"""

from __future__ import annotations

import re
import string
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, model_validator

from workflows.models import MAX_START_TIER, Declaration, Impact, Link, UserId

MAX_LABELS = 64
MAX_LABEL_TEXT = 1024
TITLE_LIMIT = 200
MAX_EVENT_LINKS = 10
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

Labels = Annotated[
    dict[Annotated[str, Field(max_length=256)], Annotated[str, Field(max_length=MAX_LABEL_TEXT)]],
    Field(max_length=MAX_LABELS),
]


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


class AlertEvent(BaseModel):
    """One alert of a group, as the incident workflow receives it (in batches, by signal)."""

    status: AlertStatus
    fingerprint: str = Field(default="", max_length=200)
    name: str = Field(default="", max_length=200)
    summary: str = Field(default="", max_length=MAX_LABEL_TEXT)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    links: list[Link] = Field(default_factory=list, max_length=MAX_EVENT_LINKS)


class AlertBatch(BaseModel):
    """What one webhook call says about one alert group."""

    source: str = Field(max_length=64)
    group_key: str = Field(min_length=1, max_length=2000)
    status: AlertStatus
    labels: Labels = Field(default_factory=dict)
    annotations: Labels = Field(default_factory=dict)
    events: list[AlertEvent] = Field(default_factory=list)
    truncated: int = Field(default=0, ge=0)  # alerts of the group the sender left out


def _template(value: str) -> str:
    """Templates name plain fields (labels and annotations) only: no attribute or index access."""
    for _, field, spec, conversion in string.Formatter().parse(value):
        if field is None:
            continue
        if not _FIELD.match(field) or spec or conversion:
            raise ValueError(
                f"title template field {{{field}}} must be a plain label or annotation name"
            )
    return value


class ResolvedAlert(StrEnum):
    NOTE = "note"  # posted in the channel, nothing else
    MONITORING = "monitoring"  # also moves an investigating/identified incident to monitoring


class AlertRule(BaseModel):
    """Labels -> what kind of incident to declare. The first rule that matches wins."""

    name: str = ""
    match: Labels = Field(default_factory=dict)
    match_re: Labels = Field(default_factory=dict)
    severity: str | None = None  # None: the policy's default for alerts (see Policy)
    title: Annotated[str, AfterValidator(_template)] = "{alertname}"
    impact: Impact = Impact.MAJOR
    components: list[str] = Field(default_factory=list, max_length=50)
    commander: UserId | None = None
    escalation_level: int = Field(default=0, ge=0, le=MAX_START_TIER)  # see Declaration
    on_resolved: ResolvedAlert = ResolvedAlert.NOTE
    drop: bool = False  # matching alerts are refused quietly (maintenance, noise)

    @model_validator(mode="after")
    def _regexes_compile(self) -> AlertRule:
        for label, pattern in self.match_re.items():
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"match_re.{label}: {error}") from None
        return self

    def matches(self, labels: dict[str, str]) -> bool:
        if any(labels.get(k) != v for k, v in self.match.items()):
            return False
        return all(re.fullmatch(p, labels.get(k, "")) for k, p in self.match_re.items())


class AlertSource(BaseModel):
    """How one monitoring system proves who it is: a bearer token or an HMAC secret."""

    token: str | None = Field(default=None, min_length=16)
    hmac_secret: str | None = Field(default=None, min_length=16)


class AlertPolicy(BaseModel):
    sources: dict[str, AlertSource] = Field(default_factory=dict)
    rules: list[AlertRule] = Field(default_factory=list)
    default: AlertRule | None = Field(default_factory=AlertRule)  # None: unmatched are dropped

    def severities(self) -> set[str]:
        rules = [*self.rules, *([self.default] if self.default else [])]
        return {r.severity for r in rules if r.severity and not r.drop}


def route(batch: AlertBatch, policy: AlertPolicy) -> AlertRule | None:
    """The rule for this group, or None when the policy drops it."""
    for rule in policy.rules:
        if rule.matches(batch.labels):
            return None if rule.drop else rule
    default = policy.default
    return None if default is None or default.drop else default


class _Fields(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""  # a label this alert lacks renders as nothing, not as an error


def title_for(rule: AlertRule, batch: AlertBatch) -> str:
    fields = _Fields({**batch.annotations, **batch.labels})
    title = " ".join(rule.title.format_map(fields).split())
    return (title or batch.labels.get("alertname") or "Alert")[:TITLE_LIMIT]


def idempotency_key(batch: AlertBatch) -> str:
    """One incident per alert group while it is open: a storm of one group is one incident."""
    return f"alert:{batch.source}:{batch.group_key}"[:200]


def declaration_for(rule: AlertRule, batch: AlertBatch, severity: str) -> Declaration:
    """``severity`` is the policy's choice when the rule names none."""
    summary = batch.annotations.get("description") or batch.annotations.get("summary", "")
    links = [link for event in batch.events for link in event.links]
    return Declaration(
        title=title_for(rule, batch),
        severity=rule.severity or severity,
        summary=summary[:3000],
        impact=rule.impact,
        components=rule.components,
        commander=rule.commander,
        idempotency_key=idempotency_key(batch),
        source=f"alert:{batch.source}",
        escalation_level=rule.escalation_level,
        links=list({link.url: link for link in links}.values())[:10],
    )


def digest(events: list[AlertEvent], status: Literal["firing", "resolved"]) -> str:
    """One timeline line for a batch: how many alerts, and which, without one line each."""
    chosen = [e for e in events if e.status == status]
    names = sorted({e.name for e in chosen if e.name})
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return f"{len(chosen)} alert(s) {status}" + (f": {shown}" if shown else "")

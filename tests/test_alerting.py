"""Alert intake, decided without a server: payloads, routing rules, titles, source proof."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from starter.api.routes.alerts import AlertmanagerWebhook, GenericAlert, source_accepts
from workflows.alerts.routing import (
    AlertPolicy,
    AlertRule,
    AlertStatus,
    declaration_for,
    digest,
    idempotency_key,
    route,
)
from workflows.policy import Policy, default_policy

FIXTURES = Path(__file__).parent / "fixtures" / "alerts"


def payload(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


def policy_with(**alerts: Any) -> Policy:
    return Policy.model_validate({**default_policy().model_dump(), "alerts": alerts})


def test_alertmanager_payload_becomes_one_batch_per_group() -> None:
    batch = AlertmanagerWebhook.model_validate(payload("alertmanager_firing.json")).batch()
    assert batch.source == "alertmanager"
    assert batch.status is AlertStatus.FIRING
    assert batch.group_key.startswith("incidents/{}/{team=")
    assert batch.labels["team"] == "payments"
    assert [e.fingerprint for e in batch.events] == ["c1a3e4b9d2f0a871", "77e0b1f2c3d4a5b6"]
    first = batch.events[0]
    assert first.ends_at is None, "Alertmanager's zero time means no end yet"
    assert {link.title for link in first.links} == {"Runbook", "Alert source"}


def test_resolved_payload_keeps_the_group_key() -> None:
    firing = AlertmanagerWebhook.model_validate(payload("alertmanager_firing.json")).batch()
    resolved = AlertmanagerWebhook.model_validate(payload("alertmanager_resolved.json")).batch()
    assert idempotency_key(firing) == idempotency_key(resolved)
    assert resolved.events[0].ends_at is not None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"version": "3"}, "version"),
        ({"alerts": []}, "alerts"),
        ({"status": "exploded"}, "status"),
        ({"groupKey": ""}, "groupKey"),
    ],
)
def test_malformed_alertmanager_payload_names_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as error:
        AlertmanagerWebhook.model_validate({**payload("alertmanager_firing.json"), **change})
    assert field in {str(e["loc"][0]) for e in error.value.errors()}


def test_first_matching_rule_decides_severity_title_and_components() -> None:
    alerts = {
        "rules": [
            {"match": {"team": "search"}, "severity": "sev3"},
            {
                "match": {"team": "payments"},
                "match_re": {"alertname": "Checkout.*"},
                "severity": "sev1",
                "title": "{alertname} on {service}: {summary}",
                "components": ["checkout"],
            },
        ]
    }
    policy = policy_with(**alerts)
    batch = AlertmanagerWebhook.model_validate(payload("alertmanager_firing.json")).batch()
    rule = route(batch, policy.alerts)
    assert rule is not None
    declaration = declaration_for(rule, batch, policy.alert_severity)
    assert declaration.severity == "sev1"
    assert declaration.title == (
        "CheckoutErrorRate on checkout: Checkout 5xx above 5% for 5 minutes"
    )
    assert declaration.components == ["checkout"]
    assert declaration.summary == "More than 5% of checkout requests fail with 5xx."
    assert declaration.idempotency_key == idempotency_key(batch)
    assert [link.title for link in declaration.links] == ["Runbook", "Alert source"]


def test_a_rule_without_severity_takes_the_policys_default_for_alerts() -> None:
    batch = GenericAlert(key="k", title="Disk full").batch()
    assert declaration_for(AlertRule(), batch, default_policy().alert_severity).severity == "sev2"
    only_sev1 = Policy.model_validate({"severities": {"sev1": {}}})
    assert only_sev1.alert_severity == "sev1", "a policy without sev2 still takes alerts"


def test_unmatched_alerts_take_the_default_rule_or_are_dropped() -> None:
    batch = AlertmanagerWebhook.model_validate(payload("alertmanager_firing.json")).batch()
    assert route(batch, AlertPolicy()) == AlertRule()
    assert route(batch, AlertPolicy(default=None)) is None
    silenced = AlertPolicy(rules=[AlertRule(match={"team": "payments"}, drop=True)])
    assert route(batch, silenced) is None


def test_a_label_the_alert_lacks_renders_as_nothing() -> None:
    batch = GenericAlert(key="k1", title="Disk full").batch()
    rule = AlertRule(title="{alertname} on {host}")
    assert declaration_for(rule, batch, "sev3").title == "Disk full on"


@pytest.mark.parametrize("template", ["{alertname.__class__}", "{labels[0]}", "{x!r}", "{x:>9}"])
def test_title_templates_refuse_anything_but_plain_fields(template: str) -> None:
    with pytest.raises(ValidationError, match="plain label or annotation name"):
        AlertRule(title=template)


def test_rules_must_name_known_severities_and_valid_regexes() -> None:
    with pytest.raises(ValidationError, match="unknown severities"):
        policy_with(rules=[{"severity": "p0"}])
    with pytest.raises(ValidationError, match=r"match_re\.alertname"):
        policy_with(rules=[{"match_re": {"alertname": "("}}])


def test_generic_alert_refuses_an_empty_title() -> None:
    with pytest.raises(ValidationError, match="title is empty"):
        GenericAlert(key="k", title="   ")


def test_digest_folds_a_storm_into_one_line() -> None:
    batch = GenericAlert(key="k", title="x").batch()
    many = [batch.events[0].model_copy(update={"name": f"Alert{i % 7}"}) for i in range(1000)]
    line = digest(many, "firing")
    assert line.startswith("1000 alert(s) firing: Alert0, Alert1")
    assert line.endswith("and 2 more")


def test_a_source_proves_itself_by_token_or_hmac() -> None:
    secret, token = "s" * 32, "t" * 32
    policy = AlertPolicy.model_validate(
        {"sources": {"grafana": {"hmac_secret": secret}, "alertmanager": {"token": token}}}
    )
    body = b'{"version":"4"}'
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert source_accepts(policy, "grafana", body, None, signature)
    assert not source_accepts(policy, "grafana", body + b" ", None, signature)
    assert source_accepts(policy, "alertmanager", body, token, None)
    assert not source_accepts(policy, "alertmanager", body, "t" * 31, None)
    assert not source_accepts(policy, "unknown", body, token, signature)


def test_a_default_rule_that_drops_drops_unmatched_groups() -> None:
    batch = GenericAlert(key="k", title="Noise").batch()
    assert route(batch, AlertPolicy.model_validate({"default": {"drop": True}})) is None


def test_credentials_with_any_characters_are_compared_without_error() -> None:
    policy = AlertPolicy.model_validate({"sources": {"s": {"token": "t" * 32}}})
    assert not source_accepts(policy, "s", b"{}", "\u00e9" * 32, "sha256=\u00e9")

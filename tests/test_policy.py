"""Policy parsing: durations, tiers, templates, and errors that name the problem."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from workflows.escalation.deadlines import escalation_tier
from workflows.policy import Policy, default_policy, load_policy, parse_duration
from workflows.text import channel_name, with_suffix

POLICY_TOML = """
[channel]
name_template = "inc-{yymmdd}-{slug}"

[severities.sev1]
description = "Customers cannot log in, buy, or be billed. All hands."
update_every = "15m"
retrospective = { required = true, after = "1d" }
archive_after = "7d"

[[severities.sev1.escalation]]
after = "5m"
notify = ["U024BE7LH"]

[[severities.sev1.escalation]]
after = 600
notify = ["S0ONCALL1", "boss@example.com"]
page = true
repeat = 2

[severities.sev2]
update_every = "30m"

[templates.checkout]
title = "Checkout failing"
severity = "sev1"
impact = "critical"
components = ["checkout", "payments"]
"""


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (90, 90),
        (1.5, 1.5),
        ("90s", 90),
        ("15m", 900),
        ("2h", 7200),
        ("3d", 259200),
        ("250ms", 0.25),
        ("42", 42),
    ],
)
def test_durations(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["15 minutes", "-5", "m", "1y"])
def test_bad_durations_are_named(text):
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_contract_policy_file_parses(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text(POLICY_TOML)
    policy = load_policy(path)
    sev1 = policy.severity("sev1")
    assert sev1.update_every == timedelta(minutes=15)
    assert sev1.retrospective.required and sev1.retrospective.after == timedelta(days=1)
    assert sev1.archive_after == timedelta(days=7)
    assert [t.after for t in sev1.escalation] == [timedelta(minutes=5), timedelta(minutes=10)]
    assert policy.templates["checkout"].components == ["checkout", "payments"]
    # The policy travels in workflow input: it must survive a JSON round trip unchanged.
    assert Policy.model_validate_json(policy.model_dump_json()) == policy


def test_repeat_counts_as_escalation_levels(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text(POLICY_TOML)
    sev1 = load_policy(path).severity("sev1")
    tiers = [escalation_tier(sev1.escalation, level) for level in range(1, 6)]
    assert tiers[0].notify == ["U024BE7LH"]
    assert tiers[1] is tiers[2] is tiers[3]
    assert tiers[4] is None


def test_policy_errors_name_the_field(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text('[severities.sev1]\nupdate_every = "soon"\n')
    with pytest.raises(ValidationError, match=r"severities\.sev1\.update_every"):
        load_policy(path)
    path.write_text('[channel]\nname_template = "inc-{date}"\n[severities.sev1]\n')
    with pytest.raises(ValidationError, match=r"unknown \['date'\]"):
        load_policy(path)
    path.write_text('[severities.sev1]\n[templates.x]\nseverity = "sev5"\n')
    with pytest.raises(ValidationError, match="template 'x' names unknown severity 'sev5'"):
        load_policy(path)


def test_default_policy_follows_the_practice():
    policy = default_policy()
    assert list(policy.severities) == ["sev1", "sev2", "sev3"]
    assert policy.severity("sev1").update_every == timedelta(minutes=15)
    assert policy.severity("sev2").update_every == timedelta(minutes=30)
    assert "bug" in policy.severity("sev3").description
    assert load_policy(None) == policy


AT = datetime(2024, 11, 23, 14, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("template", "title", "expected"),
    [
        ("inc-{yymmdd}-{slug}", "Checkout failing", "inc-241123-checkout-failing"),
        (
            "inc-{yymmdd}-{slug}",
            "  Café: 50% of /api/v2 errors!! ",
            "inc-241123-caf-50-of-api-v2-errors",
        ),
        ("inc-{number}-{severity}", "whatever", "inc-42-sev1"),
        ("{yyyymmdd}-{hhmm}-{slug}", "DB", "20241123-1405-db"),
        ("inc-{yymmdd}-{slug}", "!!!", "inc-241123-incident-42"),
    ],
)
def test_channel_names(template, title, expected):
    assert channel_name(template, title=title, number=42, severity="sev1", at=AT) == expected


def test_long_titles_leave_room_for_a_suffix():
    name = channel_name("inc-{yymmdd}-{slug}", title="x" * 300, number=1, severity="sev1", at=AT)
    assert len(name) <= 77
    assert len(with_suffix(name, 12)) <= 80
    assert with_suffix("inc-a", 1) == "inc-a" and with_suffix("inc-a", 3) == "inc-a-3"


def test_readme_policy_example_is_a_valid_policy(tmp_path):
    import re
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    example = re.search(r"```toml\n(.*?)```", readme, re.S)
    assert example is not None
    path = tmp_path / "policy.toml"
    path.write_text(example.group(1))
    policy = load_policy(path)
    assert policy.severity("sev1").escalation[1].repeat == 2

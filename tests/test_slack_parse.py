"""`/incident` text into commands, and modal answers into fields: pure, no server."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from starter.command_words import Malformed, due_time
from starter.slack import blocks as views
from starter.slack.commands import parse
from workflows.lifecycle import commands as cmd
from workflows.models import Declaration
from workflows.policy import default_policy

SEVERITIES = ["sev1", "sev2", "sev3"]


@pytest.mark.parametrize(
    ("text", "here", "model", "fields", "incident"),
    [
        ("ack", True, cmd.Acknowledge, {}, None),
        ("ack 42", False, cmd.Acknowledge, {}, "incident-42"),
        ("acknowledge INC-7", False, cmd.Acknowledge, {}, "incident-7"),
        (
            "status identified bad deploy",
            True,
            cmd.SetStatus,
            {"status": "identified", "message": "bad deploy"},
            None,
        ),
        (
            "status 3 Monitoring",
            False,
            cmd.SetStatus,
            {"status": "monitoring", "message": ""},
            "incident-3",
        ),
        ("update it is back", True, cmd.PostUpdate, {"message": "it is back"}, None),
        ("update 42 it is back", True, cmd.PostUpdate, {"message": "42 it is back"}, None),
        ("rename 500s on checkout", True, cmd.Rename, {"title": "500s on checkout"}, None),
        (
            "rename 42 500s on checkout",
            False,
            cmd.Rename,
            {"title": "500s on checkout"},
            "incident-42",
        ),
        (
            "severity sev1 worse",
            True,
            cmd.SetSeverity,
            {"severity": "sev1", "reason": "worse"},
            None,
        ),
        (
            "role comms_lead <@U0BOB0002|bob>",
            True,
            cmd.AssignRole,
            {"role": "comms_lead", "user": "<@U0BOB0002|bob>"},
            None,
        ),
        ("escalate", True, cmd.Escalate, {"reason": ""}, None),
        ("resolve 9 rolled back", False, cmd.Resolve, {"message": "rolled back"}, "incident-9"),
        ("reopen errors again", True, cmd.Reopen, {"reason": "errors again"}, None),
        (
            "action add rotate keys @dave",
            True,
            cmd.AddActionItem,
            {"text": "rotate keys", "owner": "@dave"},
            None,
        ),
        ("action add rotate keys now", True, cmd.AddActionItem, {"text": "rotate keys now"}, None),
        (
            "action add 5 rotate keys bob@example.com",
            False,
            cmd.AddActionItem,
            {"text": "rotate keys", "owner": "bob@example.com"},
            "incident-5",
        ),
        ("action done #2", True, cmd.CompleteActionItem, {"item_id": 2}, None),
        ("action done 5 2", False, cmd.CompleteActionItem, {"item_id": 2}, "incident-5"),
        (
            "action add rotate keys @dave due 2026-12-01",
            True,
            cmd.AddActionItem,
            {"text": "rotate keys", "owner": "@dave", "due": datetime(2026, 12, 1, 9, tzinfo=UTC)},
            None,
        ),
        (
            "action assign 2 @carol",
            True,
            cmd.AssignActionItem,
            {"item_id": 2, "owner": "@carol"},
            None,
        ),
        (
            "action due 5 #2 2026-12-01T17:30Z",
            False,
            cmd.SetActionItemDue,
            {"item_id": 2, "due": datetime(2026, 12, 1, 17, 30, tzinfo=UTC)},
            "incident-5",
        ),
        (
            "action drop 3 not needed",
            True,
            cmd.DropActionItem,
            {"item_id": 3, "reason": "not needed"},
            None,
        ),
        ("retro done", True, cmd.CompleteRetrospective, {"document_url": None}, None),
        (
            "retro done 7 <https://docs.example.com/retro>",
            False,
            cmd.CompleteRetrospective,
            {"document_url": "https://docs.example.com/retro"},
            "incident-7",
        ),
    ],
)
def test_sub_commands_parse_into_their_command_and_incident(text, here, model, fields, incident):
    asked = parse(text, here, SEVERITIES)
    assert (asked.model, asked.fields, asked.incident) == (model, fields, incident)


def test_declare_takes_an_optional_severity_and_without_a_title_opens_the_form():
    assert parse("declare sev1 Checkout failing", False, SEVERITIES).fields == {
        "title": "Checkout failing",
        "severity": "sev1",
    }
    asked = parse("declare Checkout failing", True, SEVERITIES)
    assert asked.model is Declaration and asked.fields["severity"] == "sev3"
    assert parse("declare", False, SEVERITIES).model is None
    assert parse("", False, SEVERITIES).name == "help"
    assert parse("list", False, SEVERITIES).name == "list"


def test_drill_declares_a_drill_anywhere():
    asked = parse("drill sev1 Checkout failover practice", False, SEVERITIES)
    assert (asked.name, asked.model) == ("declare", Declaration)
    assert asked.fields == {
        "title": "Checkout failover practice",
        "severity": "sev1",
        "drill": True,
    }
    assert parse("drill Failover", True, SEVERITIES).fields["severity"] == "sev3"


@pytest.mark.parametrize(
    ("text", "here", "reason"),
    [
        ("ack", False, "not an incident channel"),
        ("status", True, "which status?"),
        ("update", True, "say what is new"),
        ("rename", True, "what is it called now"),
        ("role commander", True, "a role and one person"),
        ("role commander bob carol", True, "a role and one person"),
        ("action", True, "action add"),
        ("action done x", True, "action add"),
        ("action due 2 someday", True, "is no date"),
        ("action due 2 2026-12-01T17:30", True, "needs a time zone"),
        ("action assign 2", True, "action assign"),
        ("retro", True, "retro done"),
        ("declare sev1", False, "give the incident a title"),
        ("drill", True, "give the drill a title"),
        ("dance", True, "there is no `/incident dance`"),
        ("ack " + "x" * 4000, True, "characters"),
    ],
)
def test_malformed_commands_say_why_and_how(text, here, reason):
    with pytest.raises(Malformed, match=reason.replace("?", r"\?").replace("`", ".")):
        parse(text, here, SEVERITIES)


def test_the_declare_form_offers_the_policy_and_reads_back_into_declaration_fields():
    view = views.declare_modal(default_policy(), "C123")
    assert view["callback_id"] == "incident_declare" and view["private_metadata"] == "C123"
    state = {
        "values": {
            "title": {"title": {"type": "plain_text_input", "value": " Checkout "}},
            "severity": {"severity": {"selected_option": {"value": "sev1"}}},
            "impact": {"impact": {"selected_option": {"value": "critical"}}},
            "summary": {"summary": {"value": None}},
            "components": {"components": {"value": "checkout, payments ,"}},
        }
    }
    fields = views.declaration_fields(views.values({"state": state}))
    assert fields == {
        "title": "Checkout",
        "severity": "sev1",
        "impact": "critical",
        "components": ["checkout", "payments"],
    }
    assert views.field_errors("title: too short; severity: unknown", ["title", "severity"]) == {
        "title": "too short",
        "severity": "unknown",
    }


def test_replies_escape_what_people_typed_but_keep_mentions_the_workflow_wrote():
    from datetime import UTC, datetime

    from starter.slack import blocks as replies
    from workflows.models import Impact, IncidentState

    now = datetime.now(UTC)
    state = IncidentState(
        id="incident-4",
        number=4,
        title="<!channel> look & see",
        severity="sev1",
        impact=Impact.MAJOR,
        declared_at=now,
        last_update_at=now,
    )
    state.note(now, "role", None, "Comms lead: <@U0CAROL03> <!here> <https://x|y> <@U0BOB0002|bob>")
    text = replies.result(state)
    assert "&lt;!channel&gt; look &amp; see" in text
    assert "Comms lead: <@U0CAROL03> &lt;!here&gt; &lt;https://x|y&gt;" in text
    assert "&lt;@U0BOB0002|bob&gt;" in text
    assert replies.refused("<!channel>") == ":no_entry: &lt;!channel&gt;"


def test_a_due_date_may_be_relative_to_now():
    now = datetime(2026, 11, 24, 12, tzinfo=UTC)
    assert due_time("3d", now) == datetime(2026, 11, 27, 12, tzinfo=UTC)
    assert due_time("90m", now) == datetime(2026, 11, 24, 13, 30, tzinfo=UTC)

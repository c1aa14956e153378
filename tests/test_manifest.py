"""The Slack app manifest in the repository is one Slack accepts and declares what the app uses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "slack-app-manifest.yml"
# Slack's manifest schema, kept beside the project (../shared) rather than copied into it.
SCHEMA = ROOT.parent / "shared" / "reference" / "slack-manifest.schema.json"

COMMANDS = {"/incident", "/escalate", "/status", "/resolve"}
BOT_SCOPES = {
    "bookmarks:write",
    "channels:join",
    "channels:manage",
    "channels:read",
    "chat:write",
    "chat:write.public",
    "commands",
    "files:write",  # the situation report and the retrospective draft
    "groups:read",
    "groups:write",
    "pins:write",
    "usergroups:read",
    "users:read",
    "users:read.email",
}


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(MANIFEST.read_text())
    return loaded


def test_manifest_is_valid_against_slacks_schema(manifest: dict[str, Any]) -> None:
    if not SCHEMA.exists():
        pytest.skip(f"Slack's manifest schema is not at {SCHEMA}")
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.validators.validator_for(schema)
    validator.check_schema(schema)
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator(schema).iter_errors(manifest)
    ]
    assert errors == []


def test_manifest_declares_the_slash_commands_at_the_events_endpoint(
    manifest: dict[str, Any],
) -> None:
    commands = manifest["features"]["slash_commands"]
    assert {c["command"] for c in commands} == COMMANDS
    assert all(c["url"].endswith("/slack/events") for c in commands)
    settings = manifest["settings"]
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["interactivity"]["request_url"].endswith("/slack/events")
    assert settings["socket_mode_enabled"] is False


def test_manifest_asks_for_the_bot_scopes_the_product_uses(manifest: dict[str, Any]) -> None:
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == BOT_SCOPES

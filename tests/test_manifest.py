"""The Slack app manifests are ones Slack accepts, and grant exactly the scopes the code needs.

The scopes are derived, not listed: the Web API methods the code calls are found in its syntax
tree (``client.<method>(``, ``api_call("method")``, Bolt's ``say``), and Slack's method->scope
table vendored in docs/slack/ says what each needs. A new call without its scope, or a scope
nothing uses any more, fails here rather than as ``missing_scope`` in a real workspace.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = {
    "http": ROOT / "slack-app-manifest.yml",
    "socket": ROOT / "slack-app-manifest.socket.yml",
}
SCHEMA = ROOT / "docs" / "slack" / "manifest.schema.json"
METHOD_SCOPES = ROOT / "docs" / "slack" / "method-scopes.json"
SCANNED = ("activities", "clients", "starter")
COMMANDS = {"/incident", "/escalate", "/resolve", "/oncall"}
# Bolt's helpers that call a Web API method on the listener's behalf.
BOLT_HELPERS = {"say": "chat.postMessage"}
# slack_sdk's helpers that call several Web API methods.
CLIENT_HELPERS = {"files_upload_v2": ("files.getUploadURLExternal", "files.completeUploadExternal")}
SNAKE_METHOD = re.compile(r"^[a-z]+(?:_[a-zA-Z]+)+$")


def method_table() -> dict[str, dict[str, list[str]]]:
    table: dict[str, dict[str, list[str]]] = json.loads(METHOD_SCOPES.read_text())["methods"]
    return table


def _receiver(node: ast.expr) -> str:
    """The last name of what a method is called on: ``self.client`` -> ``client``."""
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def methods_called(root: Path = ROOT) -> dict[str, set[str]]:
    """Slack Web API method -> the files that call it."""
    families = {m.split(".")[0] for m in method_table()}
    found: dict[str, set[str]] = {}
    for folder in SCANNED:
        for path in sorted((root / folder).rglob("*.py")):
            where = str(path.relative_to(root))
            for node in ast.walk(ast.parse(path.read_text(), where)):
                if not isinstance(node, ast.Call):
                    continue
                func, method = node.func, None
                if isinstance(func, ast.Attribute) and func.attr in CLIENT_HELPERS:
                    for helped in CLIENT_HELPERS[func.attr]:
                        found.setdefault(helped, set()).add(where)
                elif isinstance(func, ast.Attribute) and func.attr == "api_call" and node.args:
                    first = node.args[0]
                    if isinstance(first, ast.Constant) and isinstance(first.value, str):
                        method = first.value
                elif (
                    isinstance(func, ast.Attribute)
                    and SNAKE_METHOD.match(func.attr)
                    and func.attr.split("_")[0] in families
                    and "client" in _receiver(func.value).lower()
                ):
                    method = func.attr.replace("_", ".")
                elif isinstance(func, ast.Name) and func.id in BOLT_HELPERS:
                    method = BOLT_HELPERS[func.id]
                if method:
                    found.setdefault(method, set()).add(where)
    return found


def events_heard(root: Path = ROOT) -> set[str]:
    """The Events API events the app listens to: ``app.event("name")`` in starter/."""
    found: set[str] = set()
    for path in sorted((root / "starter").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "event"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.add(node.args[0].value)
    return found


def event_table() -> dict[str, dict[str, list[str]]]:
    table: dict[str, dict[str, list[str]]] = json.loads(METHOD_SCOPES.read_text())["events"]
    return table


def uses_private_channels(root: Path = ROOT) -> bool:
    sources = (p.read_text() for f in SCANNED for p in (root / f).rglob("*.py"))
    return any("private_channel" in s or "is_private=True" in s for s in sources)


def needed_scopes() -> set[str]:
    table = method_table()
    called = methods_called()
    unknown = sorted(m for m in called if m not in table)
    assert unknown == [], f"add these methods' scopes to {METHOD_SCOPES.name}: {unknown}"
    private = uses_private_channels()
    scopes = {"commands"}  # slash commands and shortcuts, not a Web API method
    needs = [table[method] for method in called]
    events = event_table()
    unknown = sorted(e for e in events_heard() if e not in events)
    assert unknown == [], f"add these events' scopes to {METHOD_SCOPES.name}: {unknown}"
    needs += [events[event] for event in events_heard()]
    for need in needs:
        scopes |= set(need["scopes"])
        if private:
            scopes |= set(need.get("private", []))
    return scopes


@pytest.fixture(scope="module", params=sorted(MANIFESTS))
def manifest(request: pytest.FixtureRequest) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(MANIFESTS[request.param].read_text())
    return loaded


def test_manifest_is_valid_against_slacks_schema(manifest: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.validators.validator_for(schema)
    validator.check_schema(schema)
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator(schema).iter_errors(manifest)
    ]
    assert errors == []


def test_manifest_declares_commands_interactivity_and_the_timeline_shortcut(
    manifest: dict[str, Any],
) -> None:
    features, settings = manifest["features"], manifest["settings"]
    assert {c["command"] for c in features["slash_commands"]} == COMMANDS
    shortcuts = features["shortcuts"]
    assert [(s["callback_id"], s["type"]) for s in shortcuts] == [("add_to_timeline", "message")]
    assert settings["interactivity"]["is_enabled"] is True
    if settings["socket_mode_enabled"]:
        # Over Socket Mode Slack sends everything through the app-level connection.
        assert "request_url" not in settings["interactivity"]
        assert all("url" not in c for c in features["slash_commands"])
    else:
        assert settings["interactivity"]["request_url"] == "https://YOUR-HOST/slack/events"
        assert {c["url"] for c in features["slash_commands"]} == {"https://YOUR-HOST/slack/events"}


def test_manifest_grants_exactly_the_scopes_the_code_calls_for(manifest: dict[str, Any]) -> None:
    granted = set(manifest["oauth_config"]["scopes"]["bot"])
    needed = needed_scopes()
    assert sorted(needed - granted) == [], "missing: the calls would get missing_scope"
    assert sorted(granted - needed) == [], "unused: least privilege says drop them"


def test_manifest_subscribes_to_exactly_the_events_the_app_listens_to(
    manifest: dict[str, Any],
) -> None:
    subscriptions = manifest["settings"]["event_subscriptions"]
    assert sorted(subscriptions["bot_events"]) == sorted(events_heard())
    assert events_heard() >= {"pin_added", "reaction_added", "member_joined_channel"}
    if manifest["settings"]["socket_mode_enabled"]:
        assert "request_url" not in subscriptions
    else:
        assert subscriptions["request_url"] == "https://YOUR-HOST/slack/events"


def test_scan_finds_client_calls_api_call_and_bolt_helpers(tmp_path: Path) -> None:
    (tmp_path / "activities").mkdir()
    (tmp_path / "starter").mkdir()
    (tmp_path / "activities" / "a.py").write_text(
        "async def f(self, client, say):\n"
        "    await self.client.conversations_history(channel='C1')\n"
        "    await client.api_call('bookmarks.list', params={})\n"
        "    await self.users_by_name('x')\n"
    )
    (tmp_path / "starter" / "b.py").write_text(
        "async def g(say, app):\n    await say('hi')\n    await app.client.views_open()\n"
    )
    assert set(methods_called(tmp_path)) == {
        "conversations.history",
        "bookmarks.list",
        "chat.postMessage",
        "views.open",
    }

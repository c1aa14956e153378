"""The one way a Slack method fails (an error code, as Slack spells it), and the scopes check
that makes a method fail the way a real workspace would."""

import json
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

# Which scopes a token has and which a method needs, as Slack checks them.
#
# The method->scope table is the repository's own (docs/slack/method-scopes.json), the one the
# manifest test derives the app's scopes from, so the emulator refuses exactly what a real
# workspace would refuse an app installed from slack-app-manifest.yml. The default bot token
# gets that manifest's bot scopes.
REPO = Path(__file__).resolve().parent.parent
METHOD_SCOPES = REPO / "docs" / "slack" / "method-scopes.json"
MANIFEST = REPO / "slack-app-manifest.yml"


@cache
def method_scopes() -> Mapping[str, Mapping[str, list[str]]]:
    table: dict[str, dict[str, list[str]]] = json.loads(METHOD_SCOPES.read_text())["methods"]
    return table


@cache
def manifest_scopes() -> frozenset[str]:
    """The bot scopes of the manifest (a list under ``oauth_config.scopes.bot``)."""
    return _manifest_list("bot:")


@cache
def manifest_events() -> frozenset[str]:
    """The events the app subscribes to (``settings.event_subscriptions.bot_events``): Slack
    delivers those and no others."""
    return _manifest_list("bot_events:")


def _manifest_list(key: str) -> frozenset[str]:
    """A list under ``key`` in the manifest, read line by line rather than with a YAML parser,
    which the product does not depend on."""
    found: set[str] = set()
    inside = False
    for line in MANIFEST.read_text().splitlines():
        stripped = line.strip()
        if stripped == key:
            inside = True
        elif inside and stripped.startswith("- "):
            found.add(stripped[2:].strip())
        elif inside and stripped:
            break
    return frozenset(found)


def check(method: str, granted: frozenset[str], private: bool) -> None:
    """``missing_scope`` (naming what is needed and what the token has) unless granted."""
    needs = method_scopes().get(method)
    if needs is None:
        return
    needed = needs.get("private", needs["scopes"]) if private else needs["scopes"]
    missing = [s for s in needed if s not in granted]
    if missing:
        raise SlackError(
            "missing_scope",
            extra={"needed": ",".join(missing), "provided": ",".join(sorted(granted))},
        )


def token_scopes(
    default_tokens: Iterable[str], scoped: Mapping[str, Iterable[str]] | None
) -> dict[str, frozenset[str]]:
    """Every known token and its scopes: the listed ones as given, the others the manifest's."""
    tokens: dict[str, Any] = {t: manifest_scopes() for t in default_tokens}
    tokens.update({t: frozenset(s) for t, s in (scoped or {}).items()})
    return tokens


class SlackError(Exception):
    """A failed Web API call; the server turns it into Slack's `{"ok": false}` answer.

    `status` stays 200 for ordinary errors because that is what Slack does; only rate
    limiting changes it (429 with Retry-After), which is what slack_sdk's retry handlers
    look at.
    """

    def __init__(
        self,
        code: str,
        *,
        status: int = 200,
        retry_after: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(code)
        self.code = code
        self.status = status
        self.retry_after = retry_after
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        return {"ok": False, "error": self.code, **self.extra}

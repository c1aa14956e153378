"""Which scopes a token has and which a method needs, as Slack checks them.

The method->scope table is the repository's own (docs/slack/method-scopes.json), the one the
manifest test derives the app's scopes from, so the emulator refuses exactly what a real
workspace would refuse an app installed from slack-app-manifest.yml. The default bot token
gets that manifest's bot scopes.
"""

import json
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from .errors import SlackError

REPO = Path(__file__).resolve().parent.parent
METHOD_SCOPES = REPO / "docs" / "slack" / "method-scopes.json"
MANIFEST = REPO / "slack-app-manifest.yml"


@cache
def method_scopes() -> Mapping[str, Mapping[str, list[str]]]:
    table: dict[str, dict[str, list[str]]] = json.loads(METHOD_SCOPES.read_text())["methods"]
    return table


@cache
def manifest_scopes() -> frozenset[str]:
    """The bot scopes of the manifest (a list under ``oauth_config.scopes.bot``).

    Read line by line rather than with a YAML parser, which the product does not depend on.
    """
    scopes: set[str] = set()
    inside = False
    for line in MANIFEST.read_text().splitlines():
        stripped = line.strip()
        if stripped == "bot:":
            inside = True
        elif inside and stripped.startswith("- "):
            scopes.add(stripped[2:].strip())
        elif inside and stripped:
            break
    return frozenset(scopes)


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

"""The one way a Slack method fails (an error code, as Slack spells it), and the scopes check
that makes a method fail the way a real workspace would.
And what a message may contain: Slack's limits on text, blocks, attachments, metadata.
"""

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
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


MAX_VIEW_BYTES = 250_000  # a view's JSON: Slack answers view_too_large past 250 kB


def home_error(view: Mapping[str, Any]) -> str | None:
    """Why Slack refuses to publish this home view: ``not_enabled`` when the manifest does not
    turn the Home tab on (``features.app_home.home_tab_enabled``), or its size."""
    if "home_tab_enabled: true" not in MANIFEST.read_text():
        return "not_enabled"
    return "view_too_large" if len(json.dumps(view)) > MAX_VIEW_BYTES else None


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


POST_TEXT_LIMIT = 40_000
# chat.update's reference documents a tighter limit than chat.postMessage; keep it,
# so code that edits messages learns about it here rather than in production.
UPDATE_TEXT_LIMIT = 4_000
MARKDOWN_TEXT_LIMIT = 12_000
MAX_BLOCKS = 50
MAX_ATTACHMENTS = 100
SECTION_TEXT_LIMIT = 3_000
HEADER_TEXT_LIMIT = 150
MAX_FIELDS = 10
FIELD_TEXT_LIMIT = 2_000
BUTTON_TEXT_LIMIT = 75
ACTION_ID_LIMIT = 255
URL_LIMIT = 3_000


@dataclass(frozen=True)
class Content:
    """Message fields a caller supplied; None means "not given" (chat.update keeps it)."""

    text: str | None
    blocks: list[dict[str, Any]] | None
    attachments: list[dict[str, Any]] | None
    metadata: dict[str, Any] | None

    def fields(self) -> dict[str, Any]:
        given = {
            "text": self.text,
            "blocks": self.blocks,
            "attachments": self.attachments,
            "metadata": self.metadata,
        }
        return {k: v for k, v in given.items() if v is not None}


def read_content(args: Mapping[str, Any], text_limit: int) -> Content:
    text = _text(args, text_limit)
    blocks = _blocks(args.get("blocks"))
    attachments = _attachments(args.get("attachments"))
    if not (text or blocks or attachments):
        raise SlackError("no_text")
    return Content(text, blocks, attachments, _metadata(args.get("metadata")))


def _text(args: Mapping[str, Any], limit: int) -> str | None:
    text = args.get("text")
    markdown = args.get("markdown_text")
    if markdown is not None:
        if text is not None or args.get("blocks") is not None:
            raise SlackError("markdown_text_conflict")
        text, limit = markdown, MARKDOWN_TEXT_LIMIT
    if text is None:
        return None
    text = str(text)
    if len(text) > limit:
        raise SlackError("msg_too_long")
    return text


def _blocks(value: Any) -> list[dict[str, Any]] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(b, dict) for b in value):
        raise SlackError("invalid_blocks_format")
    if len(value) > MAX_BLOCKS or not all(_block_ok(b) for b in value):
        raise SlackError("invalid_blocks")
    return value


def _block_ok(block: dict[str, Any]) -> bool:
    kind = block.get("type")
    if not isinstance(kind, str) or not kind:
        return False
    limit = {"section": SECTION_TEXT_LIMIT, "header": HEADER_TEXT_LIMIT}.get(kind)
    text = block.get("text")
    if limit is not None and text is not None and not _text_ok(text, limit):
        return False
    fields = block.get("fields")
    if fields is not None and (
        not isinstance(fields, list)
        or len(fields) > MAX_FIELDS
        or not all(_text_ok(f, FIELD_TEXT_LIMIT) for f in fields)
    ):
        return False
    elements = block.get("elements", []) if kind == "actions" else []
    accessory = block.get("accessory")
    elements = [*elements, accessory] if accessory is not None else elements
    return isinstance(elements, list) and all(_element_ok(e) for e in elements)


def _text_ok(text: Any, limit: int) -> bool:
    return isinstance(text, dict) and len(str(text.get("text", ""))) <= limit


def _element_ok(element: Any) -> bool:
    """Buttons and other interactive elements: Slack's limits on label, action_id, url."""
    if not isinstance(element, dict):
        return False
    if len(str(element.get("action_id", ""))) > ACTION_ID_LIMIT:
        return False
    if len(str(element.get("url", ""))) > URL_LIMIT:
        return False
    label = element.get("text")
    return element.get("type") != "button" or _text_ok(label, BUTTON_TEXT_LIMIT)


def _attachments(value: Any) -> list[dict[str, Any]] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(a, dict) for a in value):
        raise SlackError("invalid_attachments")
    if len(value) > MAX_ATTACHMENTS:
        raise SlackError("too_many_attachments")
    return value


def _metadata(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise SlackError("invalid_metadata_format")
    event_type, payload = value.get("event_type"), value.get("event_payload")
    if not isinstance(event_type, str) or not event_type or not isinstance(payload, dict):
        raise SlackError("invalid_metadata_schema")
    return {"event_type": event_type, "event_payload": payload}

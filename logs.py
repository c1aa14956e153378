"""structlog for the worker, the API and the CLI: pretty in a terminal, JSON with LOG_FORMAT=json.

Standard-library loggers (temporalio, uvicorn, aiohttp, slack_sdk) go through the same
renderer, so one process writes one format. Workflows never use this: they log through
``workflow.logger``.

No secret reaches a log line. Tracebacks are plain text without local variables (a pretty
traceback shows the locals of every frame, and slack_sdk keeps ``Authorization: Bearer xoxb-…``
in one of them), and every rendered field, message and traceback passes through
``SecretRedactor`` last, whichever logger wrote it: slack_sdk logs its request headers at DEBUG.
What it hides derives from the settings typed as secrets (``Settings.secret_fields``).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from typing import Any

import structlog

from config import Settings

REDACTED = "[redacted]"
# Slack's bot, user, app-config and refresh tokens, app-level tokens, and any bearer credential.
_TOKENS = re.compile(
    r"\bxox[abposre]-[A-Za-z0-9-]+|\bxapp-[A-Za-z0-9-]+|(?<=[Bb]earer )[^\s'\",}\]]+"
)
# What other parties call a credential (slack_sdk logs its request headers; OAuth payloads
# carry client_secret and access_token). Our own secrets are known by their settings.
_CREDENTIAL_FIELD = re.compile(r"authorization|token|secret|password", re.I)
_MIN_SECRET = 8  # shorter values would redact ordinary words


class SecretRedactor:
    """A structlog processor: secrets in any field (nested too) become ``[redacted]``.

    It hides the values it is given wherever they show up, and any field whose name says it
    holds a credential or ends like the name of a secret setting (``routing_key`` for
    ``paging_routing_key``).
    """

    def __init__(self, secrets: Iterable[str] = (), secret_names: Iterable[str] = ()) -> None:
        self.secrets = sorted({s for s in secrets if len(s) >= _MIN_SECRET}, key=len, reverse=True)
        self.name_endings = tuple({"_".join(name.lower().split("_")[-2:]) for name in secret_names})

    @classmethod
    def of(cls, settings: Settings) -> SecretRedactor:
        """Everything the settings type as a secret: their values and their names."""
        return cls(settings.secret_values(), settings.secret_fields())

    def secret_field(self, name: str) -> bool:
        return bool(_CREDENTIAL_FIELD.search(name)) or name.lower().endswith(self.name_endings)

    def text(self, value: str) -> str:
        for secret in self.secrets:
            value = value.replace(secret, REDACTED)
        return _TOKENS.sub(REDACTED, value)

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {
                k: REDACTED if isinstance(k, str) and self.secret_field(k) else self.value(v)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple | set):
            return [self.value(v) for v in value]
        if isinstance(value, int | float | bool) or value is None:
            return value
        return self.text(repr(value))

    def __call__(self, logger: Any, method: str, event_dict: Any) -> Any:
        return {
            key: value
            if key.startswith("_")
            else (REDACTED if self.secret_field(key) else self.value(value))
            for key, value in event_dict.items()
        }


def configure_logging(settings: Settings) -> None:
    """LOG_FORMAT and LOG_LEVEL for every logger of the process, its secrets redacted."""
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if settings.log_format == "json"
        else structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                # The traceback becomes text here (no locals), so the redactor sees it.
                structlog.processors.format_exc_info,
                SecretRedactor.of(settings),
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    handler.addFilter(without_slack_bodies)
    # Bolt's debug lines carry whole requests: what people typed, a private incident's title.
    logging.getLogger("slack_bolt").setLevel(max(root.level, logging.INFO))


# What slack_sdk's debug lines say of a call's arguments and of its answer's body.
_SENT = re.compile(r"params: .*?, proxy: ", re.S)
_RECEIVED = re.compile(r"body: .*", re.S)


def without_slack_bodies(record: logging.LogRecord) -> bool:
    """slack_sdk's debug lines keep the method, status and (redacted) headers, but not the
    arguments or the answer: those are people's text, a private incident's title among them."""
    if record.name.startswith("slack_sdk") and record.levelno <= logging.DEBUG:
        text = _SENT.sub("params, files, data, json: [not logged], proxy: ", record.getMessage())
        record.msg, record.args = _RECEIVED.sub("body: [not logged]", text), ()
    return True

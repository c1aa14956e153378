"""structlog for the worker, the API and the CLI: pretty in a terminal, JSON with LOG_FORMAT=json.

Standard-library loggers (temporalio, uvicorn, aiohttp, slack_sdk) go through the same
renderer, so one process writes one format. Workflows never use this: they log through
``workflow.logger``.

No secret reaches a log line. Tracebacks are plain text without local variables (a pretty
traceback shows the locals of every frame, and slack_sdk keeps ``Authorization: Bearer xoxb-…``
in one of them), and every rendered field, message and traceback passes through
``redact_secrets`` last, whichever logger wrote it: slack_sdk logs its request headers at DEBUG.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable
from typing import Any

import structlog

REDACTED = "[redacted]"
# Slack's bot, user, app-config and refresh tokens, app-level tokens, and any bearer credential.
_TOKENS = re.compile(
    r"\bxox[abposre]-[A-Za-z0-9-]+|\bxapp-[A-Za-z0-9-]+|(?<=[Bb]earer )[^\s'\",}\]]+"
)
# Fields whose value is a secret whatever it looks like.
_SECRET_FIELD = re.compile(r"token|secret|password|authorization|api_key|routing_key", re.I)
# Secrets configured through the environment, redacted wherever their value shows up.
SECRET_SETTINGS = (
    "SLACK_BOT_TOKEN",
    "SLACK_APP_TOKEN",
    "SLACK_SIGNING_SECRET",
    "INCIDENT_API_TOKENS",
    "INCIDENT_PAGING_ROUTING_KEY",
    "INCIDENT_WEBHOOK_URL",
    "INCIDENT_SMTP_PASSWORD",
    "TEMPORAL_API_KEY",
)
_MIN_SECRET = 8  # shorter values would redact ordinary words


def known_secrets(environ: dict[str, str] | None = None) -> list[str]:
    env = os.environ if environ is None else environ
    values = (v.strip() for name in SECRET_SETTINGS for v in env.get(name, "").split(","))
    return sorted({v for v in values if len(v) >= _MIN_SECRET}, key=len, reverse=True)


class SecretRedactor:
    """A structlog processor: secrets in any field (nested too) become ``[redacted]``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = [s for s in secrets if s]

    def text(self, value: str) -> str:
        for secret in self.secrets:
            value = value.replace(secret, REDACTED)
        return _TOKENS.sub(REDACTED, value)

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {
                k: REDACTED if isinstance(k, str) and _SECRET_FIELD.search(k) else self.value(v)
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
            else (REDACTED if _SECRET_FIELD.search(key) else self.value(value))
            for key, value in event_dict.items()
        }


def configure_logging(log_format: str = "console", level: str = "info") -> None:
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
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
                SecretRedactor(known_secrets()),
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())

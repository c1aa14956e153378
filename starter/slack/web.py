"""The bot's Web API client for the entry points (the people resolver, the Slack app)."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from clients.slack_client import slack_client
from config import ConfigError, Settings


def bot_client(settings: Settings) -> AsyncWebClient | None:
    """The same client the activities use (reads retried, writes never re-sent), or None when
    no token is configured for a real Slack: the API still serves everything but Slack."""
    try:
        token = settings.slack_token()
    except ConfigError:
        return None
    return slack_client(token, settings.slack_api_url)

"""The bot's Web API client for the entry points (the people directory, the Slack app)."""

from __future__ import annotations

from urllib.parse import urlparse

from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from config import Settings

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def is_local_emulator(api_url: str) -> bool:
    return urlparse(api_url).hostname in LOCAL_HOSTS


def bot_token(settings: Settings) -> str | None:
    """SLACK_BOT_TOKEN; without one, the emulator's token, but only when SLACK_API_URL points at
    a local emulator (a made-up token must never be sent to a real Slack)."""
    if settings.slack_bot_token:
        return settings.slack_bot_token
    if is_local_emulator(settings.slack_api_url):
        from localslack import BOT_TOKEN

        return BOT_TOKEN
    return None


def bot_client(settings: Settings) -> AsyncWebClient | None:
    token = bot_token(settings)
    if token is None:
        return None
    # Only reads and a modal open go through here; a 429 is worth waiting out.
    return AsyncWebClient(
        token=token,
        base_url=settings.slack_api_url,
        timeout=10,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)],
    )

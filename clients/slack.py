"""The incident's Slack, over one Web API client: its channels, its posts and its people."""

from __future__ import annotations

from collections.abc import Callable

from slack_sdk.web.async_client import AsyncWebClient

from clients.slack_channels import SlackChannels, SlackPeople
from clients.slack_posts import SlackPosts


class Slack:
    """Built once per process, so the bot's id and the broadcast channel's are looked up once."""

    def __init__(
        self, client: AsyncWebClient, broadcast_channel: str, incident_url: Callable[[str], str]
    ) -> None:
        self.client = client
        self.people = SlackPeople(client)
        self.channels = SlackChannels(client, self.people, incident_url)
        self.posts = SlackPosts(self.channels, broadcast_channel)

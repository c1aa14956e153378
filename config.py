"""Typed settings from the environment (CONTRACT.md lists every variable)."""

from __future__ import annotations

from functools import cached_property

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from workflows.policy import Policy, load_policy


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", populate_by_name=True)

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    task_queue: str = Field(default="incidents", validation_alias="INCIDENT_TASK_QUEUE")
    temporal_ui_url: str = "http://localhost:8233"

    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_api_url: str = "https://slack.com/api/"
    broadcast_channel: str = Field(
        default="incidents",
        validation_alias=AliasChoices("INCIDENT_BROADCAST_CHANNEL", "broadcast_channel"),
    )

    policy_file: str | None = Field(
        default=None, validation_alias=AliasChoices("INCIDENT_POLICY_FILE", "policy_file")
    )
    api_tokens: str = Field(
        default="", validation_alias=AliasChoices("INCIDENT_API_TOKENS", "api_tokens")
    )
    api_host: str = "127.0.0.1"
    api_port: int = 8000

    paging_url: str | None = Field(
        default=None, validation_alias=AliasChoices("INCIDENT_PAGING_URL", "paging_url")
    )
    paging_routing_key: str = Field(
        default="", validation_alias=AliasChoices("INCIDENT_PAGING_ROUTING_KEY")
    )
    webhook_url: str | None = Field(
        default=None, validation_alias=AliasChoices("INCIDENT_WEBHOOK_URL", "webhook_url")
    )

    smtp_host: str | None = Field(default=None, validation_alias="INCIDENT_SMTP_HOST")
    smtp_port: int = Field(default=587, validation_alias="INCIDENT_SMTP_PORT")
    smtp_user: str | None = Field(default=None, validation_alias="INCIDENT_SMTP_USER")
    smtp_password: str | None = Field(
        default=None, validation_alias="INCIDENT_SMTP_PASSWORD", repr=False
    )
    smtp_from: str = Field(default="incidents@localhost", validation_alias="INCIDENT_SMTP_FROM")
    smtp_starttls: bool = Field(default=False, validation_alias="INCIDENT_SMTP_STARTTLS")
    database_url: str = Field(
        default="sqlite:///.data/incidents.db",
        validation_alias=AliasChoices("INCIDENT_DATABASE_URL", "database_url"),
    )

    log_format: str = "console"
    log_level: str = "info"

    @property
    def bearer_tokens(self) -> frozenset[str]:
        return frozenset(t.strip() for t in self.api_tokens.split(",") if t.strip())

    @cached_property
    def policy(self) -> Policy:
        return load_policy(self.policy_file)

    def incident_url(self, incident_id: str) -> str:
        """Where an operator sees this incident in the Temporal Web UI."""
        base = self.temporal_ui_url.rstrip("/")
        return f"{base}/namespaces/{self.temporal_namespace}/workflows/{incident_id}"


async def connect(settings: Settings, *, lazy: bool = False) -> Client:
    """The one way to reach Temporal; ``lazy`` lets the API start before Temporal is up."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        lazy=lazy,
    )

"""Typed settings from the environment (docs/contract.md lists every variable)."""

from __future__ import annotations

from functools import cached_property
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime
from temporalio.service import TLSConfig

from workflows.policy import Policy, load_policy


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", populate_by_name=True)

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    task_queue: str = Field(default="incidents", validation_alias="INCIDENT_TASK_QUEUE")
    temporal_ui_url: str = "http://localhost:8233"
    # Temporal Cloud or any server behind TLS: mTLS (certificate and key, each a file path or
    # the PEM text itself) or an API key; either turns TLS on.
    temporal_tls: bool = False
    temporal_tls_cert: str | None = None
    temporal_tls_key: str | None = None
    temporal_tls_ca: str | None = None
    temporal_api_key: str | None = None

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

    # Where people reach the API from outside: the status page's links in emails and webhooks.
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        validation_alias=AliasChoices("INCIDENT_PUBLIC_URL", "public_url"),
    )
    status_page_title: str = Field(
        default="Service",
        validation_alias=AliasChoices("INCIDENT_STATUS_TITLE", "status_page_title"),
    )
    # Subscribing needs no token, so webhooks to private addresses (this host, the internal
    # network) are refused, when they subscribe and at every delivery, unless a deployment
    # says it wants them (tests, a private page).
    status_private_webhooks: bool = Field(
        default=False,
        validation_alias=AliasChoices(
            "INCIDENT_STATUS_PRIVATE_WEBHOOKS", "status_private_webhooks"
        ),
    )

    # Worker Versioning: the worker polls as version <deployment>:<build>; an incident stays
    # on the build it started on. The build id defaults to the package's version.
    deployment_name: str = Field(default="incidents", validation_alias="INCIDENT_DEPLOYMENT_NAME")
    build_id: str = Field(
        default_factory=lambda: version("incident-automation"), validation_alias="INCIDENT_BUILD_ID"
    )
    # Make this build current at start even when another one is: new incidents go to it.
    # Unset, a worker makes itself current only when the deployment has no current version.
    set_current_version: bool = Field(
        default=False, validation_alias="INCIDENT_SET_CURRENT_VERSION"
    )

    log_format: str = "console"
    log_level: str = "info"

    # The worker's Prometheus endpoint (Temporal SDK metrics) on 127.0.0.1; unset: none.
    worker_metrics_port: int | None = None
    # On SIGTERM the worker stops polling and gives running activities this long to finish.
    worker_shutdown_grace: float = 30.0

    @property
    def api_token_list(self) -> list[str]:
        """INCIDENT_API_TOKENS in the order given (the first is the one tools print)."""
        return [t.strip() for t in self.api_tokens.split(",") if t.strip()]

    @property
    def bearer_tokens(self) -> frozenset[str]:
        return frozenset(self.api_token_list)

    def slack_token(self) -> str:
        """SLACK_BOT_TOKEN; without one, the emulator's token, but only for a local emulator.

        Real Slack would refuse the emulator's token on every call, so a missing token with
        SLACK_API_URL pointing anywhere else is a configuration error, said at start-up.
        """
        if self.slack_bot_token:
            return self.slack_bot_token
        host = urlsplit(self.slack_api_url).hostname or ""
        if host in LOOPBACK_HOSTS:
            from localslack import BOT_TOKEN

            return BOT_TOKEN
        raise ConfigError(
            f"SLACK_BOT_TOKEN is not set and SLACK_API_URL ({self.slack_api_url}) is not a "
            "local emulator: set SLACK_BOT_TOKEN to the app's bot token (xoxb-...), or point "
            "SLACK_API_URL at the emulator (`make run` does both for you)"
        )

    @cached_property
    def policy(self) -> Policy:
        return load_policy(self.policy_file)

    def incident_url(self, incident_id: str) -> str:
        """Where an operator sees this incident in the Temporal Web UI."""
        base = self.temporal_ui_url.rstrip("/")
        return f"{base}/namespaces/{self.temporal_namespace}/workflows/{incident_id}"


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class ConfigError(ValueError):
    """A setting that cannot work; the message names the variable and what to do."""


def _pem(value: str, variable: str) -> bytes:
    """PEM text given inline, or read from the file the value names."""
    if value.lstrip().startswith("-----BEGIN"):
        return value.encode()
    try:
        return Path(value).read_bytes()
    except OSError as error:
        raise ConfigError(f"{variable}: cannot read {value!r}: {error.strerror}") from None


def tls_config(settings: Settings) -> TLSConfig | bool:
    """What ``Client.connect`` gets as ``tls``: False, True, or client certificates."""
    cert, key = settings.temporal_tls_cert, settings.temporal_tls_key
    if bool(cert) != bool(key):
        raise ConfigError("TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together: set both or neither")
    if cert and key:
        return TLSConfig(
            client_cert=_pem(cert, "TEMPORAL_TLS_CERT"),
            client_private_key=_pem(key, "TEMPORAL_TLS_KEY"),
            server_root_ca_cert=(
                _pem(settings.temporal_tls_ca, "TEMPORAL_TLS_CA")
                if settings.temporal_tls_ca
                else None
            ),
        )
    if settings.temporal_tls_ca:
        return TLSConfig(server_root_ca_cert=_pem(settings.temporal_tls_ca, "TEMPORAL_TLS_CA"))
    return settings.temporal_tls or bool(settings.temporal_api_key)


def connect_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments of ``Client.connect`` these settings stand for."""
    return {
        "target_host": settings.temporal_address,
        "namespace": settings.temporal_namespace,
        "data_converter": pydantic_data_converter,
        "tls": tls_config(settings),
        "api_key": settings.temporal_api_key or None,
    }


async def connect(
    settings: Settings, *, lazy: bool = False, runtime: Runtime | None = None
) -> Client:
    """The one way to reach Temporal; ``lazy`` lets the API start before Temporal is up."""
    return await Client.connect(**connect_options(settings), lazy=lazy, runtime=runtime)

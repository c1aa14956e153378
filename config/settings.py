"""Every environment variable the product reads, named once and typed (docs/contract.md).

``Settings`` is the worker's and the API's, ``CliSettings`` the ``incident`` command's (no
Temporal: it talks to the API), ``EmulatorSettings`` the Slack emulator's. A secret is a
``SecretStr``, so printing settings never shows it, and the log redactor hides exactly the
values and field names ``secret_fields`` lists (logs.py).
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from functools import cached_property
from importlib.metadata import version
from typing import TYPE_CHECKING, Any, Self, get_args
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# The Temporal side needs nothing of this module at run time (only its type), so it sits below.
from config.temporal import ConfigError, load_profile, reveal

if TYPE_CHECKING:
    from temporalio.envconfig import ClientConfigProfile

    from workflows.policy import Policy


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or (
        isinstance(annotation, types.UnionType) and SecretStr in get_args(annotation)
    )


class FromEnvironment(BaseSettings):
    """Settings read from the environment (names are not case sensitive)."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", populate_by_name=True)

    @classmethod
    def secret_fields(cls) -> list[str]:
        """The fields typed as secrets: what the log redactor hides, by name and by value."""
        return [name for name, f in cls.model_fields.items() if _is_secret(f.annotation)]

    def secret_values(self) -> list[str]:
        """Each secret's text, each token of a comma-separated list, and a URL's password."""
        values: list[str] = []
        for name in self.secret_fields():
            text = reveal(getattr(self, name)) or ""
            values += [part.strip() for part in text.split(",")]
            if "://" in text:
                values.append(urlsplit(text).password or "")
        return [value for value in values if value]

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy built like the original, so changed values are validated (a token given as
        text becomes a SecretStr) and nothing computed from the old values is carried over.
        All values are immutable, so a copy is always as deep as it can be."""
        return type(self)(**{**self.model_dump(), **(update or {})})


class ApiTokens(FromEnvironment):
    """The API's bearer tokens: the API checks them, the CLI and the dev runner use the first."""

    api_tokens: SecretStr = Field(
        default=SecretStr(""), validation_alias=AliasChoices("INCIDENT_API_TOKENS", "api_tokens")
    )

    @property
    def api_token_list(self) -> list[str]:
        """INCIDENT_API_TOKENS in the order given (the first is the one tools print)."""
        return [t.strip() for t in self.api_tokens.get_secret_value().split(",") if t.strip()]

    @property
    def bearer_tokens(self) -> frozenset[str]:
        return frozenset(self.api_token_list)


class SlackSigning(FromEnvironment):
    """Slack signs what it sends the app with this secret; the emulator signs the same way."""

    slack_signing_secret: SecretStr | None = None


class CliSettings(ApiTokens):
    """The ``incident`` command's: where the API is and who is asking."""

    api_url: str = Field(default="http://127.0.0.1:8000", validation_alias="INCIDENT_API_URL")
    api_token: SecretStr | None = Field(default=None, validation_alias="INCIDENT_API_TOKEN")
    # You, recorded as who acted: a Slack user id or a handle.
    user: str | None = Field(default=None, validation_alias="INCIDENT_USER")

    def bearer_token(self, logged_in: str | None = None) -> str:
        """INCIDENT_API_TOKEN, else the token of ``incident login`` (``logged_in``), else the
        first of the API's own INCIDENT_API_TOKENS."""
        return reveal(self.api_token) or logged_in or next(iter(self.api_token_list), "")


class EmulatorSettings(SlackSigning):
    """The Slack emulator's page drives the app at this URL (its /slack/events), signed."""

    app_url: str = Field(default="", validation_alias="LOCALSLACK_APP_URL")


class Settings(ApiTokens, SlackSigning):
    """The worker's and the API's settings."""

    # The Temporal connection, as Temporal's own tools read it (config/temporal.py): unset
    # values come from the profile file, then the defaults.
    temporal_profile: str | None = None
    temporal_config_file: str | None = None
    temporal_address: str | None = None
    temporal_namespace: str | None = None
    temporal_api_key: SecretStr | None = None
    temporal_tls: bool | None = None
    temporal_tls_client_cert_path: str | None = None
    temporal_tls_client_cert_data: str | None = None
    temporal_tls_client_key_path: str | None = None
    temporal_tls_client_key_data: SecretStr | None = None
    temporal_tls_server_ca_cert_path: str | None = None
    temporal_tls_server_ca_cert_data: str | None = None
    temporal_tls_server_name: str | None = None
    # The older names, each a file path or the PEM text itself; used where the envconfig
    # variable of the same item is unset.
    temporal_tls_cert: str | None = None
    temporal_tls_key: SecretStr | None = None
    temporal_tls_ca: str | None = None
    temporal_ui_url: str = "http://localhost:8233"
    task_queue: str = Field(default="incidents", validation_alias="INCIDENT_TASK_QUEUE")

    slack_bot_token: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    broadcast_channel: str = Field(
        default="incidents",
        validation_alias=AliasChoices("INCIDENT_BROADCAST_CHANNEL", "broadcast_channel"),
    )

    policy_file: str | None = Field(
        default=None, validation_alias=AliasChoices("INCIDENT_POLICY_FILE", "policy_file")
    )
    api_host: str = "127.0.0.1"
    api_port: int = 8000

    paging_url: str | None = Field(
        default=None, validation_alias=AliasChoices("INCIDENT_PAGING_URL", "paging_url")
    )
    paging_routing_key: SecretStr = Field(
        default=SecretStr(""), validation_alias=AliasChoices("INCIDENT_PAGING_ROUTING_KEY")
    )
    # PagerDuty signs its v3 webhooks with this (X-PagerDuty-Signature); unset, the route
    # /integrations/pagerduty answers 404: the integration is off.
    pagerduty_webhook_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("INCIDENT_PAGERDUTY_WEBHOOK_SECRET")
    )
    # A webhook's address is its credential (Slack's and most chat tools' carry a token).
    webhook_url: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("INCIDENT_WEBHOOK_URL", "webhook_url")
    )

    smtp_host: str | None = Field(default=None, validation_alias="INCIDENT_SMTP_HOST")
    smtp_port: int = Field(default=587, validation_alias="INCIDENT_SMTP_PORT")
    smtp_user: str | None = Field(default=None, validation_alias="INCIDENT_SMTP_USER")
    smtp_password: SecretStr | None = Field(default=None, validation_alias="INCIDENT_SMTP_PASSWORD")
    smtp_from: str = Field(default="incidents@localhost", validation_alias="INCIDENT_SMTP_FROM")
    smtp_starttls: bool = Field(default=False, validation_alias="INCIDENT_SMTP_STARTTLS")
    # A secret as a whole: a PostgreSQL URL carries the password.
    database_url: SecretStr = Field(
        default=SecretStr("sqlite:///.data/incidents.db"),
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

    def slack_token(self) -> str:
        """SLACK_BOT_TOKEN; without one, the emulator's token, but only for a local emulator.

        Real Slack would refuse the emulator's token on every call, so a missing token with
        SLACK_API_URL pointing anywhere else is a configuration error, said at start-up.
        """
        if self.slack_bot_token:
            return self.slack_bot_token.get_secret_value()
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
    def temporal(self) -> ClientConfigProfile:
        """The Temporal connection these settings stand for, address and namespace resolved."""
        return load_profile(self)

    @cached_property
    def policy(self) -> Policy:
        """The policy, loaded once; a schedule leaving nobody on call in the next four weeks
        is logged with the windows (a warning, not a refusal: an override may fill them)."""
        from datetime import UTC, datetime

        import structlog

        from workflows.oncall.schedules import coverage_warnings
        from workflows.policy import load_policy

        policy = load_policy(self.policy_file)
        for warning in coverage_warnings(policy.schedules, datetime.now(UTC)):
            structlog.get_logger().warning("oncall_gap", warning=warning)
        return policy

    def incident_url(self, incident_id: str) -> str:
        """Where an operator sees this incident in the Temporal Web UI."""
        base = self.temporal_ui_url.rstrip("/")
        return f"{base}/namespaces/{self.temporal.namespace}/workflows/{incident_id}"


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

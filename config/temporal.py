"""The Temporal connection, read the way Temporal's CLI and SDKs read it (envconfig).

A profile (``TEMPORAL_PROFILE``, else ``default``) from the TOML file (``TEMPORAL_CONFIG_FILE``,
else ``~/.config/temporalio/temporal.toml`` when it exists), under the ``TEMPORAL_*``
variables of envconfig. The older ``TEMPORAL_TLS_CERT``, ``TEMPORAL_TLS_KEY`` and
``TEMPORAL_TLS_CA`` (each a file path or the PEM text) still work: each stands for the
envconfig variables of its item when those are unset.

The SDK is imported when a process connects, not with this module: the ``incident`` command
imports config too and must start fast.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

if TYPE_CHECKING:
    from temporalio.client import Client
    from temporalio.converter import DataConverter
    from temporalio.envconfig import ClientConfigProfile, DataSource
    from temporalio.runtime import Runtime
    from temporalio.service import TLSConfig

    from config.settings import Settings

DEFAULT_ADDRESS = "localhost:7233"
DEFAULT_NAMESPACE = "default"
# A certificate or key item of envconfig (its _PATH and _DATA variables) and the older
# variable that stands for it.
OLDER_NAMES = {
    "temporal_tls_client_cert": "temporal_tls_cert",
    "temporal_tls_client_key": "temporal_tls_key",
    "temporal_tls_server_ca_cert": "temporal_tls_ca",
}
# Settings passed to envconfig as they are, under their own names.
AS_GIVEN = (
    "temporal_address",
    "temporal_namespace",
    "temporal_api_key",
    "temporal_tls_server_name",
)


class ConfigError(ValueError):
    """A setting that cannot work; the message names the variable and what to do."""


def reveal(secret: SecretStr | None) -> str | None:
    return None if secret is None else secret.get_secret_value()


def _text(value: str | SecretStr | None) -> str | None:
    return reveal(value) if isinstance(value, SecretStr) else value


def envconfig_variables(settings: Settings) -> dict[str, str]:
    """The TEMPORAL_* variables envconfig reads, as these settings give them."""
    values = {name.upper(): _text(getattr(settings, name)) for name in AS_GIVEN}
    variables = {name: text for name, text in values.items() if text}
    if settings.temporal_tls is not None:
        variables["TEMPORAL_TLS"] = str(settings.temporal_tls).lower()
    for item, older in OLDER_NAMES.items():
        path = _text(getattr(settings, f"{item}_path"))
        data = _text(getattr(settings, f"{item}_data"))
        if not (path or data) and (given := _text(getattr(settings, older))):
            path, data = (None, given) if given.lstrip().startswith("-----BEGIN") else (given, None)
        if path:
            variables[f"{item.upper()}_PATH"] = path
        if data:
            variables[f"{item.upper()}_DATA"] = data
    return variables


def load_profile(settings: Settings) -> ClientConfigProfile:
    """The profile under the variables, with Temporal's defaults for address and namespace."""
    from temporalio.envconfig import ClientConfigProfile

    source = None
    if settings.temporal_config_file:
        try:
            source = Path(settings.temporal_config_file).read_bytes()
        except OSError as error:
            raise ConfigError(
                f"TEMPORAL_CONFIG_FILE: cannot read {settings.temporal_config_file!r}: "
                f"{error.strerror}"
            ) from None
    try:
        profile = ClientConfigProfile.load(
            settings.temporal_profile,
            config_source=source,
            override_env_vars=envconfig_variables(settings),
        )
    except RuntimeError as error:  # envconfig's own error: a bad file, an unknown profile
        raise ConfigError(f"Temporal client configuration: {error}") from None
    return dataclasses.replace(
        profile,
        address=profile.address or DEFAULT_ADDRESS,
        namespace=profile.namespace or DEFAULT_NAMESPACE,
    )


def _origin(settings: Settings, item: str) -> str:
    """The variable a certificate or key came from, for an error message."""
    for name in (f"{item}_path", f"{item}_data", OLDER_NAMES[item]):
        if getattr(settings, name):
            return name.upper()
    return f"the profile's tls.{item.removeprefix('temporal_tls_')}"


def _pem(source: DataSource | None, settings: Settings, item: str) -> bytes | None:
    if isinstance(source, Path):
        try:
            return source.read_bytes()
        except OSError as error:
            origin = _origin(settings, item)
            raise ConfigError(f"{origin}: cannot read {str(source)!r}: {error.strerror}") from None
    return source.encode() if isinstance(source, str) else source


def tls_config(settings: Settings) -> TLSConfig | bool:
    """What ``Client.connect`` gets as ``tls``, by envconfig's rules: an API key alone means
    TLS with the system's CAs; a TLS section means TLS unless it says disabled."""
    from temporalio.service import TLSConfig

    profile = settings.temporal
    tls = profile.tls
    if tls is None:
        return profile.api_key is not None
    if tls.disabled:
        return False
    if (tls.client_cert is None) != (tls.client_private_key is None):
        raise ConfigError(
            "the client certificate and its key go together: set both or neither of "
            "TEMPORAL_TLS_CLIENT_CERT_PATH (or _DATA) and TEMPORAL_TLS_CLIENT_KEY_PATH (or "
            "_DATA), or of the older TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY"
        )
    return TLSConfig(
        domain=tls.server_name,
        server_root_ca_cert=_pem(tls.server_root_ca_cert, settings, "temporal_tls_server_ca_cert"),
        client_cert=_pem(tls.client_cert, settings, "temporal_tls_client_cert"),
        client_private_key=_pem(tls.client_private_key, settings, "temporal_tls_client_key"),
    )


@functools.cache
def data_converter() -> DataConverter:
    """pydantic's data converter with one JSON payload converter for the whole process.

    The SDK builds a payload converter from its class for each workflow instance and again for
    each activation, and pydantic's converter keeps its TypeAdapters per instance: a replayed
    incident built a TypeAdapter of its input (the whole policy), of its memo and of each
    activity result again. The converter holds nothing else; the worker passes every module
    through the sandbox (``build_worker``), so a type is one object in every instance (in the
    SDK's default sandbox, a workflow module imported again per instance brings new types:
    they take entries of their own, up to the cache's bound, 1,024).
    """
    from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
    from temporalio.converter import (
        CompositePayloadConverter,
        DataConverter,
        DefaultPayloadConverter,
        JSONPlainPayloadConverter,
    )

    json = PydanticJSONPlainPayloadConverter()

    class PayloadConverter(CompositePayloadConverter):
        def __init__(self) -> None:
            defaults = DefaultPayloadConverter.default_encoding_payload_converters
            super().__init__(
                *(json if isinstance(c, JSONPlainPayloadConverter) else c for c in defaults)
            )

    return DataConverter(payload_converter_class=PayloadConverter)


def connect_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments of ``Client.connect`` these settings stand for."""
    profile = settings.temporal
    return {
        "target_host": profile.address,
        "namespace": profile.namespace,
        "api_key": profile.api_key,
        "tls": tls_config(settings),
        "rpc_metadata": dict(profile.grpc_meta),
        "data_converter": data_converter(),
    }


async def connect(
    settings: Settings, *, lazy: bool = False, runtime: Runtime | None = None
) -> Client:
    """The one way to reach Temporal; ``lazy`` lets the API start before Temporal is up."""
    from temporalio.client import Client

    return await Client.connect(**connect_options(settings), lazy=lazy, runtime=runtime)

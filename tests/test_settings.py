"""Settings that decide where the worker and the API connect, and what they refuse."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from temporalio.service import TLSConfig

from config import CliSettings, ConfigError, Settings, connect_options
from localslack import BOT_TOKEN
from tests.processes import Process, free_port

CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"


async def test_worker_without_a_token_for_real_slack_stops_with_a_clear_message(
    tmp_path: Path,
) -> None:
    worker = Process(
        "worker",
        [sys.executable, "worker.py"],
        tmp_path / "worker.log",
        env={
            "SLACK_API_URL": "https://slack.com/api/",
            "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        },
    ).start()
    assert worker.popen is not None
    code = await asyncio.to_thread(worker.popen.wait, 30)
    output = worker.output()
    assert code == 2, output
    assert "worker: error: SLACK_BOT_TOKEN is not set" in output
    assert "https://slack.com/api/" in output
    assert "Traceback" not in output


def test_only_a_local_emulator_lends_its_token() -> None:
    for local in ("http://127.0.0.1:3090/api/", "http://localhost:3090/api/"):
        assert Settings(slack_api_url=local).slack_token() == BOT_TOKEN
    assert Settings(slack_bot_token="xoxb-real").slack_token() == "xoxb-real"
    for remote in ("https://slack.com/api/", "http://127.0.0.1.example.com/api/"):
        with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN"):
            Settings(slack_api_url=remote).slack_token()


def test_api_tokens_keep_their_order_and_drop_blanks() -> None:
    settings = Settings(api_tokens=" first, ,second,")
    assert settings.api_token_list == ["first", "second"]
    assert settings.bearer_tokens == frozenset({"first", "second"})


def test_a_local_server_is_reached_without_tls() -> None:
    options = connect_options(Settings(temporal_address="127.0.0.1:7233"))
    assert options["target_host"] == "127.0.0.1:7233"
    assert options["tls"] is False and options["api_key"] is None


def test_an_api_key_turns_tls_on() -> None:
    options = connect_options(
        Settings(
            temporal_address="ns.acct.tmprl.cloud:7233",
            temporal_namespace="ns.acct",
            temporal_api_key="key-123",
        )
    )
    assert options["tls"] is True
    assert options["api_key"] == "key-123"
    assert options["namespace"] == "ns.acct"


def test_client_certificates_come_from_files_or_inline(tmp_path: Path) -> None:
    (tmp_path / "client.pem").write_text(CERT)
    (tmp_path / "client.key").write_text(KEY)
    for cert, key in [(str(tmp_path / "client.pem"), str(tmp_path / "client.key")), (CERT, KEY)]:
        tls = connect_options(Settings(temporal_tls_cert=cert, temporal_tls_key=key))["tls"]
        assert isinstance(tls, TLSConfig)
        assert tls.client_cert == CERT.encode()
        assert tls.client_private_key == KEY.encode()
        assert tls.server_root_ca_cert is None


def test_a_certificate_without_its_key_is_refused() -> None:
    with pytest.raises(ConfigError, match="TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY"):
        connect_options(Settings(temporal_tls_cert=CERT))


def test_an_unreadable_certificate_file_is_named() -> None:
    with pytest.raises(ConfigError, match="TEMPORAL_TLS_KEY: cannot read '/nonexistent/key'"):
        connect_options(Settings(temporal_tls_cert=CERT, temporal_tls_key="/nonexistent/key"))


def test_a_private_ca_alone_verifies_the_server() -> None:
    tls = connect_options(Settings(temporal_tls_ca=CERT))["tls"]
    assert isinstance(tls, TLSConfig)
    assert tls.server_root_ca_cert == CERT.encode() and tls.client_cert is None


def test_a_profile_file_gives_the_whole_connection(tmp_path: Path) -> None:
    (tmp_path / "client.pem").write_text(CERT)
    config = write_profiles(tmp_path)
    options = connect_options(Settings(temporal_config_file=config, temporal_profile="cloud"))
    assert options["target_host"] == "ns.acct.tmprl.cloud:7233"
    assert options["namespace"] == "ns.acct" and options["api_key"] == "cloud-key"
    tls = options["tls"]
    assert isinstance(tls, TLSConfig) and tls.domain == "ns.acct.tmprl.cloud"
    assert tls.client_cert == CERT.encode() and tls.client_private_key == KEY.encode()
    assert options["rpc_metadata"] == {"x-team": "incidents"}


def test_without_a_profile_name_the_default_profile_is_read(tmp_path: Path) -> None:
    settings = Settings(temporal_config_file=write_profiles(tmp_path))
    options = connect_options(settings)
    assert options["target_host"] == "temporal.internal:7233" and options["tls"] is False
    assert settings.incident_url("incident-7").endswith("/namespaces/ops/workflows/incident-7")


def test_the_environment_overrides_the_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "client.pem").write_text(CERT)
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", write_profiles(tmp_path))
    monkeypatch.setenv("TEMPORAL_PROFILE", "cloud")
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "staging.acct")
    monkeypatch.setenv("TEMPORAL_API_KEY", "env-key")
    options = connect_options(Settings())
    assert options["target_host"] == "ns.acct.tmprl.cloud:7233"
    assert options["namespace"] == "staging.acct" and options["api_key"] == "env-key"


def test_envconfig_variables_give_tls_with_a_client_certificate_and_an_api_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "client.pem").write_text(CERT)
    (tmp_path / "ca.pem").write_text(CERT)
    for name, value in {
        "TEMPORAL_ADDRESS": "temporal.example.com:7233",
        "TEMPORAL_NAMESPACE": "incidents",
        "TEMPORAL_API_KEY": "key-456",
        "TEMPORAL_TLS_CLIENT_CERT_PATH": str(tmp_path / "client.pem"),
        "TEMPORAL_TLS_CLIENT_KEY_DATA": KEY,
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(tmp_path / "ca.pem"),
        "TEMPORAL_TLS_SERVER_NAME": "frontend.example.com",
    }.items():
        monkeypatch.setenv(name, value)
    options = connect_options(Settings())
    assert options["target_host"] == "temporal.example.com:7233"
    assert options["namespace"] == "incidents" and options["api_key"] == "key-456"
    tls = options["tls"]
    assert isinstance(tls, TLSConfig) and tls.domain == "frontend.example.com"
    assert tls.client_cert == CERT.encode() and tls.client_private_key == KEY.encode()
    assert tls.server_root_ca_cert == CERT.encode()


def test_the_older_names_still_work_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "client.key").write_text(KEY)
    monkeypatch.setenv("TEMPORAL_TLS_CERT", CERT)
    monkeypatch.setenv("TEMPORAL_TLS_KEY", str(tmp_path / "client.key"))
    monkeypatch.setenv("TEMPORAL_TLS_CA", CERT)
    monkeypatch.setenv("TEMPORAL_API_KEY", "key-789")
    options = connect_options(Settings())
    tls = options["tls"]
    assert isinstance(tls, TLSConfig) and options["api_key"] == "key-789"
    assert tls.client_cert == CERT.encode() and tls.client_private_key == KEY.encode()
    assert tls.server_root_ca_cert == CERT.encode()


def test_an_envconfig_variable_wins_over_its_older_name(tmp_path: Path) -> None:
    (tmp_path / "new.pem").write_text(CERT)
    settings = Settings(
        temporal_tls_client_cert_path=str(tmp_path / "new.pem"),
        temporal_tls_cert="/old/client.pem",
        temporal_tls_key=KEY,
    )
    tls = connect_options(settings)["tls"]
    assert isinstance(tls, TLSConfig) and tls.client_cert == CERT.encode()


def test_tls_can_be_turned_off_whatever_else_is_set() -> None:
    settings = Settings(temporal_api_key="key-123", temporal_tls=False, temporal_tls_ca=CERT)
    assert connect_options(settings)["tls"] is False
    assert connect_options(Settings(temporal_tls=True))["tls"] == TLSConfig()


def test_a_missing_profile_or_profile_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Profile 'staging' not found"):
        connect_options(
            Settings(temporal_config_file=write_profiles(tmp_path), temporal_profile="staging")
        )
    with pytest.raises(ConfigError, match=r"TEMPORAL_CONFIG_FILE: cannot read '/nowhere\.toml'"):
        connect_options(Settings(temporal_config_file="/nowhere.toml"))


def test_a_profile_certificate_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    settings = Settings(temporal_config_file=write_profiles(tmp_path), temporal_profile="cloud")
    with pytest.raises(ConfigError, match=r"the profile's tls\.client_cert: cannot read"):
        connect_options(settings)


def test_the_cli_uses_its_own_token_else_the_first_of_the_apis(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("INCIDENT_API_TOKENS", "first,second")
    monkeypatch.setenv("INCIDENT_API_URL", "http://api.internal:8000/")
    monkeypatch.setenv("INCIDENT_USER", "U0ALICE01")
    settings = CliSettings()
    assert settings.bearer_token() == "first"
    assert settings.api_url == "http://api.internal:8000/" and settings.user == "U0ALICE01"
    monkeypatch.setenv("INCIDENT_API_TOKEN", "mine")
    assert CliSettings().bearer_token() == "mine"


def write_profiles(folder: Path) -> str:
    """A config file as `temporal config set` writes it: a local default and a cloud profile."""
    path = folder / "temporal.toml"
    path.write_text(
        f"""
[profile.default]
address = "temporal.internal:7233"
namespace = "ops"

[profile.cloud]
address = "ns.acct.tmprl.cloud:7233"
namespace = "ns.acct"
api_key = "cloud-key"

[profile.cloud.tls]
client_cert_path = "{folder / "client.pem"}"
client_key_data = '''{KEY}'''
server_name = "ns.acct.tmprl.cloud"

[profile.cloud.grpc_meta]
x-team = "incidents"
"""
    )
    return str(path)

"""Settings that decide where the worker and the API connect, and what they refuse."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from temporalio.service import TLSConfig

from config import ConfigError, Settings, connect_options
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

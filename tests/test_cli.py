"""The `incident` console script against a real API server, in front of the session's worker."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import pytest
from temporalio.client import Client

from config import Settings
from starter.api.app import create_app
from starter.cli_client import styles_of
from starter.desk import IncidentDesk
from tests.support import serve_http
from workflows.policy import Policy

TOKEN = "test-token-cli"
INCIDENT = os.path.join(sys.prefix, "bin", "incident")


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> dict:
        return json.loads(self.out)


@pytest.fixture(scope="module")
async def api_url(settings: Settings, desk: IncidentDesk) -> AsyncIterator[str]:
    """The API served by uvicorn on a free port, in the session's loop, beside the worker."""
    app = create_app(settings.model_copy(update={"api_tokens": TOKEN}), desk=desk)
    async with serve_http(app) as url:
        yield url


async def incident(*args: str, url: str, token: str = TOKEN, user: str = "U0BOB0002") -> Run:
    """Run the console script in its own process, as a person would."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INCIDENT_")}
    # COLUMNS: rich fits tables to the terminal; wide enough that titles are never cut.
    env |= {"INCIDENT_API_URL": url, "INCIDENT_API_TOKEN": token, "COLUMNS": "200"}
    if user:
        env["INCIDENT_USER"] = user
    process = await asyncio.create_subprocess_exec(
        INCIDENT, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=90)
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())


def title(what: str) -> str:
    return f"{what} {uuid.uuid4().hex[:8]}"


async def test_a_person_declares_follows_and_resolves_an_incident(api_url, settings):
    name = title("CLI checkout failing")
    declared = await incident(
        "declare",
        name,
        "-s",
        "sev1",
        "--commander",
        "U0ALICE01",
        "--component",
        "checkout",
        url=api_url,
    )
    assert declared.code == 0, declared.err
    first = declared.out.splitlines()[0]
    assert first.startswith("Declared INC-") and first.endswith(f" SEV1 investigating — {name}")
    number = first.split()[1].removeprefix("INC-")
    incident_id = f"incident-{number}"
    assert "#inc-" in declared.out
    assert settings.incident_url(incident_id) in declared.out

    shown = await incident("show", f"INC-{number}", url=api_url)
    assert shown.code == 0, shown.err
    lines = shown.out.splitlines()
    assert lines[0] == f"INC-{number} SEV1 investigating — {name}"
    assert any(line.startswith("Commander:") and "U0ALICE01" in line for line in lines)
    assert any(line.startswith("Temporal UI:") for line in lines)
    assert "Timeline" in shown.out and f"Declared SEV1: {name}" in shown.out

    as_json = (await incident("show", number, "--json", url=api_url)).json()
    assert as_json["id"] == incident_id
    assert as_json["timeline"][0]["actor"] == "U0BOB0002"  # INCIDENT_USER is who acted

    async def listing(*args: str) -> str:
        """The list output once it names this incident (the visibility index trails a little)."""
        for _ in range(20):
            run = await incident("list", *args, url=api_url)
            assert run.code == 0, run.err
            if f"INC-{number} " in run.out:
                return run.out
            await asyncio.sleep(0.2)
        raise AssertionError(f"INC-{number} not listed by {args}: {run.out}")

    assert name in await listing("--severity", "sev1")
    assert name in await listing("--commander", "U0ALICE01", "--text", name.split()[-1])

    moved = await incident("status", number, "identified", "bad deploy found", url=api_url)
    assert moved.code == 0, moved.err
    assert moved.out.splitlines() == [
        f"INC-{number} SEV1 identified — {name}",
        "  Status: investigating → identified. bad deploy found",
    ]

    resolved = await incident("resolve", number, "rolled back", url=api_url)
    assert resolved.code == 0, resolved.err
    assert resolved.out.splitlines()[0] == f"INC-{number} SEV1 resolved — {name}"

    assert "resolved" in await listing("--status", "resolved")
    await listing("--all")
    open_now = (await incident("list", "--json", url=api_url)).json()["incidents"]
    assert incident_id not in {i["id"] for i in open_now}


async def test_declare_drill_opens_a_drill_channel_on_the_compressed_clock(api_url):
    name = title("CLI failover drill")
    declared = await incident(
        "declare", name, "-s", "sev2", "--commander", "U0ALICE01", "--drill", "--json", url=api_url
    )
    assert declared.code == 0, declared.err
    drill = declared.json()
    assert drill["drill"] is True
    assert drill["channel"]["name"].startswith("drill-inc-")
    # sev2 asks for an update every 30 minutes; the drill's clock runs ten times faster.
    cadence = datetime.fromisoformat(drill["next_update_due"]) - datetime.fromisoformat(
        drill["declared_at"]
    )
    assert cadence == timedelta(minutes=3)
    shown = await incident("show", str(drill["number"]), url=api_url)
    assert shown.out.splitlines()[0] == f"DRILL INC-{drill['number']} SEV2 investigating — {name}"
    resolved = await incident("resolve", str(drill["number"]), "practised", url=api_url)
    assert resolved.code == 0, resolved.err


async def test_a_refused_command_exits_1_with_the_reason_on_stderr(api_url):
    declared = await incident("declare", title("CLI refused"), "-s", "sev3", "--json", url=api_url)
    number = str(declared.json()["number"])
    assert (await incident("status", number, "monitoring", url=api_url)).code == 0

    refused = await incident("status", number, "identified", url=api_url)
    assert refused.code == 1
    assert refused.out == ""
    assert "cannot move from monitoring back to identified" in refused.err


async def test_api_errors_exit_1_with_the_detail(api_url):
    unknown = await incident("show", "INC-98765432", url=api_url)
    assert unknown.code == 1 and "no incident incident-98765432" in unknown.err

    invalid = await incident("declare", title("CLI invalid"), "-s", "sev9", url=api_url)
    assert invalid.code == 1
    assert "severity: unknown severity 'sev9'; this policy knows sev1, sev2, sev3" in invalid.err

    denied = await incident("list", url=api_url, token="wrong")
    assert denied.code == 1
    assert "invalid bearer token" in denied.err and "INCIDENT_API_TOKEN" in denied.err


async def test_usage_errors_exit_2():
    run = await incident("status", "42", "sleeping", url="http://127.0.0.1:9")
    assert run.code == 2
    assert "sleeping" in run.err


async def test_an_api_that_is_not_running_is_named_with_how_to_start_it():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    run = await incident("list", url=url)
    assert run.code == 1
    assert f"cannot reach the incident API at {url}" in run.err and "make run" in run.err


async def test_people_are_given_by_handle_or_email_and_an_unknown_one_is_named(api_url):
    declared = await incident(
        "declare", title("CLI people"), "-s", "sev3", "--commander", "alice", "--json", url=api_url
    )
    assert declared.code == 0, declared.err
    number = str(declared.json()["number"])
    assert declared.json()["roles"]["commander"] == "U0ALICE01"

    role = await incident("role", number, "comms_lead", "bob", "--json", url=api_url, user="@carol")
    assert role.code == 0, role.err
    assert role.json()["roles"]["comms_lead"] == "U0BOB0002"
    assert role.json()["timeline"][-1]["actor"] == "U0CAROL03"
    by_email = await incident(
        "role", number, "tech_lead", "dave@example.com", "--json", url=api_url
    )
    assert by_email.json()["roles"]["tech_lead"] == "U0DAVE004"

    unknown = await incident("role", number, "tech_lead", "mallory", url=api_url)
    assert unknown.code == 1
    assert "user: unknown person 'mallory'" in unknown.err


async def test_preview_prints_the_timeline_the_policy_would_give(api_url):
    run = await incident(
        "preview", "--severity", "sev1", "--ack-after", "12m", "--horizon", "30m", url=api_url
    )
    assert run.code == 0, run.err
    lines = [line.split() for line in run.out.splitlines()]
    pages = [words[0] for words in lines if words[1:3] == ["page", "(trigger)"]]
    assert pages == ["+5m"], run.out  # tier one at 5 minutes; tier two would be at 15
    assert any(words[:2] == ["+12m", "acknowledged"] for words in lines), run.out
    assert any(words[:2] == ["+15m", "update_due"] for words in lines), run.out
    refused = await incident("preview", "--severity", "sev9", url=api_url)
    assert refused.code == 1
    assert "unknown severity 'sev9'" in refused.err


async def test_severities_are_styled_by_what_their_pages_say_whatever_their_names(
    settings: Settings, client: Client
):
    severities = {
        "sev0": {"paging_severity": "critical"},
        "sev2": {},
        "sev4": {"paging_severity": "info"},
    }
    policy = Policy.model_validate({"severities": severities})
    desk = IncidentDesk(client, settings.task_queue, policy)
    app = create_app(settings.model_copy(update={"api_tokens": TOKEN}), desk=desk)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as api:
        answer = await api.get("/policy/severities", headers={"Authorization": f"Bearer {TOKEN}"})
    assert styles_of(answer.json()["severities"]) == {
        "sev0": "bold red",
        "sev2": "yellow",
        "sev4": "dim",
    }

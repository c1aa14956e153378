"""Time in each status end to end: incidents declared and moved through the API (the real dev
server, a worker built by ``worker.build_worker``, the Slack emulator over HTTP, a SQLite
archive of this module's own), then the figures read back from ``/metrics/incidents``, the
report and ``incident stats``.

The workflow times each change when it handles it; the test times each answer. The two differ
by a command's latency, well under ``TOLERANCE``; the time an incident spends resolved before
its reopening (``RESOLVED_GAP``) is longer than twice that, so counting it would show.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from config import Settings
from localslack import SlackEmulator
from starter.api.app import create_app
from starter.desk import IncidentDesk
from tests.conftest import seconds_policy
from tests.support import serve_http, until, upgrade_database

REPO = Path(__file__).resolve().parents[1]
QUEUE = "incidents-insights"
API_TOKEN = "test-token-insights"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
TOLERANCE = 1.0  # seconds
RESOLVED_GAP = 2.5


@pytest.fixture(scope="session")
def insights_settings(slack: SlackEmulator, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    url = f"sqlite:///{tmp_path_factory.mktemp('insights')}/incidents.db"
    upgrade_database(url)
    return Settings(
        task_queue=QUEUE,
        slack_api_url=slack.base_url,
        broadcast_channel="incidents",
        database_url=url,
        api_tokens=API_TOKEN,
    )


@pytest.fixture(scope="session")
async def insights_worker(
    client: Client, insights_settings: Settings, worker: None
) -> AsyncIterator[None]:
    """For the session, as the incidents it leaves open must answer later listings."""
    from worker import build_worker

    async with httpx.AsyncClient() as http, build_worker(client, insights_settings, http):
        yield


@pytest.fixture(scope="module")
async def api(
    client: Client, insights_settings: Settings, insights_worker: None
) -> AsyncIterator[httpx.AsyncClient]:
    desk = IncidentDesk(client, QUEUE, seconds_policy())
    async with (
        serve_http(create_app(insights_settings, desk=desk)) as url,
        httpx.AsyncClient(base_url=url, headers=AUTH, timeout=60) as http,
    ):
        yield http


class Clock:
    """When each answer came, to know how long the incident spent between two commands."""

    def __init__(self) -> None:
        self.marks: list[float] = []

    async def answer(self, request: Any) -> dict[str, Any]:
        response = await request
        assert response.is_success, response.text
        self.marks.append(time.monotonic())
        return dict(response.json())

    def since(self, first: int, last: int) -> float:
        return self.marks[last] - self.marks[first]


async def command(api: httpx.AsyncClient, clock: Clock, ref: str, path: str, **body: object) -> Any:
    return await clock.answer(
        api.post(f"/incidents/{ref}/{path}", json={"by": "U0ALICE01", **body})
    )


async def test_time_in_status_and_escalations_averaged_by_severity_through_the_api(api):
    # sev2: investigating, escalated, identified, monitoring, resolved.
    a = Clock()
    declared = await a.answer(
        api.post("/incidents", json={"title": "Search slow", "severity": "sev2"})
    )
    first = declared["id"]
    await command(api, a, first, "escalate", reason="nobody answers")
    await asyncio.sleep(0.5)
    await command(api, a, first, "status", status="identified")
    await asyncio.sleep(1.5)
    await command(api, a, first, "status", status="monitoring")
    await asyncio.sleep(1.0)
    resolved_a = await command(api, a, first, "resolve")
    # sev3: investigating, resolved, a while resolved, reopened, investigating again, resolved.
    b = Clock()
    declared = await b.answer(
        api.post("/incidents", json={"title": "Logs late", "severity": "sev3"})
    )
    second = declared["id"]
    await asyncio.sleep(1.0)
    await command(api, b, second, "resolve")
    await asyncio.sleep(RESOLVED_GAP)
    await command(api, b, second, "reopen", reason="late again")
    await asyncio.sleep(1.0)
    resolved_b = await command(api, b, second, "resolve")

    expected_a = {
        "investigating": a.since(0, 2),
        "identified": a.since(2, 3),
        "monitoring": a.since(3, 4),
    }
    expected_b = {"investigating": b.since(0, 1) + b.since(2, 3)}

    async def recorded(ref: str, resolved_at: str) -> bool:
        """The archive holds the incident as of this resolution."""

        async def archived() -> dict[str, Any]:
            found = await api.get("/archive/incidents", params={"limit": 10})
            return next((i for i in found.json()["incidents"] if i["id"] == ref), {})

        return await until(archived, lambda record: record.get("resolved_at") == resolved_at)

    # The archive hears of each resolution from an activity, just after the Update answers.
    assert await recorded(first, resolved_a["resolved_at"])
    assert await recorded(second, resolved_b["resolved_at"])

    answer = await api.get("/metrics/incidents")
    assert answer.status_code == 200, answer.text
    figures = answer.json()
    assert (figures["incidents"], figures["open"], figures["escalations"]) == (2, 0, 1)
    assert figures["escalations_per_incident"] == 0.5 and figures["mean_escalation_level"] == 0.5
    means = figures["mean_seconds_in_status"]
    assert list(means) == ["investigating", "identified", "monitoring"]
    both = (expected_a["investigating"] + expected_b["investigating"]) / 2
    assert means["investigating"] == pytest.approx(both, abs=TOLERANCE)
    assert means["identified"] == pytest.approx(expected_a["identified"], abs=TOLERANCE)
    assert means["monitoring"] == pytest.approx(expected_a["monitoring"], abs=TOLERANCE)
    by_severity = figures["breakdown"]["severity"]
    assert list(by_severity) == ["sev2", "sev3"] and figures["by_severity"] == {
        "sev2": 1,
        "sev3": 1,
    }
    assert by_severity["sev2"]["escalations"] == 1 and by_severity["sev3"]["escalations"] == 0
    sev3 = by_severity["sev3"]["mean_seconds_in_status"]
    assert list(sev3) == ["investigating"]  # never identified, never monitored
    assert sev3["investigating"] == pytest.approx(expected_b["investigating"], abs=TOLERANCE)
    assert by_severity["sev3"]["mttr_seconds"] > RESOLVED_GAP  # resolved late, not in a status

    report = (await api.get(f"/incidents/{second}/report")).text
    assert "## Time in each status" in report and "- Monitoring: never" in report
    assert "- Reopened 1 time" in report

    code, out, err = await cli(str(api.base_url), "stats")
    assert code == 0, err
    assert "Mean identified" in out and "By severity" in out and "sev3" in out
    assert "1 (0.5 per incident, mean level 0.5)" in out


async def cli(url: str, *args: str) -> tuple[int, str, str]:
    """The CLI of this checkout (``incident`` is ``starter.cli:app``), as a process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INCIDENT_")}
    env |= {"INCIDENT_API_URL": url, "INCIDENT_API_TOKEN": API_TOKEN, "COLUMNS": "200"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "starter.cli",
        *args,
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=90)
    return int(process.returncode or 0), out.decode(), err.decode()

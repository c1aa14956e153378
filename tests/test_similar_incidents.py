"""Similar past incidents: full-text search of the archive (SQLite here, PostgreSQL in
``test_archive_postgres``), listed on the kickoff, counted in the report and served at
``GET /incidents/{id}/similar``, end to end (the dev server, a worker of this module's own with
an archive of its own, the Slack emulator over HTTP, the API over HTTP).
"""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from activities import SIMILAR_WAIT, recall
from clients.archive import IncidentArchive
from config import Settings
from localslack import SlackEmulator
from starter.api.app import create_app
from starter.desk import IncidentDesk
from tests.support import serve_http, until, upgrade_database
from workflows.lifecycle import commands as cmd
from workflows.models import Declaration, Impact, IncidentState, Status
from workflows.policy import Policy, default_policy
from workflows.requests import IncidentBrief
from workflows.resolution.metrics import IncidentRecord
from workflows.text import incident_id

QUEUE = "incidents-similar"
TOKEN = "test-token-similar"
AT = datetime(2026, 11, 1, tzinfo=UTC)
TITLE = "Eviction storm on Redis cache nodes"


def archived(number: int, title: str, days: int, **more: Any) -> IncidentRecord:
    return IncidentRecord(
        id=incident_id(number),
        number=number,
        title=title,
        severity="sev2",
        status=Status.RESOLVED,
        impact="major",
        declared_at=AT + timedelta(days=days),
        resolution=f"fixed INC-{number}",
        **more,
    )


# Incident 7 is the one looking back; its words: eviction, storm, on, redis, cache, nodes.
HISTORY = [
    archived(1, "Redis cache eviction storm", 1, components=["redis"]),
    archived(2, "Checkout payments failing", 2),  # no word shared
    archived(3, "Redis eviction storm in the vault", 3, private=True),
    archived(4, "Cache eviction storm drill", 4, drill=True),
    archived(5, "Slow Redis replicas", 5),
    archived(6, "Nodes restarting in a storm of deploys", 6),
    archived(9, "Cache latency at checkout", 2),
    archived(7, TITLE, 7),  # itself
    archived(8, "Redis cache eviction storm again", 8),  # declared later
    # An archive holds many unrelated incidents: the words above are rare in it, as they are
    # in a real one (BM25 gives no weight to a word in half the incidents).
    *(
        archived(100 + n, title, 0)
        for n, title in enumerate(
            [
                "Login page times out",
                "DNS resolution errors",
                "Disk full in build agents",
                "Certificate expired for api",
                "Search index stale",
                "Mobile push notifications delayed",
                "Billing export missing rows",
                "Webhooks retried twice",
                "Queue consumer lag",
                "Image uploads failing",
                "SSO provider outage",
                "Email bounces spike",
            ]
        )
    ),
]


def assert_finds_the_closest_earlier_incidents(archive: IncidentArchive) -> None:
    """The scenario both engines pass: any shared word matches, best ranked first, at most
    three; never the incident itself, a later one, a private one or a drill."""
    for record in HISTORY:
        archive.upsert(record)
        archive.upsert(record)  # upserts keep one entry in the index
    me = HISTORY[7]
    found = archive.similar(me.id, me.title, me.components, me.declared_at)
    assert found.total == 4  # 1, 5, 6 and 9
    assert [s.label for s in found.closest][:1] == ["INC-1"] and len(found.closest) == 3
    assert {s.label for s in found.closest} <= {"INC-1", "INC-5", "INC-6", "INC-9"}
    first = found.closest[0]
    assert first.title == "Redis cache eviction storm" and first.components == ["redis"]
    assert first.status is Status.RESOLVED and first.resolution == "fixed INC-1"
    # A renamed incident is found by its new title only.
    archive.upsert(HISTORY[0].model_copy(update={"title": "Kafka consumer lag", "components": []}))
    renamed = archive.similar(me.id, me.title, [], me.declared_at)
    assert "INC-1" not in {s.label for s in renamed.closest} and renamed.total == 3
    assert archive.similar(me.id, "Kafka", [], me.declared_at).closest[0].label == "INC-1"
    nothing = archive.similar(me.id, "Printer jammed", [], me.declared_at)
    assert nothing.total == 0 and nothing.closest == []
    assert archive.similar(me.id, "!!! ...", [], me.declared_at).total == 0


def test_similar_incidents_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/incidents.db"
    upgrade_database(url)
    assert_finds_the_closest_earlier_incidents(IncidentArchive(url))


def test_people_words_cannot_break_the_full_text_query(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/incidents.db"
    upgrade_database(url)
    archive = IncidentArchive(url)
    archive.upsert(archived(1, 'Quotes " and NEAR(stars*) OR AND NOT ^col:umn', 1))
    found = archive.similar("incident-2", 'x" OR "y NEAR(stars*) col:umn', [], AT + timedelta(2))
    assert [s.label for s in found.closest] == ["INC-1"]


async def test_an_archive_that_does_not_answer_holds_the_kickoff_back_no_longer_than_the_bound():
    brief = IncidentBrief(
        **{"id": "incident-5", "number": 5, "title": TITLE, "summary": "", "severity": "sev1"},
        **{"severity_description": "", "impact": Impact.MAJOR, "status": Status.INVESTIGATING},
        **{"components": [], "commander": None, "tech_lead": None, "comms_lead": None},
        **{"channel": None, "escalation_level": 0, "next_update_due": None},
        **{"declared_at": AT, "resolved_at": None},
    )
    # A database host that takes the connection and never says a word.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        archive = IncidentArchive(f"postgresql+psycopg://incidents@127.0.0.1:{port}/incidents")
        began = time.monotonic()
        assert await recall(archive, brief) is None
        assert time.monotonic() - began < SIMILAR_WAIT + 0.2
    assert await recall(None, brief) is None  # a worker without an archive


# -- end to end ----------------------------------------------------------------------------------


def similar_policy() -> Policy:
    policy = default_policy().model_dump()
    policy["types"] = {"vault": {"description": "Secrets", "private": True}}
    return Policy.model_validate(policy)


@pytest.fixture(scope="module")
def archive_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('similar')}/incidents.db"
    upgrade_database(url)
    return url


@pytest.fixture(scope="module")
async def desk(
    client: Client, slack: SlackEmulator, archive_url: str
) -> AsyncIterator[tuple[IncidentDesk, httpx.AsyncClient]]:
    from worker import build_worker

    settings = Settings(
        task_queue=QUEUE,
        slack_api_url=slack.base_url,
        broadcast_channel="incidents",
        database_url=archive_url,
        api_tokens=TOKEN,
    )
    desk = IncidentDesk(client, QUEUE, similar_policy())
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        httpx.AsyncClient() as http,
        build_worker(client, settings, http),
        serve_http(create_app(settings, desk=desk)) as url,
        httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as api,
    ):
        yield desk, api


async def resolved(
    desk: IncidentDesk, archive: IncidentArchive, declaration: Declaration, message: str
) -> IncidentState:
    """Declared and resolved, and the archive has it so (it hears in the background)."""
    state, _ = await desk.declare(declaration)
    await desk.command(state.id, cmd.Resolve(by="U0ALICE01", message=message))

    async def record() -> IncidentRecord | None:
        return archive.get(state.id)

    assert await until(record, lambda r: r is not None and r.status is Status.RESOLVED)
    return state


async def test_the_kickoff_lists_similar_earlier_incidents_and_the_report_counts_them(
    desk: tuple[IncidentDesk, httpx.AsyncClient], slack: SlackEmulator, archive_url: str
) -> None:
    incidents, api = desk
    archive = IncidentArchive(archive_url)
    ask = {"severity": "sev3", "commander": "U0ALICE01"}
    redis = await resolved(
        incidents,
        archive,
        Declaration(title="Redis cache eviction storm", components=["redis"], **ask),
        "Flushed the hot keys & raised <maxmemory>",
    )
    vault = await resolved(
        incidents,
        archive,
        Declaration(title="Redis eviction storm in the vault", type="vault", **ask),
        "Rotated the vault's keys",
    )
    await resolved(
        incidents, archive, Declaration(title="Checkout payments failing", **ask), "Restarted"
    )

    state, _ = await incidents.declare(Declaration(title=TITLE, **ask))
    assert [s.label for s in state.similar] == [redis.label] and state.recurrences == 1
    assert state.channel is not None
    [kickoff] = [
        m
        for m in slack.messages(state.channel.id)
        if m.get("metadata", {}).get("event_payload", {}).get("key") == "kickoff"
    ]
    shown = str(kickoff["blocks"])
    assert "Similar earlier incidents" in shown and f"*{redis.label}* Redis cache eviction" in shown
    assert "resolved: Flushed the hot keys &amp; raised &lt;maxmemory&gt;" in shown
    assert vault.label not in shown and "vault" not in shown

    answer = await api.get(f"/incidents/{state.id}/similar")
    assert answer.status_code == 200, answer.text
    assert answer.json()["total"] == 1
    [listed] = answer.json()["closest"]
    assert listed["label"] == redis.label and listed["components"] == ["redis"]
    assert listed["resolution"] == "Flushed the hot keys & raised <maxmemory>"
    # The private incident is listed as similar to nothing, not even from its own page.
    mirrored = await api.get(f"/incidents/{vault.id}/similar")
    assert mirrored.status_code == 200 and vault.label not in mirrored.text
    assert (await api.get("/incidents/incident-999999/similar")).status_code == 404

    done = await incidents.command(state.id, cmd.Resolve(by="U0ALICE01", message="Scaled out"))
    assert done.report is not None
    assert "## Recurrences\n\nSimilar earlier incidents: 1\n\n" in done.report
    assert f"- {redis.label} Redis cache eviction storm (resolved)" in done.report
